"""fma_small as Mel-spectrogram pictures: the dataset, read in place.

A picture folder is laid out ``<root>/<split>/<Genre>/<track_id>.png`` (or
``<root>/<Genre>/<track_id>.png``, one split's folder on its own): one 128 x
128 8-bit greyscale PNG per track, made from the track's audio by the front
end :data:`utils.audio.picture.FMA_SMALL` (row 0 the highest Mel band,
columns time, pixel ``v`` a level of ``-80 + 80 v / 255`` dB re the clip's
peak). The shared copy (:data:`SHARED`) holds fma_small's official training
and validation splits, with ``tracks.csv`` beside them giving every one of
the 8,000 tracks its official split and FMA ``artist_id``: no artist is in
two splits. Its test pictures are sealed, judged once by ``fma-genre
evaluate``.

:func:`pictures` gives the track table of :mod:`utils.data.datasets` (``path``
is the PNG); :func:`load_pictures` reads the PNGs into one array of model
inputs, in the layout every window model takes, ``(tracks, time, Mels)``.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from utils.audio.picture import pixels_to_window
from utils.data.datasets import SHARED_DATA, DatasetError, track_table
from utils.data.splits import SPLITS

SHARED = SHARED_DATA / "fma_small_mel"
GENRES = ("Electronic", "Experimental", "Folk", "Hip-Hop", "Instrumental", "International", "Pop", "Rock")
SIZE = (128, 128)  # (Mel bands, time columns) of one picture
TRACKS_CSV = "tracks.csv"
_TRACKS_COLUMNS = ("track_id", "genre_top", "split", "artist_id")


def pictures(root: str | os.PathLike = SHARED, splits: tuple[str, ...] | None = None,
             metadata: str | os.PathLike | None = None) -> pd.DataFrame:
    """Track table of a picture folder: one row per ``<split>/<Genre>/<track_id>.png``.

    Parameters
    ----------
    root : the folder; its sub-folders are splits (``training``, ``validation``, ``test``) holding
        genre folders, or are genre folders themselves (``split`` is then NA, or the split
        ``tracks.csv`` gives the track)
    splits : keep only these splits (None: all found)
    metadata : fma_small's ``tracks.csv`` (default: ``root/tracks.csv``, else the shared one when
        there): gives ``artist`` (FMA ``artist_id``), ``artist_name`` and ``title``, and the split
        of a track in a folder without split level

    Returns
    -------
    pandas.DataFrame
        ``track_id, path, label, split, artist`` (:mod:`utils.data.datasets`), then
        ``artist_name, title``; sorted by split (training first), genre, track.

    Raises
    ------
    DatasetError
        For a missing folder, a folder without pictures, a file named other than
        ``<track_id>.png`` or a ``tracks.csv`` that disagrees with a picture's genre or split.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "no such folder" if not root.exists() else "not a folder")
    found = sorted(p for p in root.glob("*/*.png") if not p.name.startswith("."))
    levels = 1
    if not found:
        found, levels = sorted(p for p in root.glob("*/*/*.png") if not p.name.startswith(".")), 2
    if not found:
        raise DatasetError(root, "no pictures: expected <split>/<Genre>/<track_id>.png or <Genre>/<track_id>.png")
    for p in found:
        if not re.fullmatch(r"\d+", p.stem):
            raise DatasetError(p, "not a picture of an FMA track (the name must be <track_id>.png)")
    if levels == 2 and not {p.parent.parent.name for p in found} <= set(SPLITS):
        raise DatasetError(root, f"its sub-folders must be splits {SPLITS} holding genre folders")
    table = pd.DataFrame({
        "track_id": [f"{int(p.stem):06d}" for p in found],
        "path": [str(p) for p in found],
        "label": pd.Series([p.parent.name for p in found], dtype="str"),
        "split": pd.Series([p.parent.parent.name if levels == 2 else None for p in found], dtype="str"),
    })
    meta = _metadata(root, metadata)
    if meta is not None:
        known = meta.reindex(table.track_id)
        _agree(table, known, root)
        table["split"] = table.split.fillna(pd.Series(known.split.to_numpy(), dtype="str"))
        table["artist"] = pd.Series(known.artist_id.to_numpy(), dtype="str")
        for column in ("artist_name", "title"):
            table[column] = pd.Series(known[column].to_numpy() if column in known else None, dtype="str")
    else:
        table["artist"] = pd.Series([None] * len(table), dtype="str")
    if splits is not None:
        table = table[table.split.isin(splits)]
    order = table.split.map({s: i for i, s in enumerate(SPLITS)}).fillna(len(SPLITS))
    table = table.assign(_order=order).sort_values(["_order", "label", "track_id"], kind="stable")
    return track_table(table.drop(columns="_order"), root)


def _metadata(root: Path, metadata: str | os.PathLike | None) -> pd.DataFrame | None:
    """fma_small's tracks.csv indexed by 6-digit track id, or None when there is none to read."""
    if metadata is None:
        candidates = [root / TRACKS_CSV, root.parent / TRACKS_CSV, SHARED / TRACKS_CSV]
        metadata = next((c for c in candidates if c.is_file()), None)
        if metadata is None:
            return None
    path = Path(metadata)
    try:
        meta = pd.read_csv(path, dtype="str", keep_default_na=False)
    except FileNotFoundError:
        raise DatasetError(path, "no such tracks.csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError(path, f"not a readable tracks.csv ({err})") from None
    missing = [c for c in _TRACKS_COLUMNS if c not in meta.columns]
    if missing:
        raise DatasetError(path, f"not fma_small's tracks.csv: no column(s) {missing}")
    meta["track_id"] = meta.track_id.str.zfill(6)
    meta = meta.replace("", None)
    return meta.set_index("track_id")


def _agree(table: pd.DataFrame, known: pd.DataFrame, root: Path) -> None:
    """Raise when tracks.csv gives a picture another genre or split than its folders do."""
    for column, truth in (("label", "genre_top"), ("split", "split")):
        listed = known[truth].to_numpy()
        given = table[column].to_numpy()
        bad = [i for i in range(len(table)) if pd.notna(given[i]) and pd.notna(listed[i]) and given[i] != listed[i]]
        if bad:
            i = bad[0]
            raise DatasetError(table.path.iloc[i], f"in folder {column} {given[i]!r} but tracks.csv says "
                                                   f"{listed[i]!r} ({len(bad)} such pictures under {root})")


def read_picture(path: str | os.PathLike) -> np.ndarray:
    """One picture as the model's input: float32 ``(time, Mels)`` levels 0-255, Mels rising.

    The PNG's rows run from the highest Mel band down and its columns are
    time; the model takes the transpose with the lowest band first, the
    layout of every window in the project. Raises :class:`DatasetError` for a
    file that is not an 8-bit greyscale PNG of :data:`SIZE`.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(path, f"not a readable PNG ({err})") from None
    if mode != "L" or pixels.shape != SIZE:
        raise DatasetError(path, f"expected an 8-bit greyscale {SIZE[0]}x{SIZE[1]} picture, "
                                 f"got mode {mode} {pixels.shape}")
    return pixels_to_window(pixels)


def load_pictures(paths, jobs: int = 4) -> np.ndarray:
    """Read many pictures (:func:`read_picture`) into one uint8 array ``(n, time, Mels)``.

    uint8 keeps fma_small's 7,194 pictures in 118 MB; the model casts them.
    PNG decoding releases the GIL, so ``jobs`` threads read in parallel.
    """
    paths = list(paths)
    out = np.empty((len(paths), SIZE[1], SIZE[0]), np.uint8)

    def read(i: int) -> None:
        out[i] = read_picture(paths[i])

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(read, range(len(paths))))
    return out
