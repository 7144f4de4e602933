"""The Free Music Archive (FMA) metadata, read the way its authors define it.

``fma_metadata.zip`` holds ``tracks.csv`` (one row per track, a two-row
column header such as ``(track, genre_top)``, ``(set, split)``,
``(set, subset)``, then a row naming the index, ``track_id``) and
``genres.csv`` (the genre tree: ``genre_id, #tracks, parent, title,
top_level``). :func:`load_tracks` and :func:`load_genres` read them as
``utils.load()`` of https://github.com/mdeff/fma does: list columns parsed,
dates as datetimes, ``(set, subset)`` an ordered category small < medium <
large. :func:`subset` turns them into a track table (schema in
:mod:`utils.data.datasets`) with the official artist-filtered split; the known-bad
clips of :mod:`utils.data.fma_bad_tracks` come back in a second table with the
reason they were excluded. :func:`load_export` reads a flat per-track export
(one header row, such as ``fma-rock-vs-hiphop.csv``) into the same schema.
"""
from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from utils.data.datasets import DatasetError, folder, track_table
from utils.data.fma_bad_tracks import BAD_TRACKS

SUBSETS = ("small", "medium", "large", "full")  # nested; fma_full has the tracks of fma_large, untrimmed
LABELS = ("genre_top", "genres", "genres_all")
# The columns subset() reads (the official tracks.csv has 52).
REQUIRED_COLUMNS = (("set", "subset"), ("set", "split"), ("track", "genre_top"), ("track", "genres"),
                    ("track", "genres_all"), ("track", "duration"), ("track", "title"),
                    ("artist", "id"), ("artist", "name"))
GENRE_COLUMNS = ("#tracks", "parent", "title", "top_level")
EXPORT_COLUMNS = ("track_id", "genre_top", "genres_all", "duration", "title")
_LIST_COLUMNS = (("track", "tags"), ("album", "tags"), ("artist", "tags"),
                 ("track", "genres"), ("track", "genres_all"))
_DATE_COLUMNS = (("track", "date_created"), ("track", "date_recorded"), ("album", "date_created"),
                 ("album", "date_released"), ("artist", "date_created"),
                 ("artist", "active_year_begin"), ("artist", "active_year_end"))
_CATEGORY_COLUMNS = (("track", "genre_top"), ("track", "license"), ("album", "type"),
                     ("album", "information"), ("artist", "bio"))
_SPLIT_VALUES = ("training", "validation", "test")


def audio_path(root: str | os.PathLike, track_id: int | str) -> Path:
    """Where FMA keeps a track's MP3: ``<root>/<id[:3]>/<id>.mp3`` with a 6-digit id."""
    tid = f"{int(track_id):06d}"
    return Path(root) / tid[:3] / f"{tid}.mp3"


def load_tracks(path: str | os.PathLike) -> pd.DataFrame:
    """Read the official ``tracks.csv`` (also ``.csv.gz``): index ``track_id``, two-level columns.

    Conversions follow the FMA authors' ``utils.load()``: the list columns
    (tags, genres, genres_all) parsed to lists, dates to datetimes,
    ``(set, subset)`` an ordered category small < medium < large, genre_top,
    license, album type and information, artist bio as categories. Raises
    :class:`DatasetError` for a missing file, a file without the two-row
    header or the columns of :data:`REQUIRED_COLUMNS`, or unknown subset /
    split values.
    """
    path = _existing(path)
    try:
        tracks = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DatasetError(path, f"not a readable tracks.csv: {err}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in tracks.columns]
    if missing:
        found = sorted({c[0] for c in tracks.columns})[:8]
        raise DatasetError(path, f"not an FMA tracks.csv: no column(s) {missing} in the two-row "
                                 f"header (top-level columns found: {found})")
    if not pd.api.types.is_integer_dtype(tracks.index):
        raise DatasetError(path, f"not an FMA tracks.csv: the index {tracks.index.name!r} is not integer track ids")
    for column in _LIST_COLUMNS:
        if column in tracks.columns:
            tracks[column] = _parse_lists(tracks[column], path)
    for column in _DATE_COLUMNS:
        if column in tracks.columns:
            try:
                tracks[column] = pd.to_datetime(tracks[column], format="ISO8601")
            except ValueError as err:
                raise DatasetError(path, f"column {column}: {err}") from None
    _check_values(tracks["set", "subset"], SUBSETS[:3], path)
    _check_values(tracks["set", "split"], _SPLIT_VALUES, path)
    tracks["set", "subset"] = tracks["set", "subset"].astype(
        pd.CategoricalDtype(categories=SUBSETS[:3], ordered=True))
    for column in _CATEGORY_COLUMNS:
        if column in tracks.columns:
            tracks[column] = tracks[column].astype("category")
    return tracks


def load_genres(path: str | os.PathLike) -> pd.DataFrame:
    """Read the official ``genres.csv``: index ``genre_id``; ``#tracks``, ``parent`` (0 for a
    root), ``title``, ``top_level`` (the root above the genre)."""
    path = _existing(path)
    try:
        genres = pd.read_csv(path, index_col=0)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DatasetError(path, f"not a readable genres.csv: {err}") from None
    missing = [c for c in GENRE_COLUMNS if c not in genres.columns]
    if missing or genres.index.name != "genre_id":
        raise DatasetError(path, f"not an FMA genres.csv: expected columns genre_id, "
                                 f"{', '.join(GENRE_COLUMNS)}; found {genres.index.name}, {list(genres.columns)}")
    return genres


def top_level_genres(genres: pd.DataFrame) -> pd.DataFrame:
    """The roots of the genre tree (``parent == 0``): 16 in the official genres.csv."""
    return genres[genres.parent == 0]


def subset(tracks: pd.DataFrame, name: str = "medium", *, label: str = "genre_top",
           genres: Sequence[str] | None = None, genre_table: pd.DataFrame | None = None,
           audio_root: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tracks of an FMA subset as a track table, and the known-bad ones apart.

    Parameters
    ----------
    tracks : :func:`load_tracks` output
    name : ``"small"``, ``"medium"``, ``"large"`` or ``"full"``. Subsets are
        nested: ``"medium"`` is every track whose ``(set, subset)`` is small
        or medium; ``"full"`` is every track.
    label : ``"genre_top"`` (one genre title per track; NA for tracks whose
        genres span several roots), or ``"genres"`` / ``"genres_all"`` for a
        multi-label tuple of genre titles (needs ``genre_table``)
    genres : keep only tracks labelled with one of these genre titles (and,
        for multi-label, only these titles in the tuples). A title without
        tracks in the subset raises ValueError.
    genre_table : :func:`load_genres` output, to name the genre ids
    audio_root : folder of the audio archive, for the ``path`` column

    Returns
    -------
    kept : track table with the official ``split`` and ``artist`` (the
        artist id), plus ``subset``, ``duration`` (s), ``title``,
        ``artist_name``, ``genres_all`` (genre ids)
    excluded : the known-bad clips of :data:`utils.data.fma_bad_tracks.BAD_TRACKS`
        that the selection held, same columns plus ``reason``. Empty for
        ``"full"``, whose tracks are untrimmed and whole.
    """
    if name not in SUBSETS:
        raise ValueError(f"unknown FMA subset {name!r}; expected one of {SUBSETS}")
    if label not in LABELS:
        raise ValueError(f"unknown FMA label {label!r}; expected one of {LABELS}")
    rows = tracks if name == "full" else tracks[tracks["set", "subset"] <= name]
    if label == "genre_top":
        labels = rows["track", "genre_top"].astype("str").where(rows["track", "genre_top"].notna())
    else:
        if genre_table is None:
            raise ValueError(f"label={label!r} names genre ids: pass genre_table=load_genres(...)")
        ids = set(rows["track", label].explode().dropna())
        titles = genre_table.title.to_dict()
        unknown = sorted(ids - set(titles))
        if unknown:
            raise ValueError(f"genre id(s) {unknown[:5]} of ('track', {label!r}) are not in genre_table")
        labels = rows["track", label].map(lambda v: tuple(titles[i] for i in v) or None, na_action="ignore")
    table = pd.DataFrame({
        "track_id": [f"{t:06d}" for t in rows.index],
        "path": _paths(audio_root, rows.index),
        "label": labels.to_numpy(),
        "split": rows["set", "split"].astype("str").where(rows["set", "split"].notna()).to_numpy(),
        "artist": [None if pd.isna(a) else str(int(a)) for a in rows["artist", "id"]],
        "subset": rows["set", "subset"].astype("str").to_numpy(),
        "duration": rows["track", "duration"].to_numpy(),
        "title": rows["track", "title"].to_numpy(),
        "artist_name": rows["artist", "name"].to_numpy(),
        "genres_all": rows["track", "genres_all"].to_numpy(),
    })
    if genres is not None:
        table = _restrict(table, genres, f"subset {name}", genre_table)
    return _exclude_known_bad(track_table(table, "tracks.csv"), full_length=name == "full")


def load_export(path: str | os.PathLike, audio_root: str | os.PathLike | None = None,
                full_length: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a flat per-track FMA export (one header row: ``track_id, genre_top, genres_all,
    duration, title, ...``, e.g. ``fma-rock-vs-hiphop.csv``) as a track table.

    ``label`` is ``genre_top``; the export has no split and no artist (NA).
    Extras: ``duration`` (s), ``title``, ``genres_all`` (genre ids), and
    ``license`` and ``bit_rate`` (bit/s) where present. Returns ``(kept,
    excluded)`` as :func:`subset` does; pass ``full_length=True`` when the
    audio is ``fma_full``, whose tracks are whole.
    """
    path = _existing(path)
    try:
        export = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DatasetError(path, f"not a readable FMA export: {err}") from None
    missing = [c for c in EXPORT_COLUMNS if c not in export.columns]
    if missing:
        raise DatasetError(path, f"not a flat FMA export: no column(s) {missing} "
                                 f"(found {list(export.columns)[:8]})")
    if not pd.api.types.is_integer_dtype(export.track_id):
        raise DatasetError(path, "not a flat FMA export: track_id holds values that are not integer ids")
    extras = [c for c in ("license", "bit_rate") if c in export.columns]
    table = pd.DataFrame({
        "track_id": [f"{t:06d}" for t in export.track_id],
        "path": _paths(audio_root, export.track_id),
        "label": export.genre_top.to_numpy(),
        "split": pd.Series(None, index=export.index, dtype="str"),
        "artist": pd.Series(None, index=export.index, dtype="str"),
        "duration": export.duration.to_numpy(),
        "title": export.title.to_numpy(),
        "genres_all": _parse_lists(export.genres_all, path).to_numpy(),
        **{c: export[c].to_numpy() for c in extras},
    })
    return _exclude_known_bad(track_table(table, path), full_length)


def audio_tracks(root: str | os.PathLike, metadata: pd.DataFrame | None = None,
                 full_length: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Track table of the FMA audio files present under ``root`` (``<id[:3]>/<id>.mp3``).

    ``label``, ``split`` and ``artist`` come from ``metadata`` (a track table
    from :func:`subset` or :func:`load_export`) where it has the track, NA
    otherwise: the files it lacks are an unlabelled library. Returns
    ``(kept, excluded)`` as :func:`subset` does.
    """
    files = folder(root)
    stems = files.track_id.str.rsplit("/", n=1).str[-1].astype("str")
    odd = files.path[~stems.str.fullmatch(r"\d{6}")]
    if len(odd):
        raise DatasetError(odd.iloc[0], "not an FMA audio file name (<6-digit track id>.mp3)")
    table = files.assign(track_id=stems)
    for column in ("label", "split", "artist"):  # from the metadata, never from the folders 000/, 001/, ...
        table[column] = (pd.Series(None, index=table.index, dtype="str") if metadata is None else
                         metadata.set_index("track_id")[column].reindex(table.track_id).reset_index(drop=True))
    return _exclude_known_bad(track_table(table, root), full_length)


def _exclude_known_bad(table: pd.DataFrame, full_length: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a track table into (kept, excluded-with-reason) by the known-bad clip list."""
    reasons = {} if full_length else {f"{b.track_id:06d}": b.reason for b in BAD_TRACKS}
    bad = table.track_id.isin(reasons).to_numpy()
    excluded = table[bad].assign(reason=table.track_id[bad].map(reasons).astype("str"))
    return table[~bad].reset_index(drop=True), excluded.reset_index(drop=True)


def _restrict(table: pd.DataFrame, genres: Sequence[str], where: str,
              genre_table: pd.DataFrame | None) -> pd.DataFrame:
    """Keep the tracks labelled with one of ``genres`` (and only those titles in multi-labels)."""
    wanted = list(dict.fromkeys(genres))
    if genre_table is not None:
        unknown = [g for g in wanted if g not in set(genre_table.title)]
        if unknown:
            raise ValueError(f"unknown FMA genre(s) {unknown}")
    keep = set(wanted)

    def narrow(value):
        if isinstance(value, tuple):
            return tuple(g for g in value if g in keep) or None
        return value if value in keep else None

    label = table.label.map(narrow)
    present = set(label.explode().dropna())
    empty = [g for g in wanted if g not in present]
    if empty:
        raise ValueError(f"no tracks labelled {empty} in {where}")
    return table.assign(label=label)[label.notna()]


def _paths(root: str | os.PathLike | None, ids) -> pd.Series:
    if root is None:
        return pd.Series([None] * len(ids), dtype="str")
    return pd.Series([str(audio_path(root, t)) for t in ids], dtype="str")


def _parse_lists(column: pd.Series, path: Path) -> pd.Series:
    """Parse a column of Python list literals (``"[21, 12]"``), naming the bad value if one is not."""
    def parse(text: str) -> list:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, list):
            raise DatasetError(path, f"column {column.name}: {text!r} is not a list literal")
        return value
    return column.map(parse, na_action="ignore")


def _check_values(column: pd.Series, allowed: Sequence[str], path: Path) -> None:
    unknown = sorted(set(column.dropna()) - set(allowed))
    if unknown:
        raise DatasetError(path, f"column {column.name}: unknown value(s) {unknown[:5]}, expected {tuple(allowed)}")


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "no such file" if not path.exists() else "not a regular file")
    return path
