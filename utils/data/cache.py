"""Spectrogram cache: extract log-Mel spectrograms once, train many times.

Layout (cache format 1)::

    CACHE/
      frontend.json      {"cache_format": 1, "frontend": FrontEnd.to_dict()}
      tracks.csv         the plan, written once: track_id, path, label, split, artist, recording, shard
      shards/00000.npy   float16 (frames, n_mels): the shard's tracks' log-Mel frames, end to end
      shards/00000.csv   the shard's index: track_id, label, split, status ("ok" / "failed"),
                         error, offset (first frame in the .npy), n_frames, n_windows

Why sharded ``.npy`` files rather than one big file, HDF5 or Zarr:

- A shard is a deterministic batch of tracks (the plan sorts them by id and
  cuts every ``shard_size``) and the unit of work of one process or one Dask
  task (issue 9). It writes its ``.npy``, then its ``.csv``, each to a temp
  file renamed with ``os.replace``. The index is the commit: a shard is done
  when its ``.csv`` exists, and that is written after the data it points
  to. So many workers write in parallel to a shared file system without
  locks, a killed run loses only unfinished shards, a rerun skips finished
  ones, and no reader ever sees half a shard. On an object store each file
  is one atomic PUT. HDF5 needs MPI for parallel writes and a killed writer
  can corrupt the whole file; Zarr would add a dependency for no gain here.
- Frames, not windows: windows are cut at read time from ``offset`` and
  ``n_frames`` (:func:`utils.audio.frontend.window_starts`), so 50 % overlapping
  windows are not stored twice. A track shorter than one window is stored
  filled to one window (:func:`utils.audio.frontend.fix_frames`), and read back
  from its own frames, so caches written when the fill was silence read the same.
- Time-major float16: a window is one contiguous block of
  ``window_frames x n_mels x 2`` bytes (32 KiB at the defaults), read from
  ``np.load(mmap_mode="r")`` memory maps kept open per shard. float16
  halves the bytes of float32; its rounding error is at most 0.031 dB for
  values under 128 dB in magnitude.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd
from tqdm import tqdm

from utils import audio
from utils.atomic import write_atomic, write_npy, write_text
from utils.audio.frontend import FrontEnd, LogMel, fix_frames, logmel_files, window_starts, windows
from utils.audio.levels import audible, normalize_level
from utils.errors import FmaGenreError

CACHE_FORMAT = 1
INDEX_COLUMNS = ("track_id", "label", "split", "status", "error", "offset", "n_frames", "n_windows")
_CSV_TYPES = {c: "str" for c in ("track_id", "path", "label", "split", "status", "error", "artist", "recording")}
_CSV_NA = {c: [""] for c in ("label", "split", "error", "artist", "recording")}  # only an empty field is missing
PLAN_COLUMNS = ("track_id", "path", "label", "split", "artist", "recording")  # artists travel with the cache
# float32 value of every float16 bit pattern (256 KiB). NumPy's float16 cast costs ~2 ns a
# value on one core, the whole budget of a fast reader; a lookup in compiled code is ~4x faster.
_HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


class CacheError(FmaGenreError):
    """A cache that cannot be opened or written as asked; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class Shard:
    """One unit of extraction work: shard ``number``'s rows of the plan
    (``track_id``, ``path``, ``label``, ``split``)."""

    number: int
    tracks: pd.DataFrame

    @property
    def name(self) -> str:
        return f"{self.number:05d}"


@dataclass(frozen=True)
class ShardResult:
    """What :func:`write_shard` did: tracks extracted, windows, failures (track id, error)."""

    number: int
    n_ok: int
    n_windows: int
    failures: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Summary:
    """One extraction run: shards and tracks done now or skipped as done before."""

    n_tracks: int
    n_ok: int
    n_windows: int
    failures: tuple[tuple[str, str], ...]
    skipped_shards: int
    skipped_tracks: int
    seconds: float
    skipped_failures: tuple[tuple[str, str], ...] = ()  # failures that earlier runs recorded in the skipped shards

    def __str__(self) -> str:
        every = self.failures + self.skipped_failures
        kinds = Counter(err.split(":")[0] for _, err in every)  # the error's class
        earlier = f", {len(self.skipped_failures)} of them failed" if self.skipped_failures else ""
        lines = [f"{self.n_tracks} tracks: {self.n_ok} extracted ({self.n_windows} windows), "
                 f"{len(self.failures)} failed, {self.skipped_tracks} skipped as done before "
                 f"({self.skipped_shards} shards{earlier}), in {self.seconds:.1f} s"]
        if every:
            lines.append(f"{len(every)} failed in all (recorded in the index with their error): "
                         + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
            lines += [f"  {tid}: {err}" for tid, err in every[:20]]
            if len(every) > 20:
                lines.append(f"  ... and {len(every) - 20} more")
        return "\n".join(lines)


def extract(tracks: pd.DataFrame, out: str | os.PathLike, fe: FrontEnd = FrontEnd(), *,
            shard_size: int = 64, prefetch: int = 2, progress: bool = True,
            on_shard: Callable[[ShardResult], None] | None = None) -> Summary:
    """Extract the log-Mel frames of ``tracks`` into the cache at ``out``, resuming a killed run.

    ``tracks`` has columns ``track_id`` (unique), ``path`` and optionally
    ``label`` and ``split`` (NA allowed). Files that fail to decode, and
    tracks shorter than ``fe.min_frames``, are recorded failed with their
    error; the run goes on. ``on_shard`` is called after each shard commits.
    """
    start = time.perf_counter()
    shards = prepare(out, tracks, fe, shard_size)
    todo = [s for s in shards if not is_done(out, s)]
    lm = LogMel(fe)
    results = []
    with tqdm(total=sum(len(s.tracks) for s in todo), unit="track", desc="extract",
              disable=not progress or None, file=sys.stderr) as bar:
        for shard in todo:
            results.append(write_shard(out, fe, shard, lm, prefetch, on_track=lambda: bar.update()))
            bar.set_postfix(failed=sum(len(r.failures) for r in results))
            if on_shard:
                on_shard(results[-1])
    return Summary(n_tracks=sum(len(s.tracks) for s in shards),
                   n_ok=sum(r.n_ok for r in results), n_windows=sum(r.n_windows for r in results),
                   failures=tuple(f for r in results for f in r.failures),
                   skipped_shards=len(shards) - len(todo),
                   skipped_tracks=sum(len(s.tracks) for s in shards) - sum(len(s.tracks) for s in todo),
                   seconds=time.perf_counter() - start, skipped_failures=earlier_failures(out, shards, todo))


def prepare(out: str | os.PathLike, tracks: pd.DataFrame, fe: FrontEnd,
            shard_size: int = 64) -> list[Shard]:
    """Create the cache at ``out`` (or check an existing one against ``fe`` and ``tracks``)
    and return all its shards, done or not. Distributed runs call this once, then
    :func:`write_shard` for each shard that is not :func:`is_done`."""
    out = Path(out)
    if not (out / "frontend.json").exists():
        if out.exists() and any(out.iterdir()):
            raise CacheError(f"{out} is not empty and has no frontend.json, so it is not a "
                             "spectrogram cache: choose a new folder")
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / "frontend.json",
                      json.dumps({"cache_format": CACHE_FORMAT, "frontend": fe.to_dict()}, indent=2))
    _check_frontend(out, fe)
    plan = _plan(out, _track_table(tracks), shard_size)
    (out / "shards").mkdir(exist_ok=True)
    for tmp in (out / "shards").glob("*.tmp"):  # left by killed writers; never committed
        tmp.unlink()
    return [Shard(int(n), rows.reset_index(drop=True)) for n, rows in plan.groupby("shard")]


def read_result(out: str | os.PathLike, shard: Shard) -> ShardResult:
    """What :func:`write_shard` did for a committed shard, read back from its index."""
    index = pd.read_csv(Path(out) / "shards" / f"{shard.name}.csv", keep_default_na=False,
                        dtype={"track_id": "str", "status": "str", "error": "str"})
    failed = index[index.status == "failed"]
    return ShardResult(shard.number, len(index) - len(failed), int(index.n_windows.sum()),
                       tuple(zip(failed.track_id, failed.error)))


def earlier_failures(out: str | os.PathLike, shards: list[Shard], todo: list[Shard]
                     ) -> tuple[tuple[str, str], ...]:
    """The failures recorded in the shards of ``shards`` not in ``todo`` (committed by an earlier run)."""
    now = {s.number for s in todo}
    return tuple(f for s in shards if s.number not in now for f in read_result(out, s).failures)


def is_done(out: str | os.PathLike, shard: Shard) -> bool:
    """Whether ``shard`` is committed (its index exists)."""
    return (Path(out) / "shards" / f"{shard.name}.csv").exists()


def write_shard(out: str | os.PathLike, fe: FrontEnd, shard: Shard, lm: LogMel | None = None,
                prefetch: int = 2, on_track: Callable[[], None] | None = None) -> ShardResult:
    """Extract one shard and commit it atomically: data file first, index last.

    Idempotent: two workers writing the same shard write the same bytes.
    A failed track's error is recorded as ``"<ErrorClass>: <path>: <problem>"``.
    """
    lm = lm or LogMel(fe)
    if lm.fe != fe:
        raise ValueError("lm was built for another front end than fe")
    blocks, rows, at = [], [], 0
    for track, (path, S) in zip(shard.tracks.itertuples(), logmel_files(shard.tracks.path, lm, prefetch)):
        err = S if isinstance(S, audio.AudioError) else None
        n_frames, n_windows = (0 if err else len(S)), 0
        if err is None:
            try:
                n_windows = len(windows(S, fe, source=str(path)))
            except audio.TooShortError as too_short:
                err = too_short
        rows.append((track.track_id, track.label, track.split, "failed" if err else "ok",
                     f"{type(err).__name__}: {err}" if err else None, at, n_frames, n_windows))
        if err is None:
            blocks.append(fix_frames(S, max(n_frames, fe.window_frames)).astype(np.float16))
            at += len(blocks[-1])
        if on_track:
            on_track()
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    data = np.concatenate(blocks) if blocks else np.empty((0, fe.n_mels), np.float16)
    base = Path(out) / "shards" / shard.name
    _write_atomic(base.with_suffix(".npy"), data)
    _write_atomic(base.with_suffix(".csv"), index)
    failed = index[index.status == "failed"]
    return ShardResult(shard.number, len(index) - len(failed), int(index.n_windows.sum()),
                       tuple(zip(failed.track_id, failed.error)))


def _track_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """Check a tracks table and return its :data:`PLAN_COLUMNS` as str (NA kept, and where absent)."""
    missing = {"track_id", "path"} - set(tracks.columns)
    if missing:
        raise CacheError(f"the tracks table lacks column(s) {sorted(missing)}")
    t = pd.DataFrame({c: (tracks[c] if c in tracks else pd.NA) for c in PLAN_COLUMNS},
                     index=tracks.index).astype("str").reset_index(drop=True)
    dup = t.track_id[t.track_id.duplicated()]
    if len(dup) or t.track_id.isna().any() or (t.track_id == "").any():
        raise CacheError(f"track_id must be unique and not empty; duplicated: {sorted(set(dup))[:5]}")
    return t


def _plan(out: Path, tracks: pd.DataFrame, shard_size: int) -> pd.DataFrame:
    """The stored plan (checked against ``tracks``, paths taken from it), or a new one."""
    path = out / "tracks.csv"
    if not path.exists():
        plan = tracks.sort_values("track_id", kind="stable").reset_index(drop=True)
        plan["shard"] = np.arange(len(plan)) // shard_size
        _write_atomic(path, plan)
        return plan
    plan = _read_csv(path)
    ours, theirs = (df.set_index("track_id")[["label", "split"]].fillna("<NA>") for df in (plan, tracks))
    added, removed = theirs.index.difference(ours.index), ours.index.difference(theirs.index)
    common = ours.index.intersection(theirs.index)
    changed = common[(ours.loc[common] != theirs.loc[common]).any(axis=1)]
    if len(added) or len(removed) or len(changed):
        raise CacheError(f"{out} was made for other tracks: {len(added)} added {list(added[:3])}, "
                         f"{len(removed)} removed {list(removed[:3])}, {len(changed)} with another "
                         f"label or split {list(changed[:3])}. Extract into a new folder.")
    plan["path"] = plan.track_id.map(tracks.set_index("track_id").path)  # data may have moved
    return plan


def _check_frontend(out: Path, fe: FrontEnd | None) -> FrontEnd:
    """The cache's front end; raise :class:`CacheError` if it is not ``fe``."""
    try:
        meta = json.loads((out / "frontend.json").read_text())
    except FileNotFoundError:
        raise CacheError(f"{out} is not a spectrogram cache (no frontend.json)") from None
    if meta.get("cache_format") != CACHE_FORMAT:
        raise CacheError(f"{out} has cache format {meta.get('cache_format')}; this version reads "
                         f"format {CACHE_FORMAT}: extract again into a new folder")
    stored = FrontEnd.from_dict(meta["frontend"])
    if fe is not None and fe != stored:
        diff = "; ".join(f"{k}: cache {v!r}, asked {fe.to_dict()[k]!r}"
                         for k, v in stored.to_dict().items() if v != fe.to_dict()[k])
        raise CacheError(f"{out} was made with other front-end parameters ({diff}): "
                         "use those parameters, or extract into a new folder")
    return stored


def _write_atomic(path: Path, content: str | np.ndarray | pd.DataFrame) -> None:
    """Write a shard array, an index or text through :func:`utils.atomic.write_atomic`."""
    if isinstance(content, np.ndarray):
        write_npy(path, content)
    elif isinstance(content, pd.DataFrame):
        write_atomic(path, lambda tmp: content.to_csv(tmp, index=False))
    else:
        write_text(path, content)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=_CSV_TYPES, keep_default_na=False, na_values=_CSV_NA)


@dataclass(frozen=True, eq=False)
class Windows:
    """Windows selected from a cache. Window ``i`` is frames ``start[i]`` to
    ``start[i] + window_frames`` of shard ``shard[i]``, cut from track
    ``tracks.iloc[track[i]]``."""

    tracks: pd.DataFrame
    track: np.ndarray
    shard: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return len(self.track)

    @property
    def track_id(self) -> np.ndarray:
        """Track id of each window, to average predictions per track."""
        return self.tracks.track_id.to_numpy()[self.track]

    @property
    def label(self) -> np.ndarray:
        return self.tracks.label.to_numpy()[self.track]


class Cache:
    """A spectrogram cache opened for reading.

    ``tracks`` is the index of every track (ok and failed). Raises
    :class:`CacheError` if ``path`` is not a cache, was made with another
    front end than ``fe`` (when given), or has unfinished shards (unless
    ``allow_partial``).
    """

    def __init__(self, path: str | os.PathLike, fe: FrontEnd | None = None,
                 allow_partial: bool = False) -> None:
        self.path = Path(path)
        self.fe = _check_frontend(self.path, fe)
        if not (self.path / "tracks.csv").exists():
            raise CacheError(f"{self.path} is unfinished (no tracks.csv): run the extraction again")
        planned = set(_read_csv(self.path / "tracks.csv").shard)
        done = {int(p.stem) for p in (self.path / "shards").glob("*.csv")}
        if planned - done and not allow_partial:
            raise CacheError(f"{self.path} is unfinished: {len(planned - done)} of {len(planned)} "
                             "shards missing; run the extraction again to finish it")
        parts = [_read_csv(self.path / "shards" / f"{n:05d}.csv").assign(shard=n) for n in sorted(done)]
        self.tracks = (pd.concat(parts, ignore_index=True) if parts
                       else pd.DataFrame(columns=[*INDEX_COLUMNS, "shard"]))
        self._maps: dict[int, np.ndarray] = {}

    def sources(self) -> pd.DataFrame:
        """The ok tracks with the audio file each was extracted from (``tracks.csv``, as recorded
        there): ``track_id``, ``path``, ``label``, ``split``, ``artist``, ``recording`` (NA in a cache
        made before artists were recorded)."""
        plan = _read_csv(self.path / "tracks.csv")
        plan = plan.assign(**{c: pd.Series(pd.NA, index=plan.index, dtype="str")
                              for c in ("artist", "recording") if c not in plan})
        ok = self.tracks[self.tracks.status == "ok"]
        return ok[["track_id", "label", "split"]].merge(plan[["track_id", "path", "artist", "recording"]],
                                                        on="track_id")[list(PLAN_COLUMNS)]

    def windows(self, split: str | Collection[str] | None = None,
                labels: Collection[str] | None = None,
                track_ids: Collection[str] | None = None) -> Windows:
        """All windows of the ok tracks, optionally of one split (or several), a label set
        and a set of track ids (for splits made outside the cache, e.g. cross-validation folds)."""
        t = self.tracks[self.tracks.status == "ok"]
        if split is not None:
            t = t[t.split.isin([split] if isinstance(split, str) else split)]
        if labels is not None:
            t = t[t.label.isin(labels)]
        if track_ids is not None:
            t = t[t.track_id.isin(track_ids)]
        t = t.reset_index(drop=True)
        n_frames, offset, counts = (t[c].to_numpy(np.int64) for c in ("n_frames", "offset", "n_windows"))
        starts = [window_starts(n, self.fe) + o for n, o in zip(n_frames, offset)]
        return Windows(t, np.repeat(np.arange(len(t)), counts), np.repeat(t.shard.to_numpy(np.int64), counts),
                       np.concatenate(starts) if starts else np.zeros(0, np.int64))

    def read(self, windows: Windows, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Windows ``idx`` (any order) as float32 ``(len(idx), window_frames, n_mels)``."""
        w = self.fe.window_frames
        out = np.empty((len(idx), w, self.fe.n_mels), np.float32) if out is None else out
        n_frames = windows.tracks.n_frames.to_numpy()[windows.track[idx]]
        for i, (shard, start, n) in enumerate(zip(windows.shard[idx].tolist(), windows.start[idx].tolist(),
                                                  n_frames.tolist())):
            _half_to_float(self._map(shard)[start:start + w], _HALF_TO_FLOAT, out[i])
            if n < w:  # a short track: filled from its own frames, whatever fill the cache was written with
                out[i] = fix_frames(out[i, :n], w)
        if self.fe.level != "none":  # as frontend.windows does: the cache holds spectrograms, not windows
            out[...] = normalize_level(out, self.fe)
        return out

    def audible(self, windows: Windows, batch: int = 512) -> np.ndarray:
        """Whether each window holds sound, bool ``(len(windows),)``: :func:`utils.audio.levels.audible`
        on the windows as :meth:`read` gives them, read ``batch`` at a time. What a track's mean leaves
        out (``heard`` of :func:`utils.models.pooling.mean_per_track`), as in prediction."""
        idx = np.arange(len(windows))
        return np.concatenate([np.zeros(0, bool), *(audible(self.read(windows, idx[s:s + batch]), self.fe)
                                                    for s in range(0, len(idx), batch))])

    def _map(self, shard: int) -> np.ndarray:
        """Shard ``shard``'s frames, memory-mapped (opened once), as float16 bit patterns (uint16)."""
        data = self._maps.get(shard)
        if data is None:
            path = self.path / "shards" / f"{shard:05d}.npy"
            data = np.load(path, mmap_mode="r")
            rows = self.tracks[self.tracks.shard == shard]
            frames = int(np.maximum(rows.n_frames, self.fe.window_frames)[rows.status == "ok"].sum())
            if data.shape != (frames, self.fe.n_mels) or data.dtype != np.float16:
                raise CacheError(f"{path}: holds {data.dtype} {data.shape}, its index says float16 "
                                 f"({frames}, {self.fe.n_mels}): delete this shard's .npy and .csv "
                                 "and run the extraction again")
            data = self._maps[shard] = np.asarray(data).view(np.uint16)  # a plain view keeps the map
        return data

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}  # memory maps reopen in the receiving process


@numba.njit(cache=True, nogil=True)
def _half_to_float(src, table, out):  # pragma: no cover - compiled
    """out[t, m] = table[src[t, m]]: float16 bits (uint16) to float32, exactly."""
    for t in range(src.shape[0]):
        for m in range(src.shape[1]):
            out[t, m] = table[src[t, m]]


def write_excluded(out: str | os.PathLike, excluded: pd.DataFrame) -> Path:
    """Record the tracks a dataset left out (with their ``reason``) as ``out/excluded.csv``."""
    path = Path(out) / "excluded.csv"
    _write_atomic(path, excluded)
    return path
