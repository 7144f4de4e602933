"""Spectrogram cache: extract log-Mel spectrograms once, train many times.

:mod:`~utils.data.cache.write` makes a cache (in this process; :mod:`utils.data.distributed`
runs its shards on Dask), :mod:`~utils.data.cache.read` reads its windows. Both are
re-exported here: ``from utils.data.cache import Cache, extract``.

Layout (cache format 1)::

    CACHE/
      frontend.json      {"cache_format": 1, "frontend": FrontEnd.to_dict(), "excerpt_seconds": None | s}
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
from utils.data.cache.read import Cache, Windows
from utils.data.cache.write import (CACHE_FORMAT, INDEX_COLUMNS, PLAN_COLUMNS, CacheError, Shard, ShardResult, Summary,
                                    earlier_failures, excerpt_seconds, extract, is_done, prepare, read_result,
                                    write_excluded, write_shard)

__all__ = ["CACHE_FORMAT", "INDEX_COLUMNS", "PLAN_COLUMNS", "Cache", "CacheError", "Shard", "ShardResult", "Summary",
           "Windows", "earlier_failures", "excerpt_seconds", "extract", "is_done", "prepare", "read_result",
           "write_excluded", "write_shard"]
