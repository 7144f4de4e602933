"""Writing a spectrogram cache: the plan, the shards, the record of its front end (see :mod:`utils.data.cache`)."""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from utils import audio
from utils.atomic import write_atomic, write_npy, write_text
from utils.audio.frontend import FrontEnd, LogMel, fix_frames, logmel_files, windows
from utils.errors import FmaGenreError

CACHE_FORMAT = 1
INDEX_COLUMNS = ("track_id", "label", "split", "status", "error", "offset", "n_frames", "n_windows")
_CSV_TYPES = {c: "str" for c in ("track_id", "path", "label", "split", "status", "error", "artist", "recording")}
_CSV_NA = {c: [""] for c in ("label", "split", "error", "artist", "recording")}  # only an empty field is missing
PLAN_COLUMNS = ("track_id", "path", "label", "split", "artist", "recording")  # artists travel with the cache


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
            shard_size: int = 64, prefetch: int = 2, progress: bool = True, excerpt: float | None = None,
            on_shard: Callable[[ShardResult], None] | None = None) -> Summary:
    """Extract the log-Mel frames of ``tracks`` into the cache at ``out``, resuming a killed run.

    ``tracks`` has columns ``track_id`` (unique), ``path`` and optionally
    ``label``, ``split``, ``artist`` and ``recording`` (NA allowed). Files that
    fail to decode, and tracks shorter than ``fe.min_frames``, are recorded
    failed with their error; the run goes on. ``excerpt`` (seconds): keep only
    the middle of each track, as FMA cut its 30 s clips from fma_full's
    untrimmed tracks (:func:`utils.audio.budget.middle_excerpt`, decoded by
    seeking); None keeps whole tracks. It is part of the cache's record, with
    the front end. ``on_shard`` is called after each shard commits.
    """
    start = time.perf_counter()
    shards = prepare(out, tracks, fe, shard_size, excerpt)
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
            shard_size: int = 64, excerpt: float | None = None) -> list[Shard]:
    """Create the cache at ``out`` (or check an existing one against ``fe``, ``excerpt`` and ``tracks``)
    and return all its shards, done or not. Distributed runs call this once, then
    :func:`write_shard` for each shard that is not :func:`is_done`."""
    out = Path(out)
    if excerpt is not None and not excerpt > 0:
        raise ValueError(f"an excerpt is a positive number of seconds, got {excerpt}")
    if not (out / "frontend.json").exists():
        if out.exists() and any(out.iterdir()):
            raise CacheError(f"{out} is not empty and has no frontend.json, so it is not a "
                             "spectrogram cache: choose a new folder")
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / "frontend.json", json.dumps({"cache_format": CACHE_FORMAT, "frontend": fe.to_dict(),
                                                         "excerpt_seconds": excerpt}, indent=2))
    check_frontend(out, fe)
    stored = excerpt_seconds(out)
    if stored != excerpt:
        raise CacheError(f"{out} was made from {'whole tracks' if stored is None else f'{stored:g} s excerpts'}, "
                         f"not {'whole tracks' if excerpt is None else f'{excerpt:g} s excerpts'}: "
                         "extract with the same --excerpt, or into a new folder")
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
    decoded = logmel_files(shard.tracks.path, lm, prefetch, middle=excerpt_seconds(out))
    for track, (path, S) in zip(shard.tracks.itertuples(), decoded):
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
    plan = read_table(path)
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


def excerpt_seconds(out: str | os.PathLike) -> float | None:
    """How much of each track the cache holds: the middle excerpt's seconds, or None for whole tracks
    (a cache written before excerpts were recorded holds whole tracks)."""
    return json.loads((Path(out) / "frontend.json").read_text()).get("excerpt_seconds")


def check_frontend(out: Path, fe: FrontEnd | None) -> FrontEnd:
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


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=_CSV_TYPES, keep_default_na=False, na_values=_CSV_NA)


def write_excluded(out: str | os.PathLike, excluded: pd.DataFrame) -> Path:
    """Record the tracks a dataset left out (with their ``reason``) as ``out/excluded.csv``."""
    path = Path(out) / "excluded.csv"
    _write_atomic(path, excluded)
    return path
