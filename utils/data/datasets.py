"""Datasets as track tables: GTZAN, any folder of music, class balance and resampling.

Every loader in the project (here and in :mod:`utils.data.fma`) returns a *track
table*: a pandas DataFrame with one row per track, a RangeIndex, and these
columns first, in this order:

========  ===================================================================
track_id  str, unique. FMA: the 6-digit id (``"000002"``); GTZAN: the file
          stem (``"blues.00000"``); any folder: the path below the root
          without extension, ``/``-separated (``"rock/song"``)
path      str, the audio file; NA where no audio folder was given
label     str, or a tuple of str for multi-label; NA where unknown
split     ``"training"``, ``"validation"`` or ``"test"``; NA where the
          dataset has none (see :func:`utils.data.splits.make_splits`)
artist    str; NA where unknown. Splits never put one artist in two splits
          (:func:`utils.data.splits.split_groups`). FMA: the artist id;
          GTZAN: Sturm's index (:data:`GTZAN_ARTISTS`); any folder: an
          ``artists.csv`` beside the music, else the files' artist tags
========  ===================================================================

Dataset-specific columns follow these (FMA: ``subset``, ``duration``, ...;
GTZAN: ``recording``, the clip's title in the same index: clips of one title
are one recording repeated, kept on one side of a split too).
Row positions (0 .. n-1) are what :func:`balance` returns.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from utils import audio
from utils.atomic import write_atomic
from utils.data.splits import SPLITS
from utils.errors import FmaGenreError

TRACK_COLUMNS = ("track_id", "path", "label", "split", "artist")
# Bob L. Sturm's index of the 1,000 GTZAN clips ("An Analysis of the GTZAN Music Genre Dataset", ACM MIRUM
# 2012): one line per clip, "genre.NNNNN.wav ::: artist ::: title", comments start with "##"
GTZAN_ARTISTS = Path(__file__).resolve().parents[2] / "data" / "gtzan_artists.txt"
# The shared data folder beside the repository (CI always has it): GTZAN (gtzan_mini, gtzan_more) and the
# fma_small pictures, which may not be redistributed, so they are read there and never bundled
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ARTISTS_CSV = "artists.csv"  # a folder's optional artist list: path (below the folder), artist
BALANCE_METHODS = ("none", "undersample", "oversample", "class_weight")


class DatasetError(FmaGenreError):
    """A dataset file or folder that cannot be used. ``str(err)`` is ``"<path>: <problem>"``."""


def track_table(frame: pd.DataFrame, source: str | os.PathLike) -> pd.DataFrame:
    """Check ``frame`` against the track-table schema and put its columns in order.

    Raises :class:`DatasetError` naming ``source`` if a column is missing or
    a track id is repeated.
    """
    missing = [c for c in TRACK_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(source, f"track table lacks columns {missing}")
    repeated = frame.track_id[frame.track_id.duplicated()]
    if len(repeated):
        raise DatasetError(source, f"track ids are not unique: {sorted(set(repeated))[:5]}")
    extras = [c for c in frame.columns if c not in TRACK_COLUMNS]
    return frame[list(TRACK_COLUMNS) + extras].reset_index(drop=True)


def folder(root: str | os.PathLike, artists: str | os.PathLike | None = None) -> pd.DataFrame:
    """Track table of the audio files under ``root`` (searched recursively).

    A file in a sub-folder is labelled with the name of the sub-folder right
    below ``root`` (``<root>/<label>/.../*.mp3``); a file directly in
    ``root`` has no label, so a flat folder is an unlabelled library.
    Extensions are :data:`utils.audio.decoder.AUDIO_EXTENSIONS`; hidden files and
    folders (names starting with ``.``, such as macOS ``._song.mp3``
    resource forks) are skipped. No split.

    ``artist`` comes from ``artists``, a CSV with columns ``path`` (below
    ``root``, ``/``-separated) and ``artist`` (default: ``root/artists.csv``
    when there), else from each file's artist tag (album artist when it has
    none; :func:`tagged_artist`); NA where neither says.
    """
    tracks = _listing(root)
    root = Path(root)
    listed = root / ARTISTS_CSV if artists is None else Path(artists)
    relative = [Path(p).relative_to(root).as_posix() for p in tracks.path]
    if artists is not None or listed.is_file():
        named = read_artists(listed)
        artist = [named.get(r) for r in relative]
    else:
        artist = [tagged_artist(p) for p in tracks.path]
    return tracks.assign(artist=pd.Series(artist, dtype="str"))


def _listing(root: str | os.PathLike) -> pd.DataFrame:
    """The track table of :func:`folder` without artists."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "no such folder" if not root.exists() else "not a folder")
    files = [f for f in audio.find_audio([root])
             if not any(part.startswith(".") for part in f.relative_to(root).parts)]
    if not files:
        raise DatasetError(root, f"no audio files ({', '.join(audio.AUDIO_EXTENSIONS)}) "
                                 "in this folder or below")
    relative = [f.relative_to(root) for f in files]
    return track_table(pd.DataFrame({
        "track_id": [r.with_suffix("").as_posix() for r in relative],
        "path": [str(f) for f in files],
        "label": pd.Series([r.parts[0] if len(r.parts) > 1 else None for r in relative], dtype="str"),
        "split": pd.Series([None] * len(files), dtype="str"),
        "artist": pd.Series([None] * len(files), dtype="str"),
    }), root)


def read_artists(path: str | os.PathLike) -> dict[str, str]:
    """``{path below the folder: artist}`` from a CSV with columns ``path`` and ``artist``.

    Raises :class:`DatasetError` naming the file when it is missing or lacks a column.
    """
    try:
        table = pd.read_csv(path, dtype="str", keep_default_na=False)
    except FileNotFoundError:
        raise DatasetError(path, "no such artist list") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError(path, f"not a CSV artist list ({err})") from None
    if not {"path", "artist"} <= set(table.columns):
        raise DatasetError(path, f"an artist list needs columns path, artist; has {list(table.columns)}")
    return {Path(p).as_posix(): a.strip() for p, a in zip(table.path, table.artist) if a.strip()}


def tagged_artist(path: str | os.PathLike) -> str | None:
    """The artist tag of an audio file (its album artist when it has none), or None.

    Reads tags only (mutagen), never the audio: an untagged or unreadable file is None.
    """
    import mutagen  # tags of MP3, FLAC, Ogg, M4A, WAV, ...

    try:
        tags = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError, ValueError):
        return None
    for key in ("artist", "albumartist"):
        values = tags.get(key) if tags is not None and tags.tags is not None else None
        if values and str(values[0]).strip():
            return str(values[0]).strip()
    return None


def gtzan(root: str | os.PathLike, index: str | os.PathLike = GTZAN_ARTISTS) -> pd.DataFrame:
    """Track table of GTZAN in its usual layout, ``<root>/<genre>/<genre>.000NN.wav``.

    Any audio extension is accepted (``.wav``, ``.flac``, ...). ``track_id``
    is the file stem (``"blues.00000"``), ``label`` the genre; ``artist`` and
    ``recording`` (the title) come from Sturm's ``index`` (:func:`gtzan_index`; NA for a clip
    it leaves unidentified). GTZAN has no official split. A file that does
    not follow the layout raises :class:`DatasetError`; use :func:`folder`
    for other layouts.
    """
    tracks = _listing(root)
    stems = tracks.track_id.str.rsplit("/", n=1).str[-1].astype("str")
    for path, rel, label, stem in zip(tracks.path, tracks.track_id, tracks.label, stems):
        if pd.isna(label) or rel.count("/") != 1 or not re.fullmatch(rf"{re.escape(label)}\.\d{{5}}", stem):
            raise DatasetError(path, "not in the GTZAN layout <genre>/<genre>.NNNNN.<ext>")
    known = gtzan_index(index)
    who = [known.get(stem, (None, None)) for stem in stems]
    return track_table(tracks.assign(track_id=stems, artist=pd.Series([a for a, _ in who], dtype="str"),
                                     recording=pd.Series([t for _, t in who], dtype="str")), root)


def gtzan_index(path: str | os.PathLike = GTZAN_ARTISTS) -> dict[str, tuple[str | None, str | None]]:
    """``{clip id: (artist, title)}`` from Sturm's index (``genre.NNNNN.wav ::: artist ::: title``);
    an empty field is None. Raises :class:`DatasetError` when the file is missing."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise DatasetError(path, "no GTZAN artist index") from None
    out = {}
    for line in lines:
        if line.startswith("##") or ":::" not in line:
            continue
        clip, artist, title = ([f.strip() for f in line.split(":::")] + ["", ""])[:3]
        out[clip.removesuffix(".wav")] = (artist or None, title or None)
    return out


def class_balance(tracks: pd.DataFrame) -> pd.DataFrame:
    """Track counts per class (rows) and split (columns), with a ``total`` column.

    Columns are the splits present, in the order of :data:`SPLITS`, then
    ``unsplit`` for tracks without a split, then ``total``; rows run from the
    largest class down. A multi-label track counts once for each of its
    labels. Unlabelled tracks are not counted.
    """
    labelled = tracks.loc[tracks.label.notna(), ["label", "split"]].explode("label")
    split = labelled.split.fillna("unsplit")
    table = pd.crosstab(labelled.label.rename("label"), split.rename("split"))
    table = table[[s for s in (*SPLITS, "unsplit") if s in table.columns]]
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False, kind="stable")


def plot_class_balance(tracks: pd.DataFrame, title: str | None = None) -> Figure:
    """Horizontal bar chart (seaborn) of :func:`class_balance`, one bar per class and split.

    The title gives the number of tracks and the imbalance ratio (largest
    class / smallest class). Built on a bare :class:`matplotlib.figure.Figure`,
    so it needs no pyplot state and no display.
    """
    import seaborn as sns  # slow to import, and loads pyplot: only when a figure is drawn

    table = class_balance(tracks)
    long = table.drop(columns="total").reset_index().melt("label", var_name="split", value_name="tracks")
    n_hues = table.shape[1] - 1  # bars per class: one per split column
    fig = Figure(figsize=(7, 1.5 + len(table) * (0.15 + 0.2 * n_hues)), layout="constrained")
    ax = fig.subplots()
    sns.barplot(long, x="tracks", y="label", hue="split", orient="h", ax=ax)
    ax.set(xlabel="tracks", ylabel="")
    ratio = table.total.max() / table.total.min() if len(table) else float("nan")
    ax.set_title(title or f"{int(tracks.label.notna().sum()):,} tracks, {len(table)} classes, "
                          f"imbalance {ratio:.2f} : 1")
    return fig


def save_class_balance(tracks: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> Path:
    """Save :func:`plot_class_balance` to ``path`` (format from the extension: .png, .pdf, .svg), atomically."""
    path = Path(path)
    figure = plot_class_balance(tracks, title)
    return write_atomic(path, lambda tmp: figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120))


@dataclass(frozen=True)
class Balance:
    """How to rebalance a training set: train on ``indices`` with ``class_weight``.

    Attributes
    ----------
    indices : row positions to train on, sorted (repeated when over-sampled)
    class_weight : ``{class: weight}`` for Keras ``fit(class_weight=...)``, or None
    """

    indices: np.ndarray
    class_weight: dict | None = None


def balance(labels: Sequence, method: str = "none", seed: int = 0) -> Balance:
    """Rebalance single-label training data by ``method``:

    - ``"none"``: every row, no weights
    - ``"undersample"``: each class drawn without replacement down to the smallest class's count
    - ``"oversample"``: each class topped up, drawn with replacement, to the largest class's count
    - ``"class_weight"``: every row, weights ``n / (n_classes * count)`` (sklearn's "balanced")

    ``labels`` are the classes of the rows (class indices for Keras); the
    draws are seeded by ``seed``.
    """
    if method not in BALANCE_METHODS:
        raise ValueError(f"balance method must be one of {BALANCE_METHODS}, got {method!r}")
    y = np.asarray(labels)
    if pd.isna(y).any():
        raise ValueError("balance needs a label for every row; drop unlabelled rows first")
    everything = np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    if method == "none":
        return Balance(everything)
    if method == "class_weight":
        from sklearn.utils.class_weight import compute_class_weight

        weights = compute_class_weight("balanced", classes=classes, y=y)
        return Balance(everything, {c.item() if hasattr(c, "item") else c: float(w)
                                    for c, w in zip(classes, weights)})
    rng = np.random.default_rng(seed)
    target = counts.min() if method == "undersample" else counts.max()
    chosen = []
    for c in classes:
        rows = everything[y == c]
        if method == "undersample":
            chosen.append(rng.choice(rows, target, replace=False))
        else:
            chosen.append(np.concatenate([rows, rng.choice(rows, target - len(rows), replace=True)]))
    return Balance(np.sort(np.concatenate(chosen)))
