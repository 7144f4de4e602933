"""Reading a spectrogram cache: its windows as float32, memory-mapped shard by shard (see :mod:`utils.data.cache`)."""
from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from utils.audio.frontend import FrontEnd, fix_frames, window_starts
from utils.audio.levels import audible, normalize_level
from utils.data.cache.write import INDEX_COLUMNS, PLAN_COLUMNS, CacheError, check_frontend, read_table

# float32 value of every float16 bit pattern (256 KiB). NumPy's float16 cast costs ~2 ns a
# value on one core, the whole budget of a fast reader; a lookup in compiled code is ~4x faster.
_HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


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
        self.fe = check_frontend(self.path, fe)
        if not (self.path / "tracks.csv").exists():
            raise CacheError(f"{self.path} is unfinished (no tracks.csv): run the extraction again")
        planned = set(read_table(self.path / "tracks.csv").shard)
        done = {int(p.stem) for p in (self.path / "shards").glob("*.csv")}
        if planned - done and not allow_partial:
            raise CacheError(f"{self.path} is unfinished: {len(planned - done)} of {len(planned)} "
                             "shards missing; run the extraction again to finish it")
        parts = [read_table(self.path / "shards" / f"{n:05d}.csv").assign(shard=n) for n in sorted(done)]
        self.tracks = (pd.concat(parts, ignore_index=True) if parts
                       else pd.DataFrame(columns=[*INDEX_COLUMNS, "shard"]))
        self._maps: dict[int, np.ndarray] = {}

    def sources(self) -> pd.DataFrame:
        """The ok tracks with the audio file each was extracted from (``tracks.csv``, as recorded
        there): ``track_id``, ``path``, ``label``, ``split``, ``artist``, ``recording`` (NA in a cache
        made before artists were recorded)."""
        plan = read_table(self.path / "tracks.csv")
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
