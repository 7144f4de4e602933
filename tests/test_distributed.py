"""Extraction on a local Dask cluster against the single-process cache, on the real sample."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from conftest import SAMPLE_TRACKS
from utils.data import cache

from utils.apps import cli

from utils.data import distributed
from utils.data.catalog import load_dataset
from utils.audio.frontend import FrontEnd

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
FE = FrontEnd()
SHARD_SIZE = 4


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, and a client of our own to watch and kill them."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c, \
            Client(c) as client:
        yield c, client


@pytest.fixture(scope="module")
def tracks(tmp_path_factory, fma_mp3s, fma_wavs) -> pd.DataFrame:
    """30 real clips (the 10 sample mp3s, and each as FLAC and as WAV) and a text file named .mp3; ids
    sort it into the middle shard."""
    import soundfile as sf

    corrupt = tmp_path_factory.mktemp("bad") / "corrupt.mp3"
    corrupt.write_text("this is a text file, not an mp3\n" * 100)
    flacs = [corrupt.parent / f"{w.stem}.flac" for w in fma_wavs]
    for wav, flac in zip(fma_wavs, flacs):
        y, sr = sf.read(wav, dtype="int16")
        sf.write(flac, y, sr)
    files = [*fma_mp3s, *flacs, *fma_wavs, corrupt]
    ids = [f.stem if f.suffix == ".mp3" else f"{f.suffix[1]}{f.stem}" for f in files]  # flac f000002, wav w000002
    return pd.DataFrame({"track_id": ids, "path": [str(f) for f in files], "label": [None] * len(files)})


@pytest.fixture(scope="module")
def reference(tracks, tmp_path_factory):
    """The single-process cache (utils.data.cache.extract) of ``tracks``."""
    out = tmp_path_factory.mktemp("ref") / "cache"
    return out, cache.extract(tracks, out, FE, shard_size=SHARD_SIZE, progress=False)


@pytest.fixture(scope="module")
def on_cluster(cluster, tracks, tmp_path_factory):
    """The same tracks extracted on the cluster, given by scheduler address, with the
    audio and cache paths relative to a working folder that the workers do not share."""
    out = tmp_path_factory.mktemp("dask") / "cache"
    here = Path(os.path.commonpath([out, *tracks.path]))
    relative = tracks.assign(path=[os.path.relpath(p, here) for p in tracks.path])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(here)
        return out, distributed.extract(relative, os.path.relpath(out, here), FE,
                                        scheduler=cluster[0].scheduler_address, shard_size=SHARD_SIZE,
                                        progress=False)


def committed(out: Path) -> dict[Path, int]:
    """Modification times (ns) of the data and index files of the committed shards (index written)."""
    return {p: p.stat().st_mtime_ns for csv in (out / "shards").glob("*.csv") for p in (csv, csv.with_suffix(".npy"))}


def assert_same_cache(got: Path, ref: Path) -> None:
    """Same plan, front end, shard indexes, and bit-identical frames (temp files of killed writers aside)."""
    names = sorted(p.name for p in (ref / "shards").iterdir())
    assert sorted(p.name for p in (got / "shards").iterdir() if p.suffix != ".tmp") == names and len(names) == 16
    for name in ("frontend.json", "tracks.csv", *(f"shards/{n}" for n in names if n.endswith(".csv"))):
        assert (got / name).read_text() == (ref / name).read_text(), name
    for name in (n for n in names if n.endswith(".npy")):
        a, b = np.load(got / "shards" / name), np.load(ref / "shards" / name)
        assert a.dtype == b.dtype == np.float16 and a.shape == b.shape and len(a) > 0
        assert a.tobytes() == b.tobytes(), name


def test_cluster_cache_equals_single_process_cache(on_cluster, reference):
    (out, summary), (ref, expected) = on_cluster, reference
    assert_same_cache(out, ref)
    assert isinstance(summary, cache.Summary) and summary.failed_shards == ()
    assert (summary.n_tracks, summary.n_ok, summary.n_windows, summary.failures) == \
           (expected.n_tracks, expected.n_ok, expected.n_windows, expected.failures)
    assert str(summary).splitlines()[0].startswith(str(expected).splitlines()[0].rsplit(" in ", 1)[0])
    c = cache.Cache(out, FE)
    assert len(c.windows()) == summary.n_windows == 600  # 30 clips of 30 s: 20 windows each


def test_corrupt_file_is_recorded_failed_and_the_run_goes_on(on_cluster, tracks):
    out, summary = on_cluster
    assert summary.n_tracks == 31 and summary.n_ok == 30
    assert [tid for tid, _ in summary.failures] == ["corrupt"]
    assert summary.failures[0][1].startswith("NotAudioError: ")
    assert str(tracks.path.iloc[-1]) in summary.failures[0][1]
    index = cache.Cache(out).tracks.set_index("track_id")
    shard = index.shard["corrupt"]
    assert index.status["corrupt"] == "failed" and index.n_frames["corrupt"] == 0
    neighbours = index[(index.shard == shard) & (index.index != "corrupt")]
    assert len(neighbours) == SHARD_SIZE - 1 and (neighbours.status == "ok").all()
    assert 0 < shard < index.shard.max()  # failed in the middle, later shards were still written


def test_task_rerun_for_a_committed_shard_reads_its_result_back(tracks, tmp_path):
    shards = cache.prepare(tmp_path, tracks, FE, SHARD_SIZE)
    middle = next(s for s in shards if "corrupt" in set(s.tracks.track_id))
    written = distributed.write_shard_once(tmp_path, FE, middle)
    assert written == cache.write_shard(tmp_path, FE, middle)  # same as writing it
    assert written.n_ok == SHARD_SIZE - 1 and [tid for tid, _ in written.failures] == ["corrupt"]
    stamps = committed(tmp_path)
    assert distributed.write_shard_once(tmp_path, FE, middle) == written
    assert committed(tmp_path) == stamps  # read back, not written again
    elsewhere = tmp_path / "not-mounted-here"
    with pytest.raises(distributed.ClusterError, match="does not see the cache .*not-mounted-here"):
        distributed.write_shard_once(elsewhere, FE, middle)
    assert not elsewhere.exists()  # nothing written on a worker's own disk


class Stop(Exception):
    """Raised from ``on_shard`` to stop a run as a Ctrl-C would."""


def test_stopped_run_resumes_and_computes_only_missing_shards(cluster, tracks, reference, tmp_path):
    out = tmp_path / "cache"

    def stop_after_two(result: cache.ShardResult) -> None:
        done.append(result.number)
        if len(done) == 2:
            raise Stop

    done: list[int] = []
    with pytest.raises(Stop):  # its own local cluster, closed (workers ended) as the error leaves
        distributed.extract(tracks, out, FE, workers=2, shard_size=SHARD_SIZE, progress=False,
                            on_shard=stop_after_two)
    stamps = committed(out)
    kept = sorted(int(p.stem) for p in stamps if p.suffix == ".csv")
    assert set(done) <= set(kept) and 2 <= len(kept) < 8

    computed: list[int] = []
    summary = distributed.extract(tracks, out, FE, scheduler=cluster[0].scheduler_address,
                                  shard_size=SHARD_SIZE, progress=False, on_shard=lambda r: computed.append(r.number))
    assert sorted(computed) == sorted(set(range(8)) - set(kept))
    assert summary.skipped_shards == len(kept) and summary.skipped_tracks == SHARD_SIZE * len(kept)
    assert summary.n_ok + len(summary.failures) == 31 - summary.skipped_tracks
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # committed shards untouched
    assert not list((out / "shards").glob("*.tmp"))
    assert_same_cache(out, reference[0])


def test_worker_killed_midway_loses_nothing(cluster, tracks, reference, tmp_path):
    _, client = cluster
    out = tmp_path / "cache"
    computed: list[int] = []
    lost: list[int] = []  # shards on the killed worker, unfinished
    stamps: dict[Path, int] = {}

    def kill_a_busy_worker(result: cache.ShardResult) -> None:
        computed.append(result.number)
        if stamps:
            return
        for _ in range(100):  # a worker is between tasks for a few ms at most
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:
                break
            time.sleep(0.02)
        holders = {w for ws in client.who_has().values() for w in ws}  # of results not let go of
        worker = next((w for w in busy if w in holders), next(iter(busy)))
        keys = busy[worker]
        os.kill(client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)  # as a machine lost
        lost.extend(int(k.split("-")[1]) for k in keys)
        stamps.update(committed(out))

    summary = distributed.extract(tracks, out, FE, scheduler=cluster[0].scheduler_address,
                                  shard_size=SHARD_SIZE, progress=False, on_shard=kill_a_busy_worker)
    assert lost and set(lost) <= set(computed[1:])  # rescheduled on the other worker
    assert sorted(computed) == list(range(8))  # each shard once
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # none committed was written again
    assert summary.failed_shards == () and summary.n_ok == 30 and summary.skipped_shards == 0
    assert_same_cache(out, reference[0])


def test_workers_that_cannot_see_the_cache_are_refused(cluster, tmp_path):
    cluster[1].wait_for_workers(2, timeout=60)  # the one killed above is back
    with pytest.raises(distributed.ClusterError, match="2 Dask worker.* do not see .*mount at the same path"):
        distributed._check_workers_see(cluster[1], tmp_path / "not-shared")


def test_cli_extract_on_a_scheduler_reports_a_failed_shard_then_resumes(cluster, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["extract", "--help"])
    assert stop.value.code == 0 and "--scheduler ADDRESS" in (text := capsys.readouterr().out) and "--workers" in text
    out = tmp_path / "c"
    argv = ["extract", "--dataset", "fma", "--root", str(SAMPLE / "fma" / "audio"), "--metadata",
            str(SAMPLE_TRACKS), "--out", str(out), "--shard-size", "4"]
    with pytest.raises(SystemExit) as stop:
        cli.main(argv + ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert cli.main(argv + ["--scheduler", "tcp://127.0.0.1:1"]) == 1  # nothing listens there
    assert "error: cannot reach the Dask scheduler at tcp://127.0.0.1:1: Timed out" in capsys.readouterr().err

    cache.prepare(out, load_dataset("fma", SAMPLE / "fma" / "audio", SAMPLE_TRACKS)[0], FE, 4)
    (out / "shards" / "00001.npy").mkdir()  # shard 1 cannot be written: its task fails as a whole
    address = ["--scheduler", cluster[0].scheduler_address]
    assert cli.main(argv + address) == 1
    printed = capsys.readouterr().out
    assert "10 tracks: 6 extracted" in printed and "1 shard(s) not written" in printed
    assert "shard 00001: IsADirectoryError" in printed
    (out / "shards" / "00001.npy").rmdir()
    assert cli.main(argv + address) == 0
    printed = capsys.readouterr().out
    assert "10 tracks: 4 extracted" in printed and "6 skipped as done before (2 shards)" in printed
    assert (cache.Cache(out).tracks.status == "ok").sum() == 10


def test_local_workers_keep_glibc_malloc_thresholds_and_do_not_profile(tmp_path):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which cost a worker ~50 % more CPU per track, and its
    # workers sample their stacks every 10 ms (~5 % of a core); in a fresh process, since a nanny also
    # leaks the variable into the process that starts it
    code = ("import os\nimport dask\nfrom distributed import Client\nfrom utils.data.distributed import local_cluster\n"
            "if __name__ == '__main__':\n"
            "    with local_cluster(1, dashboard_address=':0') as lc, Client(lc) as client:\n"
            "        print(sorted(set(map(str, client.run(dask.config.get, 'distributed.worker.profile.enabled')\n"
            "                                  .values()))))\n"
            "        print(sorted(set(map(str, client.run(os.environ.get, 'MALLOC_TRIM_THRESHOLD_').values()))))\n")
    script = tmp_path / "workers_env.py"
    script.write_text(code)
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}  # leaked by this session's
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,  # clusters
                         cwd=root, env={**env, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-2:] == ["['False']", "['None']"]
