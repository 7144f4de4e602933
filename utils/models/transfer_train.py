"""Training the musicnn transfer model on any labelled track table, in minutes on a CPU.

The tracks (``track_id``, ``path``, ``label``, optional ``split`` and ``artist``) come
from a labelled folder ``DIR/<genre>/*``, a dataset (:func:`utils.data.catalog.load_dataset`)
or the audio files of a spectrogram cache (:meth:`utils.data.cache.Cache.sources`; its
spectrograms are not used: musicnn needs its own front end, :data:`FRONTEND`).

Each training file is decoded, copied ``copies`` times through the augmentation
(:class:`utils.audio.augment.RandomChain`, seeded per file and copy) and embedded by the
frozen musicnn; validation and test files are embedded clean. Each (file, copy) is cached
as one ``.npy`` under ``<run>/embeddings/``, so an interrupted run resumes and a rerun with
another head costs seconds. The head(s) are trained on the training files' windows, every
artist of a genre weighing alike where artists are known. With ``fine_tune`` epochs the
composed model is then tuned end to end on the log-Mel windows of the same (file, copy)
pairs, cached as float16 under ``<run>/windows/`` and streamed (a GPU job beyond a few
hundred clips). The temperature is fitted on the validation files and the model judged
once on the test files; the result is one Keras window model saved with its card.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils import audio
from utils.atomic import write_atomic
from utils.audio.augment import RandomChain
from utils.audio import frontend
from utils.audio.frontend import MUSICNN, LogMel, windows
from utils.data.splits import SPLITS, Split, group_weights, make_splits, official_split, split_groups
from utils.errors import FmaGenreError
from utils.models.musicnn import band_reference
from utils.models.transfer import HeadConfig

# The shipped model's front end (robustness.json chose it by nested validation; a test holds the two equal):
# musicnn's spectrogram with each window brought to one level and each band's mean power to one profile
FRONTEND = dataclasses.replace(MUSICNN, level="window", band_level="window", band_reference=band_reference(),
                               band_mean="power")
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
    by_artist : weigh the training windows so that every genre, and every artist within a genre,
        counts alike (:func:`utils.data.splits.group_weights`), where the tracks name their artists
    copies : augmented copies of each training file, besides the clean one
    epochs : passes of the head over the training windows
    seed : split, augmentation and initialisation
    fine_tune : epochs of end-to-end fine-tuning after the head is trained; 0 keeps musicnn frozen
    fine_tune_learning_rate : Adam's learning rate while fine-tuning
    fine_tune_batch_size : windows per fine-tuning step
    """

    head: str = "linear"  # the shipped model's (a test holds the two equal)
    by_artist: bool = True  # the shipped model's (a test holds the two equal)
    copies: int = 3
    epochs: int = 20
    seed: int = 0
    fine_tune: int = 0
    fine_tune_learning_rate: float = 1e-5
    fine_tune_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.head not in HEAD_CHOICES:
            raise ValueError(f"head must be one of {list(HEAD_CHOICES)}, got {self.head!r}")
        if self.copies < 0 or self.epochs < 1 or self.fine_tune < 0:
            raise ValueError(f"need copies >= 0, epochs >= 1 and fine_tune >= 0, "
                             f"got {self.copies}, {self.epochs}, {self.fine_tune}")
        if self.fine_tune_learning_rate <= 0 or self.fine_tune_batch_size < 1:
            raise ValueError("need a positive fine-tuning learning rate and batch size, got "
                             f"{self.fine_tune_learning_rate}, {self.fine_tune_batch_size}")


@dataclass(frozen=True)
class TransferOutcome:
    """What :func:`train_tracks` made.

    Attributes
    ----------
    model_path : the saved ``.keras`` model (its card beside it)
    labels : class names, in output order
    split : how the tracks were split, in words
    temperature : fitted on the validation tracks (1 when none)
    metrics : the card's metrics: ``{"test": {"n_tracks", "accuracy"}}`` or ``{"note": why none}``
    test_labels : class index of each test track, ``(n_test,)``
    test_probs : calibrated probabilities of each test track, ``(n_test, n_labels)``
    n_tracks : tracks used (training, validation and test)
    skipped : why each unusable file was left out
    """

    model_path: Path
    labels: tuple[str, ...]
    split: str
    temperature: float
    metrics: dict
    test_labels: np.ndarray
    test_probs: np.ndarray
    n_tracks: int
    skipped: tuple[str, ...]


def labelled_tracks(root: str | os.PathLike, classes: list[str] | None = None) -> pd.DataFrame:
    """The audio files of ``root/<label>/...``, with ``label`` (see :func:`usable_tracks`)."""
    from utils.data.datasets import folder

    return usable_tracks(folder(root), str(root), classes)


def usable_tracks(tracks: pd.DataFrame, source: str, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """The labelled rows of ``tracks`` (of ``classes`` when given), re-indexed.

    Raises :class:`FmaGenreError` naming ``source`` when fewer than two labels
    remain or when none of their audio files exists (a table made on another machine).
    """
    tracks = tracks[tracks.label.notna()]
    if classes:
        tracks = tracks[tracks.label.isin(classes)]
    labels = sorted(tracks.label.unique())
    if len(labels) < 2:
        raise FmaGenreError(source, f"needs labelled audio files of at least two labels (for a folder: two "
                                    f"sub-folders <genre>/), found {labels}")
    if not tracks.path.map(lambda p: Path(p).is_file()).any():
        raise FmaGenreError(source, f"none of its {len(tracks)} labelled audio files exists "
                                    f"(e.g. {tracks.path.iloc[0]}); were they moved or made on another machine?")
    return tracks.reset_index(drop=True)


def split_tracks(tracks: pd.DataFrame, seed: int = 0) -> tuple[Split, str]:
    """The split of a track table and how it was made, in words.

    The table's ``split`` column when every row has one (FMA's official split,
    a cache's split); else a stratified 80/10/10 split
    (:func:`utils.data.splits.make_splits`, grouped by artist where known) when
    every label has at least :data:`MIN_PER_CLASS_FOR_SPLIT` tracks; else every
    track trains and nothing is held out.
    """
    if "split" in tracks and tracks.split.notna().all():
        return official_split(tracks), "the table's split"
    if tracks.label.value_counts().min() < MIN_PER_CLASS_FOR_SPLIT:
        return Split(tuple(tracks.track_id), (), ()), "all training"
    grouped = "artist" in tracks and tracks.artist.notna().any()
    column = make_splits(tracks if "artist" in tracks else tracks.assign(artist=pd.NA), seed=seed)
    return (Split(*(tuple(tracks.track_id[column == s]) for s in SPLITS)),
            f"stratified 80/10/10 (seed {seed}{', grouped by artist' if grouped else ''})")


def _digest(path: Path, copy: int, code: bytes) -> str:
    """Key of one file's cached embeddings: the file, the copy, and the front end's settings and ``code``
    (the bytes of ``utils/audio/frontend.py``)."""
    st = path.stat()
    h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{copy}|{FRONTEND!r}|{LAYERS}".encode())
    h.update(code)
    return h.hexdigest()[:16]


def _augmented(y: np.ndarray, path: Path, copy: int, seed: int) -> np.ndarray:
    """Copy ``copy`` of the samples ``y`` of ``path``: 0 is the clean one."""
    return y if copy == 0 else RandomChain()(y, FRONTEND.sample_rate, hash_seed(path, copy, seed))


def embed_files(paths: list[Path], folder: Path, copies: Sequence[int], seed: int = 0,
                log: Callable[[str], None] = print) -> dict[Path, list[np.ndarray] | audio.AudioError]:
    """Per file: ``[clean, copy 1, ...]`` window embeddings ``(n_windows, 953)``, cached in ``folder``;
    a file that cannot be used maps to its :class:`utils.audio.AudioError`. ``copies``: augmented
    copies of each file (aligned with ``paths``)."""
    from utils.models.musicnn import MusicnnEmbedder

    embedder = None

    def embed(y: np.ndarray, path: Path) -> np.ndarray:
        nonlocal embedder  # built on the first file not cached yet: a resumed run may need none
        embedder = embedder or MusicnnEmbedder(LAYERS, fe=FRONTEND)
        emb = embedder.samples(y, str(path))
        return np.concatenate([emb[name] for name in LAYERS], axis=1)

    cached = _cached_copies(paths, folder, copies, seed, embed, log, "embedded")
    return {p: f if isinstance(f, audio.AudioError) else [np.load(x) for x in f] for p, f in cached.items()}


def window_files(paths: list[Path], folder: Path, copies: Sequence[int], seed: int = 0,
                 log: Callable[[str], None] = print) -> dict[Path, list[Path] | audio.AudioError]:
    """Per file: the ``.npy`` files of its ``[clean, copy 1, ...]`` :data:`FRONTEND` windows, float16
    ``(n_windows, 187, 96)`` (about 36 kB per second of audio), written to ``folder`` unless there;
    a file that cannot be used maps to its :class:`utils.audio.AudioError`.

    The copies are those :func:`embed_files` embeds (same seeds), for fine-tuning.
    """
    logmel = LogMel(FRONTEND)
    return _cached_copies(paths, folder, copies, seed,
                          lambda y, path: windows(logmel(y), FRONTEND, str(path)).astype(np.float16), log,
                          "cut the windows of")


def _cached_copies(paths: list[Path], folder: Path, copies: Sequence[int], seed: int,
                   compute: Callable[[np.ndarray, Path], np.ndarray], log: Callable[[str], None],
                   verb: str) -> dict[Path, list[Path] | audio.AudioError]:
    """Per file: the ``.npy`` files of ``compute(copy k of its audio, path)`` for the clean copy and
    each augmented one, each written atomically to ``folder`` unless there (a killed run resumes)."""
    out: dict[Path, list[Path] | audio.AudioError] = {}
    code = Path(frontend.__file__).read_bytes()  # read once, not per file
    for n, (path, n_copies) in enumerate(zip(paths, copies)):
        files = [folder / f"{_digest(path, k, code)}.npy" for k in range(n_copies + 1)]
        if not all(f.is_file() for f in files):
            try:
                y = audio.load(path, FRONTEND.sample_rate)
                for k, f in enumerate(files):
                    x = compute(_augmented(y, path, k, seed), path)
                    write_atomic(f, lambda tmp, x=x: _save(tmp, x))
            except audio.AudioError as err:
                out[path] = err
                log(f"skipped {err}")
                continue
            if (n + 1) % 10 == 0:
                log(f"{verb} {n + 1} of {len(paths)} files")
        out[path] = files
    return out


def _save(tmp: Path, x: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to the temporary name
        np.save(f, x)


def hash_seed(path: Path, copy: int, seed: int) -> int:
    """A seed for augmented copy ``copy`` of ``path``: stable across runs and machines."""
    return int.from_bytes(hashlib.sha1(f"{Path(path).name}|{copy}|{seed}".encode()).digest()[:4], "little")


def train_heads(x: np.ndarray, y: np.ndarray, n_classes: int, config: TransferConfig,
                sample_weight: np.ndarray | None = None):
    """The head of ``config.head`` trained on windows ``x`` labelled ``y`` (weighted by ``sample_weight``):
    one Keras model, embeddings -> probabilities."""
    from utils.models.transfer import train_head

    heads = {h: train_head(x, y, n_classes, dataclasses.replace(HEADS[h], epochs=config.epochs, seed=config.seed),
                           sample_weight=sample_weight)
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
    return keras.Model(head.input, out, name=head.name)


def track_probs(model, inputs: list[np.ndarray]) -> np.ndarray:
    """Mean window probabilities of each track (as :mod:`utils.models.predict` pools them); ``inputs``
    holds each track's windows as ``model`` takes them (embeddings for a head, log-Mel for the genre model)."""
    return np.stack([np.asarray(model(np.asarray(x, np.float32), training=False)).mean(axis=0) for x in inputs])


def fine_tune_model(model, windows_of: Mapping[Path, list[Path]], training: Sequence[tuple[Path, int]],
                    validation: Sequence[tuple[Path, int]], config: TransferConfig) -> dict:
    """Fine-tune the genre model ``model`` in place on every window file of the ``training``
    ``(path, class index)`` pairs, monitored on the clean windows of ``validation``; returns the history."""
    from utils.data.batches import FileWindowDataset
    from utils.models.transfer import FineTuneConfig, fine_tune

    def dataset(pairs, all_copies: bool, shuffle: bool):
        files = [(f, y) for p, y in pairs for f in (windows_of[p] if all_copies else windows_of[p][:1])]
        return FileWindowDataset([f for f, _ in files], [y for _, y in files], config.fine_tune_batch_size,
                                 shuffle=shuffle, seed=config.seed)

    tuning = FineTuneConfig(config.fine_tune_learning_rate, config.fine_tune, config.fine_tune_batch_size,
                            config.seed)
    history = fine_tune(model, dataset(training, True, True), None, tuning,
                        validation_data=dataset(validation, False, False) if validation else None)
    return {k: [round(float(v), 4) for v in vs] for k, vs in history.history.items()}


def train_folder(root: str | os.PathLike, out: str | os.PathLike, config: TransferConfig = TransferConfig(),
                 classes: list[str] | None = None, log: Callable[[str], None] = print) -> TransferOutcome:
    """Train, judge and save the transfer model on ``root/<label>/*`` (see :func:`train_tracks`)."""
    return train_tracks(labelled_tracks(root, classes), out, config, source=str(root), log=log)


def train_tracks(tracks: pd.DataFrame, out: str | os.PathLike, config: TransferConfig = TransferConfig(),
                 split: Split | None = None, source: str = "tracks", classes: Sequence[str] | None = None,
                 data: Mapping | None = None, log: Callable[[str], None] = print) -> TransferOutcome:
    """Train, judge and save the transfer model on a track table.

    Parameters
    ----------
    tracks : ``track_id``, ``path``, ``label`` (unlabelled rows are left out), optional ``split``, ``artist``
    out : run folder: ``model.keras`` and its card, ``embeddings/`` (and ``windows/`` when fine-tuning)
    config : head, augmentation and fine-tuning
    split : track ids of each set (e.g. a notebook's split plan); None: :func:`split_tracks`
    source : names the data in errors and on the card (a folder, a cache)
    classes : labels to use (default: all)
    data : more to record on the card's ``data``
    log : progress lines
    """
    from utils.models.calibration import apply_temperature, fit_temperature, log_probs
    from utils.models.card import ModelCard, save_model
    from utils.models.musicnn import load_musicnn
    from utils.models.transfer import genre_model

    out = Path(out)
    tracks = usable_tracks(tracks, source, classes)
    labels = sorted(tracks.label.unique())
    split, how = (split, "given") if split is not None else split_tracks(tracks, config.seed)
    tracks = tracks[tracks.track_id.isin({t for s in SPLITS for t in getattr(split, s)})].reset_index(drop=True)
    paths = [Path(p) for p in tracks.path]
    copies = np.where(tracks.track_id.isin(split.training), config.copies, 0)
    embedded = embed_files(paths, out / "embeddings", copies, config.seed, log)
    ok = np.array([not isinstance(embedded[p], audio.AudioError) for p in paths])
    skipped = tuple(str(embedded[p]) for p, good in zip(paths, ok) if not good)
    tracks, paths, copies = tracks[ok].reset_index(drop=True), [p for p, g in zip(paths, ok) if g], copies[ok]
    sets = {s: np.flatnonzero(tracks.track_id.isin(getattr(split, s))) for s in SPLITS}
    if tracks.label[sets["training"]].nunique() < 2:
        raise FmaGenreError(source, "fewer than two labels have usable training files")
    y = tracks.label.map({g: i for i, g in enumerate(labels)}).to_numpy()
    emb = [embedded[p] for p in paths]
    train = sets["training"]
    x = np.concatenate([e for i in train for e in emb[i]])
    x_labels = np.concatenate([np.full(len(e), y[i]) for i in train for e in emb[i]])
    weight, weighting = None, "none"
    if config.by_artist and "artist" in tracks and tracks.artist[train].notna().any():
        per_track = group_weights(y[train], split_groups(tracks.iloc[train]))
        weight = np.concatenate([np.full(len(e), w) for w, i in zip(per_track, train) for e in emb[i]])
        weighting = "every genre, and every artist within a genre, weighs the same (utils.data.splits.group_weights)"
    log(f"training the {config.head} head on {len(x)} windows of {len(train)} files "
        f"(with {config.copies} augmented copies each), {len(labels)} labels; split: {how}")
    head = train_heads(x, x_labels, len(labels), config, weight)
    model = genre_model(load_musicnn(), head, LAYERS, FRONTEND)
    training = {"base": "MSD_musicnn, frozen", "config": dataclasses.asdict(config),
                "heads": {h: dataclasses.asdict(HEADS[h]) for h in HEAD_CHOICES[config.head]},
                "augmentation": f"{config.copies} RandomChain copies per training file", "weighting": weighting}
    if config.fine_tune:
        used = sorted({i for s in SPLITS for i in sets[s]})  # a plan may validate on training tracks
        windows_of = window_files([paths[i] for i in used], out / "windows", copies[used], config.seed, log)
        log(f"fine-tuning musicnn and the head for {config.fine_tune} epoch(s) on the log-Mel windows")
        history = fine_tune_model(model, windows_of, [(paths[i], y[i]) for i in train],
                                  [(paths[i], y[i]) for i in sets["validation"]], config)
        training |= {"base": "MSD_musicnn, fine-tuned end to end (batch normalisation frozen)",
                     "fine_tune": {"epochs": config.fine_tune, "learning_rate": config.fine_tune_learning_rate,
                                   "batch_size": config.fine_tune_batch_size, "history": history}}

        def probs(rows: np.ndarray) -> np.ndarray:
            return track_probs(model, [np.load(windows_of[paths[i]][0]) for i in rows])
    else:
        def probs(rows: np.ndarray) -> np.ndarray:
            return track_probs(head, [emb[i][0] for i in rows])
    val, test = sets["validation"], sets["test"]
    temperature = fit_temperature(log_probs(probs(val)), y[val]) if len(val) else 1.0
    p_test = apply_temperature(log_probs(probs(test)), temperature) if len(test) else np.zeros((0, len(labels)))
    metrics = ({"test": {"n_tracks": len(test), "accuracy": float((p_test.argmax(axis=1) == y[test]).mean())}}
               if len(test) else
               {"note": f"a class has fewer than {MIN_PER_CLASS_FOR_SPLIT} files: every file was used for "
                        "training and nothing was held out, so there are no test figures"})
    card = ModelCard(labels=tuple(labels), frontend=FRONTEND, architecture="musicnn", temperature=temperature,
                     training=training,
                     data={"source": source, "n_tracks": len(tracks), "skipped": list(skipped), "split": how,
                           "tracks": {s: len(sets[s]) for s in SPLITS},
                           "per_label": {g: int(n) for g, n in tracks.label.value_counts().sort_index().items()},
                           **(data or {})},
                     metrics=metrics)
    model_path = out / "model.keras"
    save_model(_uncompiled(model, binary=len(labels) == 2), model_path, card)
    return TransferOutcome(model_path, tuple(labels), how, temperature, metrics, y[test], p_test, len(tracks),
                           skipped)


def _uncompiled(model, binary: bool):
    """``model`` as a new functional model sharing its layers: saved without an optimizer's state
    (fine-tuning compiled it), in the project's binary form for two labels."""
    import keras

    return binary_output(model) if binary else keras.Model(model.input, model.output, name=model.name)
