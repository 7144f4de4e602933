"""Training the musicnn transfer model on a labelled folder ``DIR/<genre>/*``, in minutes on a CPU.

Every file is decoded, copied ``copies`` times through the augmentation
(:class:`utils.audio.augment.RandomChain`, seeded per file and copy) and
embedded by the frozen musicnn (per-window ``penultimate`` + ``max_pool``,
:data:`FRONTEND`: musicnn's spectrogram with per-window level normalisation).
Each (file, copy) is cached as one ``.npz`` under ``<run>/embeddings/``, named
by a digest of the file, the front end and the copy, so an interrupted run
resumes where it stopped and a rerun with another head costs seconds. The
head(s) are then trained on the training files' windows, the temperature is
fitted on the validation files and the model is judged once on the test files;
the result is one Keras window model (musicnn + head) saved with its card,
which ``predict``, ``organize`` and ``serve`` take with ``--model``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils import audio
from utils.atomic import write_atomic
from utils.audio.augment import RandomChain
from utils.audio.frontend import MUSICNN
from utils.errors import FmaGenreError
from utils.models.transfer import HeadConfig

FRONTEND = dataclasses.replace(MUSICNN, level="window")
LAYERS = ("penultimate", "max_pool")
HEADS = {"linear": HeadConfig(layers=LAYERS, hidden=0, epochs=20, batch_size=128),
         "dense": HeadConfig(layers=LAYERS, hidden=256, epochs=20, batch_size=128)}
HEAD_CHOICES = {"linear": ("linear",), "dense": ("dense",), "ensemble": ("linear", "dense")}
MIN_PER_CLASS_FOR_SPLIT = 10  # fewer files in a class: train on every file, no held-out figures


@dataclass(frozen=True)
class TransferConfig:
    """How the transfer model is trained.

    Attributes
    ----------
    head : ``"linear"``, ``"dense"`` (one hidden layer of 256) or ``"ensemble"`` (both, averaged)
    copies : augmented copies of each training file, besides the clean one
    epochs : passes of the head over the training windows
    seed : split, augmentation and initialisation
    """

    head: str = "ensemble"
    copies: int = 3
    epochs: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.head not in HEAD_CHOICES:
            raise ValueError(f"head must be one of {list(HEAD_CHOICES)}, got {self.head!r}")
        if self.copies < 0 or self.epochs < 1:
            raise ValueError(f"need copies >= 0 and epochs >= 1, got {self.copies}, {self.epochs}")


def labelled_tracks(root: str | os.PathLike, classes: list[str] | None = None) -> pd.DataFrame:
    """The audio files of ``root/<label>/...``, with ``label``; :class:`FmaGenreError` if fewer than two labels."""
    from utils.data.datasets import folder

    tracks = folder(root)
    tracks = tracks[tracks.label.notna()]
    if classes:
        tracks = tracks[tracks.label.isin(classes)]
    labels = sorted(tracks.label.unique())
    if len(labels) < 2:
        raise FmaGenreError(root, f"needs audio files in at least two sub-folders <genre>/, found {labels}")
    return tracks.reset_index(drop=True)


def _digest(path: Path, copy: int) -> str:
    st = path.stat()
    h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{copy}|{FRONTEND!r}|{LAYERS}".encode())
    return h.hexdigest()[:16]


def embed_files(paths: list[Path], folder: Path, copies: int, seed: int = 0,
                log: Callable[[str], None] = print) -> dict[Path, list[np.ndarray] | audio.AudioError]:
    """Per file: ``[clean, copy 1, ...]`` window embeddings ``(n_windows, 953)``, cached in ``folder``;
    a file that cannot be used maps to its :class:`utils.audio.AudioError`."""
    from utils.models.musicnn import MusicnnEmbedder

    embedder, out = None, {}
    for n, path in enumerate(paths):
        files = [folder / f"{_digest(path, k)}.npy" for k in range(copies + 1)]
        if all(f.is_file() for f in files):
            out[path] = [np.load(f) for f in files]
            continue
        embedder = embedder or MusicnnEmbedder(LAYERS, fe=FRONTEND)
        try:
            y = audio.load(path, FRONTEND.sample_rate)
            xs = []
            for k, f in enumerate(files):
                z = y if k == 0 else RandomChain()(y, FRONTEND.sample_rate, hash_seed(path, k, seed))
                emb = embedder.samples(z, str(path))
                xs.append(np.concatenate([emb[name] for name in LAYERS], axis=1))
                write_atomic(f, lambda tmp, x=xs[-1]: _save(tmp, x))
            out[path] = xs
        except audio.AudioError as err:
            out[path] = err
            log(f"skipped {err}")
        if (n + 1) % 10 == 0:
            log(f"embedded {n + 1} of {len(paths)} files")
    return out


def _save(tmp: Path, x: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to the temporary name
        np.save(f, x)


def hash_seed(path: Path, copy: int, seed: int) -> int:
    """A seed for augmented copy ``copy`` of ``path``: stable across runs and machines."""
    return int.from_bytes(hashlib.sha1(f"{Path(path).name}|{copy}|{seed}".encode()).digest()[:4], "little")


def train_heads(x: np.ndarray, y: np.ndarray, n_classes: int, config: TransferConfig):
    """The head of ``config.head`` trained on windows ``x`` labelled ``y``: one Keras model, embeddings -> probabilities."""
    from utils.models.transfer import train_head

    heads = {h: train_head(x, y, n_classes, dataclasses.replace(HEADS[h], epochs=config.epochs, seed=config.seed))
             for h in HEAD_CHOICES[config.head]}
    return ensemble(heads)


def ensemble(heads: dict):
    """One head from several trained heads ``{name: model}``: their probabilities averaged."""
    import keras

    if len(heads) == 1:
        return next(iter(heads.values()))
    x_in = keras.Input((HEADS["linear"].dim,), name="embedding")
    parts = [keras.Model(h.input, h.output, name=f"{name}_head") for name, h in heads.items()]  # unique names
    return keras.Model(x_in, keras.layers.Average(name="ensemble")([h(x_in) for h in parts]), name="genre_head")


def binary_output(head):
    """A two-class softmax head as the project's binary form: one unit, P(second label) (see utils.models.card)."""
    import keras

    pick = keras.layers.Dense(1, use_bias=False, trainable=False, name="p_second_label")
    out = pick(head.output)
    pick.set_weights([np.array([[0.0], [1.0]], np.float32)])
    return keras.Model(head.input, out, name="genre_head")


def track_probs(head, embeddings: list[np.ndarray]) -> np.ndarray:
    """Mean window probabilities of each track (as :mod:`utils.models.predict` pools them)."""
    return np.stack([np.asarray(head(x, training=False)).mean(axis=0) for x in embeddings])


def train_folder(root: str | os.PathLike, out: str | os.PathLike, config: TransferConfig = TransferConfig(),
                 classes: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Train, judge and save the transfer model on ``root/<label>/*``; returns a summary.

    A stratified 80/10/10 split (:func:`utils.data.splits.make_splits`) when
    every class has at least :data:`MIN_PER_CLASS_FOR_SPLIT` files; otherwise
    every file trains the model and the card says that nothing was held out.
    Writes ``out/model.keras`` and its card; embeddings stay in ``out/embeddings``.
    """
    from utils.data.splits import make_splits
    from utils.models.calibration import fit_temperature, log_probs
    from utils.models.card import ModelCard, save_model
    from utils.models.musicnn import load_musicnn
    from utils.models.transfer import genre_model

    out = Path(out)
    tracks = labelled_tracks(root, classes)
    labels = sorted(tracks.label.unique())
    embedded = embed_files([Path(p) for p in tracks.path], out / "embeddings", config.copies, config.seed, log)
    ok = np.array([not isinstance(embedded[Path(p)], audio.AudioError) for p in tracks.path])
    skipped = [str(embedded[Path(p)]) for p in tracks.path[~ok]]
    tracks = tracks[ok].reset_index(drop=True)
    if tracks.label.nunique() < 2:
        raise FmaGenreError(root, "fewer than two labels have usable audio files")
    y = tracks.label.map({g: i for i, g in enumerate(labels)}).to_numpy()
    held_out = tracks.label.value_counts().min() >= MIN_PER_CLASS_FOR_SPLIT
    split = make_splits(tracks.assign(artist=pd.NA), seed=config.seed).to_numpy() if held_out \
        else np.full(len(tracks), "training")
    emb = [embedded[Path(p)] for p in tracks.path]
    train = np.flatnonzero(split == "training")
    x = np.concatenate([e for i in train for e in emb[i]])
    x_labels = np.concatenate([np.full(len(e), y[i]) for i in train for e in emb[i]])
    log(f"training the {config.head} head on {len(x)} windows of {len(train)} files "
        f"(with {config.copies} augmented copies each), {len(labels)} labels")
    head = train_heads(x, x_labels, len(labels), config)
    metrics, temperature = {}, 1.0
    if held_out:
        val, test = np.flatnonzero(split == "validation"), np.flatnonzero(split == "test")
        temperature = fit_temperature(log_probs(track_probs(head, [emb[i][0] for i in val])), y[val])
        p = track_probs(head, [emb[i][0] for i in test])
        metrics = {"test": {"n_tracks": len(test), "accuracy": float((p.argmax(axis=1) == y[test]).mean())}}
    else:
        metrics = {"note": f"a class has fewer than {MIN_PER_CLASS_FOR_SPLIT} files: every file was used for "
                           "training and nothing was held out, so there are no test figures"}
    card = ModelCard(labels=tuple(labels), frontend=FRONTEND, architecture="musicnn", temperature=temperature,
                     training={"base": "MSD_musicnn, frozen", "config": dataclasses.asdict(config),
                               "heads": {h: dataclasses.asdict(HEADS[h]) for h in HEAD_CHOICES[config.head]},
                               "augmentation": f"{config.copies} RandomChain copies per training file"},
                     data={"root": str(root), "n_tracks": len(tracks), "skipped": skipped,
                           "split": "stratified 80/10/10" if held_out else "all training",
                           "per_label": {g: int(n) for g, n in tracks.label.value_counts().sort_index().items()}},
                     metrics=metrics)
    model_path = out / "model.keras"
    save_model(genre_model(load_musicnn(), binary_output(head) if len(labels) == 2 else head, LAYERS, FRONTEND),
               model_path, card)
    return {"model": model_path, "metrics": metrics, "temperature": temperature, "skipped": skipped,
            "n_tracks": len(tracks), "labels": labels}
