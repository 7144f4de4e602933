"""Training a genre model: seeded, resumable, with class weights, SpecAugment masking and mixup.

:func:`train` takes windows as arrays ``x (n, frames, mels)`` float32 dB and
``y (n,)`` integer labels (optionally ``w (n,)`` sample weights), or as a
``keras.utils.PyDataset`` yielding ``(x, y)`` or ``(x, y, w)`` batches. It
writes into one run folder, committing after every epoch::

    epoch-0007.keras  model and optimizer state after the last finished epoch
    best.keras        the model with the lowest validation loss so far
    log.csv           one row per finished epoch (Keras' logs: loss, accuracy, val_...)
    state.json        the commit point: epoch, early-stopping state, history, config

Each file is replaced atomically and ``state.json`` last, so a run killed at
any moment restarts from its last finished epoch: calling :func:`train` again
with the same folder and configuration resumes it (Keras' ``BackupAndRestore``
writes non-atomically and keeps no early-stopping or best-model state). Batch
order and augmentation draw their randomness from ``(seed, epoch, batch)``,
so a resumed run sees the same batches as an uninterrupted one; only
dropout's random stream restarts (Keras does not save it), so the weights
end close to, not bit-equal with, an uninterrupted run's. Two runs with the
same seed are bit-equal on CPU.

Targets are one-hot (float for two classes) so that mixup can blend them;
categorical cross-entropy on one-hot targets equals the sparse loss on labels.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from utils.models import backend
from utils.atomic import write_text
from utils.models.card import save_keras_atomic
from utils.models.architectures import build_model, classifier_only
from utils.models.registry import CNN_MODELS, check_model
from utils.errors import FmaGenreError


@dataclass(frozen=True)
class Augment:
    """Augmentation of training batches (validation batches are never augmented).

    SpecAugment masking (Park et al. 2019): per window, ``time_masks`` spans of
    up to ``time_mask_frames`` frames and ``freq_masks`` spans of up to
    ``freq_mask_bands`` Mel bands are set to the training mean of each band.
    Mixup (Zhang et al. 2018): each batch is blended with a shuffled copy of
    itself, inputs, targets and weights alike, with weight lambda ~ Beta(alpha, alpha);
    ``mixup_alpha = 0`` turns it off. ``time_roll``: each window is rolled in time by a
    random number of frames (circularly), for inputs whose frames are snapshots with no
    order to keep, such as fma_small's picture columns.
    """

    time_masks: int = 0
    time_mask_frames: int = 16
    freq_masks: int = 0
    freq_mask_bands: int = 16
    mixup_alpha: float = 0.0
    time_roll: bool = False

    @property
    def active(self) -> bool:
        return self.time_masks > 0 or self.freq_masks > 0 or self.mixup_alpha > 0 or self.time_roll


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result.

    ``patience``: epochs without a lower validation loss before stopping.
    ``balance``: ``"none"``, or ``"class_weight"`` to weight class c by
    n / (n_classes n_c) (scikit-learn's "balanced"); sampling-based balancing
    comes from the dataset layer as per-window sample weights or batch order.
    ``distribution``: ``"none"``, or ``"data_parallel"`` to split each batch
    over the machine's devices (see :func:`utils.models.backend.data_parallel`).
    ``schedule``: ``"constant"`` learning rate, or ``"cosine"`` decay to 0 over ``epochs``.
    ``embedding_weight``: with teacher embeddings given to :func:`train`, the model (built
    with an embedding head) also learns them, its loss the genre cross-entropy plus this
    weight times the embedding's mean squared error; the best epoch is chosen on the
    validation genre loss alone.
    """

    model: str = "cnn"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    patience: int = 5
    balance: str = "none"
    augment: Augment = field(default_factory=Augment)
    distribution: str = "none"
    schedule: str = "constant"
    embedding_weight: float = 0.0

    def __post_init__(self) -> None:
        check_model(self.model, CNN_MODELS)
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if not self.embedding_weight >= 0:
            raise ValueError(f"embedding_weight must be >= 0, got {self.embedding_weight}")
        if self.distribution not in ("none", "data_parallel"):
            raise ValueError(f"distribution must be 'none' or 'data_parallel', got {self.distribution!r}")
        if self.balance not in ("none", "class_weight"):
            raise ValueError(f"balance must be 'none' or 'class_weight', got {self.balance!r}")
        if min(self.epochs, self.batch_size, self.patience) < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch_size and patience must be >= 1 and learning_rate > 0")


class RunError(FmaGenreError):
    """A run folder that cannot be started or resumed. ``str(err)`` is ``"<folder>: <problem>"``."""


def balanced_class_weight(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """Class weights n / (n_classes * n_c): every class then carries the same total weight."""
    counts = np.bincount(np.asarray(y), minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no training examples")
    return {c: float(len(y) / (n_classes * counts[c])) for c in range(n_classes)}


def spec_augment(x: np.ndarray, rng: np.random.Generator, fill: np.ndarray, aug: Augment) -> np.ndarray:
    """Mask random time and frequency spans of windows ``x (n, frames, mels)`` with ``fill (mels,)``."""
    n, frames, mels = x.shape

    def spans(count: int, max_width: int, length: int) -> np.ndarray:  # (n, length) bool
        width = rng.integers(0, min(max_width, length) + 1, (n, count, 1))
        start = rng.integers(0, length - width + 1)
        pos = np.arange(length)
        return ((pos >= start) & (pos < start + width)).any(axis=1)

    masked = (spans(aug.time_masks, aug.time_mask_frames, frames)[:, :, None]
              | spans(aug.freq_masks, aug.freq_mask_bands, mels)[:, None, :])
    return np.where(masked, fill.astype(np.float32), x)


def time_roll(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Roll each window of ``x (n, frames, mels)`` in time by its own random number of frames."""
    n, frames, _ = x.shape
    rows = (np.arange(frames)[None, :] - rng.integers(0, frames, (n, 1))) % frames
    return np.take_along_axis(x, rows[:, :, None], axis=1)


def mixup(x: np.ndarray, t: np.ndarray, w: np.ndarray, rng: np.random.Generator, alpha: float):
    """Blend a batch with a shuffled copy of itself (inputs, targets, weights)."""
    lam = np.float32(rng.beta(alpha, alpha))
    perm = rng.permutation(len(x))
    return tuple(lam * a + (1 - lam) * a[perm] for a in (x, t, w))


class Batches(keras.utils.PyDataset):
    """Batches for Keras from arrays ``(x, y[, w])`` or from a PyDataset of such batches.

    Turns labels into targets (one-hot, or a float column for two classes), class
    weights into sample weights, and augments when ``augment`` is given. Arrays are
    batched here, reshuffled each epoch if ``shuffle``; a PyDataset keeps its own order.
    The training loop sets ``epoch`` so that randomness depends on (seed, epoch, batch).
    ``embedding`` (arrays only): a teacher's embedding of each row, appended to its target.
    """

    def __init__(self, data, n_classes: int, batch_size: int, seed: int, *, shuffle: bool = False,
                 class_weight: dict[int, float] | None = None, augment: Augment | None = None,
                 fill: np.ndarray | None = None, embedding: np.ndarray | None = None) -> None:
        if isinstance(data, keras.utils.PyDataset):
            super().__init__(workers=data.workers, use_multiprocessing=data.use_multiprocessing,
                             max_queue_size=data.max_queue_size)
            self.source, self.arrays = data, None
        else:
            super().__init__()
            self.source, self.arrays = None, _check_arrays(data, n_classes)
        self.n_classes, self.batch_size, self.seed, self.shuffle = n_classes, batch_size, seed, shuffle
        self.weights = (None if class_weight is None else
                        np.array([class_weight[c] for c in range(n_classes)], np.float32))
        self.augment = augment if augment is not None and augment.active else None
        self.fill = fill
        if embedding is not None and (self.arrays is None or len(embedding) != len(self.arrays[0])):
            raise ValueError("embedding needs array data and one row per window")
        self.embedding = None if embedding is None else np.asarray(embedding, np.float32)
        self.epoch = 0
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.source) if self.arrays is None else math.ceil(len(self.arrays[0]) / self.batch_size)

    def _raw(self, i: int) -> tuple:
        if self.arrays is None:
            return self.source[i]
        n = len(self.arrays[0])
        if self._order is None or self._order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order = (self.epoch, rng.permutation(n) if self.shuffle else np.arange(n))
        # sorted: reads from a memory-mapped x go forward
        idx = np.sort(self._order[1][i * self.batch_size:(i + 1) * self.batch_size])
        self._rows = idx
        return tuple(a[idx] for a in self.arrays)

    def __getitem__(self, i: int):
        batch = self._raw(i)
        x, y = np.asarray(batch[0], np.float32), np.asarray(batch[1])
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"batch {i}: labels must be in 0..{self.n_classes - 1}, "
                             f"got {y.min()}..{y.max()}")
        w = np.asarray(batch[2], np.float32) if len(batch) == 3 else np.ones(len(y), np.float32)
        if self.weights is not None:
            w = w * self.weights[y]
        t = (y[:, None].astype(np.float32) if self.n_classes == 2
             else np.eye(self.n_classes, dtype=np.float32)[y])
        if self.embedding is not None:
            t = np.concatenate([t, self.embedding[self._rows]], axis=1)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            if self.augment.time_roll:
                x = time_roll(x, rng)
            if self.augment.time_masks or self.augment.freq_masks:
                x = spec_augment(x, rng, self.fill, self.augment)
            if self.augment.mixup_alpha > 0:
                x, t, w = mixup(x, t, w, rng, self.augment.mixup_alpha)
        return x, t, w

    def on_epoch_begin(self) -> None:
        if self.source is not None:
            self.source.on_epoch_begin()

    def on_epoch_end(self) -> None:
        if self.source is not None:
            self.source.on_epoch_end()


def _check_arrays(data: tuple, n_classes: int) -> tuple[np.ndarray, ...]:
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError("data must be (x, y), (x, y, sample_weight) or a keras.utils.PyDataset")
    x, y = data[0], np.asarray(data[1])
    if x.ndim != 3 or len(x) != len(y) or (len(data) == 3 and len(data[2]) != len(y)):
        raise ValueError(f"need x (n, frames, mels) and n labels (and weights), "
                         f"got x {x.shape}, y {y.shape}")
    if len(y) == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be integers in 0..{n_classes - 1}")
    return (x, y) if len(data) == 2 else (x, y, np.asarray(data[2], np.float32))


def band_stats(data, max_batches: int = 256, min_std: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (dB) of each Mel band over training windows.

    ``data`` is an array ``(n, frames, mels)`` or a PyDataset (then at most
    ``max_batches`` evenly spaced batches are read). The deviation is floored at
    ``min_std`` dB so a band that is constant in training (e.g. above an MP3's
    low-pass) cannot turn small differences at test time into huge inputs.
    """
    if isinstance(data, keras.utils.PyDataset):
        picks = np.unique(np.linspace(0, len(data) - 1, min(max_batches, len(data))).astype(int))
        chunks = (np.asarray(data[int(i)][0]) for i in picks)
    else:
        chunks = (data[s:s + 256] for s in range(0, len(data), 256))
    total, sq, count = 0.0, 0.0, 0
    for c in chunks:
        c = np.asarray(c, np.float64).reshape(-1, c.shape[-1])
        total, sq, count = total + c.sum(0), sq + (c * c).sum(0), count + len(c)
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32)


@keras.saving.register_keras_serializable(package="fma_genre")
class GenreAndEmbeddingLoss(keras.losses.Loss):
    """Categorical cross-entropy on a target's first ``n_classes`` columns plus ``weight`` times the
    mean squared error on the rest (a teacher's embedding, :func:`utils.models.architectures.cnn1d`)."""

    def __init__(self, n_classes: int, weight: float, name: str = "genre_and_embedding", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes, self.weight = int(n_classes), float(weight)

    def call(self, y_true, y_pred):
        n = self.n_classes
        genre = keras.losses.categorical_crossentropy(y_true[:, :n], y_pred[:, :n])
        return genre + self.weight * keras.ops.mean(keras.ops.square(y_true[:, n:] - y_pred[:, n:]), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_classes": self.n_classes, "weight": self.weight}


@keras.saving.register_keras_serializable(package="fma_genre")
class GenreMetric(keras.metrics.Metric):
    """Accuracy (``kind="accuracy"``) or cross-entropy (``"loss"``) of a target's first ``n_classes``
    columns, the genre, when an embedding follows them."""

    def __init__(self, n_classes: int, kind: str, name: str | None = None, **kwargs) -> None:
        super().__init__(name=name or f"genre_{kind}", **kwargs)
        self.n_classes, self.kind = int(n_classes), kind
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        t, p = y_true[:, :self.n_classes], y_pred[:, :self.n_classes]
        values = (keras.losses.categorical_crossentropy(t, p) if self.kind == "loss" else
                  keras.ops.cast(keras.ops.argmax(t, -1) == keras.ops.argmax(p, -1), "float32"))
        self.total.assign_add(keras.ops.sum(values))
        self.count.assign_add(keras.ops.cast(keras.ops.shape(values)[0], "float32"))

    def result(self):
        return self.total / keras.ops.maximum(self.count, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_classes": self.n_classes, "kind": self.kind}


def compile_model(model: keras.Model, learning_rate, n_classes: int | None = None,
                  embedding_weight: float = 0.0) -> keras.Model:
    """Adam and cross-entropy: binary for a sigmoid output, categorical for a softmax; with an
    embedding head (``embedding_weight > 0``), :class:`GenreAndEmbeddingLoss` and genre metrics.
    ``learning_rate``: a number or a Keras schedule."""
    if embedding_weight > 0:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=GenreAndEmbeddingLoss(n_classes, embedding_weight),
                      metrics=[GenreMetric(n_classes, "accuracy"), GenreMetric(n_classes, "loss")])
        return model
    binary = model.output_shape[-1] == 1
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.BinaryCrossentropy() if binary else keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model


@dataclass(frozen=True)
class TrainResult:
    """The best model (lowest validation loss) and how the run went; ``history`` has one dict per epoch."""

    model: keras.Model
    history: tuple[dict, ...]
    best_epoch: int
    best_val_loss: float
    epochs: int
    stopped_early: bool
    class_weight: dict[int, float] | None
    config: TrainConfig

    def summary(self) -> dict:
        """JSON-ready description for a model card's ``training`` field."""
        return {"config": dataclasses.asdict(self.config), "epochs": self.epochs,
                "best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "stopped_early": self.stopped_early,
                "class_weight": None if self.class_weight is None else
                {str(c): w for c, w in self.class_weight.items()},
                "backend": backend.name()}


class _Commit(keras.callbacks.Callback):
    """After each epoch: checkpoint, best model, CSV log, then ``state.json`` (the commit)."""

    def __init__(self, run: Path, state: dict, batches: Batches) -> None:
        super().__init__()
        self.run, self.state, self.batches = run, state, batches

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.batches.epoch = epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        s, config = self.state, self.state["config"]
        logs = {k: float(v) for k, v in (logs or {}).items()}
        s["history"].append({"epoch": epoch, **logs})
        val_loss = logs.get("val_genre_loss", logs["val_loss"])  # with an embedding head: the genre's alone
        if s["best_val_loss"] is None or val_loss < s["best_val_loss"]:
            save_keras_atomic(self.model, self.run / "best.keras")
            s.update(best_val_loss=val_loss, best_epoch=epoch, wait=0)
        else:
            s["wait"] += 1
        s["stopped_early"] = s["wait"] >= config["patience"]
        self.model.stop_training = s["stopped_early"]
        previous, s["checkpoint"] = s["checkpoint"], f"epoch-{epoch + 1:04d}.keras"
        save_keras_atomic(self.model, self.run / s["checkpoint"])
        s["epoch"] = epoch + 1
        s["done"] = s["stopped_early"] or s["epoch"] >= config["epochs"]
        write_text(self.run / "log.csv", _csv(s["history"]))
        write_text(self.run / "state.json", json.dumps(s, indent=1) + "\n")
        if previous and previous != s["checkpoint"]:
            (self.run / previous).unlink(missing_ok=True)


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def train(config: TrainConfig, train_data, val_data, n_classes: int, run_dir: str | Path, *,
          class_weight: dict[int, float] | None = None,
          callbacks: tuple[keras.callbacks.Callback, ...] = (), verbose: int = 0,
          embeddings: tuple[np.ndarray, np.ndarray] | None = None) -> TrainResult:
    """Train ``config.model`` on ``train_data``, stopping early on ``val_data``'s loss.

    ``embeddings``: a teacher's embedding of each training and each validation window (arrays
    data only), learnt beside the genre when ``config.embedding_weight > 0``; the returned model
    is the classifier alone (:func:`utils.models.architectures.classifier_only`).

    Data: see the module docstring. ``class_weight`` (class -> weight) is used
    with ``balance="class_weight"``; if omitted it is computed from array labels
    (a PyDataset must pass it, e.g. from :func:`balanced_class_weight`).
    ``callbacks`` run after each epoch's commit (e.g. ``keras.callbacks.TensorBoard``,
    which needs the ``tensorboard`` package). Resumes the unfinished run in
    ``run_dir`` if there is one; raises :class:`RunError` if the folder holds a
    run with another configuration or class weights, or files of something else.
    """
    run = Path(run_dir)
    state_path = run / "state.json"
    config_dict = json.loads(json.dumps(dataclasses.asdict(config)))  # as stored: lists, not tuples
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state["config"] != config_dict or state["n_classes"] != n_classes:
            raise RunError(run, "holds a run with another configuration; use a new folder")
    else:
        clash = [p.name for p in (run / "best.keras", run / "log.csv") if p.exists()]
        if clash:
            raise RunError(run, f"holds {', '.join(clash)} but no state.json; use a new folder")
        state = _new_state(config, config_dict, train_data, n_classes, class_weight)
    weights = None if state["class_weight"] is None else {int(c): w for c, w in state["class_weight"].items()}
    if class_weight is not None and class_weight != weights:
        raise RunError(run, f"was started with class weights {weights}, not {class_weight}")
    if (config.embedding_weight > 0) != (embeddings is not None):
        raise ValueError("teacher embeddings go with embedding_weight > 0, and only with it")
    teacher = (None, None) if embeddings is None else embeddings
    train_batches = Batches(train_data, n_classes, config.batch_size, config.seed, shuffle=True,
                            class_weight=weights, augment=config.augment,
                            fill=np.array(state["band_mean"], np.float32), embedding=teacher[0])
    val_batches = Batches(val_data, n_classes, config.batch_size, config.seed, embedding=teacher[1])
    parallel = backend.data_parallel() if config.distribution == "data_parallel" else contextlib.nullcontext()
    if not state["done"]:
        backend.seed(config.seed)
        with parallel:
            if state["checkpoint"]:
                model = keras.saving.load_model(run / state["checkpoint"])
            else:
                x0 = train_batches[0][0]
                head = {} if embeddings is None else {"embedding": embeddings[0].shape[1]}
                rate = (config.learning_rate if config.schedule == "constant" else
                        keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                               config.epochs * len(train_batches)))
                model = compile_model(build_model(config.model, x0.shape[1:], n_classes,
                                                  np.array(state["band_mean"]), np.array(state["band_std"]), **head),
                                      rate, n_classes, config.embedding_weight)
            run.mkdir(parents=True, exist_ok=True)
            model.fit(train_batches, validation_data=val_batches, epochs=config.epochs,
                      initial_epoch=state["epoch"], shuffle=False, verbose=verbose,
                      callbacks=[_Commit(run, state, train_batches), *callbacks])
    return TrainResult(model=classifier_only(keras.saving.load_model(run / "best.keras")),
                       history=tuple(state["history"]), best_epoch=state["best_epoch"],
                       best_val_loss=state["best_val_loss"], epochs=state["epoch"],
                       stopped_early=state["stopped_early"], class_weight=weights, config=config)


def _new_state(config: TrainConfig, config_dict: dict, train_data, n_classes: int,
               class_weight: dict[int, float] | None) -> dict:
    if config.balance == "none" and class_weight is not None:
        raise ValueError("class_weight given but config.balance is 'none'")
    if config.balance == "class_weight" and class_weight is None:
        if isinstance(train_data, keras.utils.PyDataset):
            raise ValueError("balance='class_weight' with a PyDataset: pass class_weight "
                             "(e.g. balanced_class_weight(labels, n_classes))")
        class_weight = balanced_class_weight(_check_arrays(train_data, n_classes)[1], n_classes)
    x = train_data if isinstance(train_data, keras.utils.PyDataset) else train_data[0]
    mean, std = band_stats(x)
    return {"config": config_dict, "n_classes": n_classes, "epoch": 0, "done": False,
            "checkpoint": None, "best_val_loss": None, "best_epoch": None, "wait": 0,
            "stopped_early": False, "history": [],
            "class_weight": (None if class_weight is None else
                             {str(c): float(w) for c, w in class_weight.items()}),
            "band_mean": mean.tolist(), "band_std": std.tolist()}
