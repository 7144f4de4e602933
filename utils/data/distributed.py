"""Spectrogram extraction on a Dask cluster: a local one, or any running scheduler.

:func:`extract` writes the same cache as :func:`utils.data.cache.extract` (same
files, same bytes) but runs one Dask task per shard, so the work spreads
over every worker of the cluster:

- the driver calls :func:`utils.data.cache.prepare` once (it writes the plan),
  then submits a task (:func:`write_shard_once`, which calls
  :func:`utils.data.cache.write_shard`) for each shard that is not
  :func:`utils.data.cache.is_done`. Tasks carry only picklable values: the cache
  path (str), the :class:`~utils.audio.frontend.FrontEnd` and the shard's rows.
  Workers import :mod:`utils.data.cache`, which does not load Keras or TensorFlow.
- a worker lost midway loses nothing: the scheduler gives its tasks to
  other workers, and a shard is committed by renames (data, then index), so
  a half-written shard is never visible. A task rerun for a shard that its
  lost worker had committed reads the shard's index and writes nothing.
- a run stopped by Ctrl-C, a crash or a lost scheduler resumes when run
  again: committed shards are skipped.
- a task that fails as a whole (one that keeps killing its workers, past
  Dask's ``distributed.scheduler.allowed-failures``; a full disk) is reported in :attr:`ClusterSummary.failed_shards`; the
  other shards go on, and a rerun retries it.

Cache layout on a cluster
-------------------------
The cache stays the one of :mod:`utils.data.cache`: per shard, a ``.npy`` of
float16 frames and a ``.csv`` index, each written to a unique temp file in
the same folder and renamed. Workers never write the same file as another
shard's worker, and a rename within a folder is atomic on a POSIX file
system, so it needs no locks. The cache folder, and the audio, must be on
a file system that every worker and the driver mount **at the same path**
(NFS, Amazon EFS, FSx for Lustre, a Kubernetes ReadWriteMany volume):
relative paths are made absolute on the driver, :func:`extract` checks
that each worker sees the cache folder before it submits work, and each
task checks again (for workers that join later).

Object stores (S3, GCS) are not supported by this code, and were not
tested. What would change: a worker would write each shard to local disk,
then upload the ``.npy`` and after it the ``.csv`` (each upload is one
atomic PUT, and the index-last order keeps "index exists => shard done"),
and :func:`utils.data.cache.is_done` and :class:`utils.data.cache.Cache` would list
and read through ``fsspec`` (which Dask installs) instead of ``pathlib``;
memory maps would become ranged reads or a local copy. Audio would be
fetched to a local temp file before decoding.
"""
from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm import tqdm

from utils.data import cache
from utils.audio.frontend import FrontEnd

if TYPE_CHECKING:  # Dask is imported only by the runs that use it
    from distributed import Client, LocalCluster


class ClusterError(cache.CacheError):
    """No Dask cluster that can write the cache: unreachable, or workers that do not see it."""


@dataclass(frozen=True)
class ClusterSummary(cache.Summary):
    """A :class:`utils.data.cache.Summary` plus the shards whose task failed as a whole
    (shard number, error); their tracks are neither extracted nor failed, and a rerun retries them."""

    failed_shards: tuple[tuple[int, str], ...] = ()

    def __str__(self) -> str:
        lines = [super().__str__()]
        if self.failed_shards:
            lines.append(f"{len(self.failed_shards)} shard(s) not written (their task failed; "
                         "run the same command again to retry them):")
            lines += [f"  shard {n:05d}: {err}" for n, err in self.failed_shards[:20]]
            if len(self.failed_shards) > 20:
                lines.append(f"  ... and {len(self.failed_shards) - 20} more")
        return "\n".join(lines)


def extract(tracks: pd.DataFrame, out: str | os.PathLike, fe: FrontEnd = FrontEnd(), *,
            scheduler: str | None = None, workers: int | None = None, shard_size: int = 64,
            prefetch: int = 2, progress: bool = True, excerpt: float | None = None,
            on_shard: Callable[[cache.ShardResult], None] | None = None) -> ClusterSummary:
    """Extract the log-Mel frames of ``tracks`` into the cache at ``out`` with Dask, resuming a stopped run.

    Runs on the scheduler at address ``scheduler`` (``"tcp://host:8786"``),
    or else on a new :class:`~distributed.LocalCluster` of ``workers``
    processes (default: one per core) of one thread each; each worker's front
    end decodes ``prefetch`` files ahead in a thread of its own. ``tracks``
    failures and ``excerpt`` (fma_full's untrimmed tracks: FMA's middle 30 s) are as
    in :func:`utils.data.cache.extract`, which writes the same files; each worker reads
    the excerpt from the cache's record. ``on_shard`` is called in this process as each shard commits; an
    exception it raises stops the run (committed shards are kept).
    """
    if scheduler is not None and workers is not None:
        raise ValueError("give a scheduler address or a number of local workers, not both")
    start = time.perf_counter()
    out = Path(os.path.abspath(out))
    shards = cache.prepare(out, absolute_paths(tracks), fe, shard_size, excerpt)
    todo = [s for s in shards if not cache.is_done(out, s)]
    results, failed_shards = [], []
    if todo:
        with connect(scheduler, workers) as client:
            _check_workers_see(client, out / "shards")
            results, failed_shards = _run(client, out, fe, todo, prefetch, progress, on_shard)
    n_todo = sum(len(s.tracks) for s in todo)
    n_tracks = sum(len(s.tracks) for s in shards)
    return ClusterSummary(n_tracks=n_tracks, n_ok=sum(r.n_ok for r in results),
                          n_windows=sum(r.n_windows for r in results),
                          failures=tuple(f for r in results for f in r.failures),
                          skipped_shards=len(shards) - len(todo), skipped_tracks=n_tracks - n_todo,
                          seconds=time.perf_counter() - start, failed_shards=failed_shards,
                          skipped_failures=cache.earlier_failures(out, shards, todo))


def _run(client: Client, out: Path, fe: FrontEnd, todo: list[cache.Shard], prefetch: int, progress: bool,
         on_shard: Callable[[cache.ShardResult], None] | None
         ) -> tuple[list[cache.ShardResult], tuple[tuple[int, str], ...]]:
    """Run one :func:`write_shard_once` task per shard of ``todo`` on ``client``'s
    workers; return the results and the failed tasks, both in shard order."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]  # task keys unique to this run, named for the dashboard
    futures = {client.submit(write_shard_once, str(out), fe, shard, prefetch,
                             key=f"write_shard-{shard.name}-{run}"): shard for shard in todo}
    results, failed, n_failed_tracks = [], [], 0
    with tqdm(total=sum(len(s.tracks) for s in todo), unit="track", desc="extract",
              disable=not progress or None, file=sys.stderr) as bar:
        for future in as_completed(list(futures)):
            shard = futures.pop(future)
            try:
                result = future.result()
            except Exception as err:  # noqa: BLE001 - the task failed as a whole: report it, go on
                result = None
                failed.append((shard.number, f"{type(err).__name__}: {err}"))
            # Dask reruns the tasks of a lost worker whose results a client still holds:
            # let go of this one, received, so that its task is not run again.
            future.release()
            if result is not None:
                results.append(result)
                n_failed_tracks += len(result.failures)
                if on_shard:
                    on_shard(result)
            bar.update(len(shard.tracks))
            bar.set_postfix(failed=n_failed_tracks, shards_failed=len(failed))
    return sorted(results, key=lambda r: r.number), tuple(sorted(failed))


def write_shard_once(out: str | os.PathLike, fe: FrontEnd, shard: cache.Shard,
                     prefetch: int = 2) -> cache.ShardResult:
    """A worker's task: :func:`utils.data.cache.write_shard`, unless ``shard`` is committed already.

    Dask reruns a task whose worker was lost before its result reached the
    client, even if the shard was written; then this reads the result back
    from the shard's index instead of decoding its tracks again. Raises
    :class:`ClusterError` on a worker that does not see the cache (one that
    joined after the run started), rather than write shards to its own disk.
    """
    if not (Path(out) / "frontend.json").exists():
        raise ClusterError(f"worker {socket.gethostname()} does not see the cache {out}: mount the shared "
                           "file system at the same path on every worker")
    if not cache.is_done(out, shard):
        return cache.write_shard(out, fe, shard, None, prefetch)
    return cache.read_result(out, shard)


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A Dask client of the scheduler at ``scheduler``, or of a new local cluster of
    ``workers`` processes (default: one per core) with one thread each, closed on exit."""
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler)
        except (OSError, ValueError) as err:  # refused, timed out, or not an address
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
        with client:
            yield client
        return
    n = workers if workers is not None else os.cpu_count() or 1
    if n < 1:
        raise ValueError(f"a local cluster needs at least one worker, got {n}")
    with local_cluster(n) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def local_cluster(n_workers: int, **options) -> Iterator[LocalCluster]:
    """A :class:`~distributed.LocalCluster` of ``n_workers`` processes of one thread each,
    whose workers keep glibc's own malloc thresholds and do not profile themselves.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; setting
    any malloc threshold also freezes glibc's mmap threshold at 128 KiB, so
    every decoded block and FFT buffer is mapped and unmapped afresh, and a
    worker spent about 50 % more CPU per track, nearly all of it in the kernel
    (0.029 vs 0.0195 core-s per 30 s clip with and without the variable, same
    code, one process). Each worker also samples every thread's stack every
    10 ms for the dashboard's profile page (``distributed.worker.profile``):
    under cProfile that sampling took 0.67 s of a 1-worker run's 15 s, about 5 %
    of a core, and switching it off took the worker's CPU per track from
    0.0224 and 0.0207 to 0.0211 and 0.0193 core-s in alternating runs. Workers of
    a cluster started elsewhere should be started the same way
    (``distributed.nanny.pre-spawn-environ`` without the variable,
    ``distributed.worker.profile.enabled: false``).
    ``options`` go to :class:`~distributed.LocalCluster`.
    """
    import dask
    from distributed import LocalCluster

    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    # the nanny hands this process's Dask config to the workers it spawns
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, **options) as cluster:
        yield cluster


def absolute_paths(tracks: pd.DataFrame) -> pd.DataFrame:
    """``tracks`` with each ``path`` made absolute (against this process's working folder),
    so that workers started elsewhere open the same files; NA paths stay NA."""
    if "path" not in tracks:
        return tracks
    return tracks.assign(path=[os.path.abspath(p) if pd.notna(p) else p for p in tracks.path])


def _check_workers_see(client: Client, folder: Path) -> None:
    """Raise :class:`ClusterError` if a connected worker does not see ``folder``."""
    blind = [w for w, seen in client.run(os.path.isdir, str(folder)).items() if not seen]
    if blind:
        raise ClusterError(f"{len(blind)} Dask worker(s) ({', '.join(blind[:3])}) do not see {folder}: "
                               "the cache and the audio must be on a file system that the driver and "
                               "every worker mount at the same path (NFS, EFS, Lustre)")
