"""Extraction throughput on a local Dask cluster: tracks/s with 1 and 2 workers, and the speed-up.

Every clip under ``--data`` (10 FMA mp3 at 44.1 kHz, 20 GTZAN wav at
22,050 Hz, all 30 s) is listed ``--repeat`` times under distinct track ids,
so the same files make enough work. For each worker count, a fresh
:class:`~distributed.LocalCluster` (one thread per worker process) is
started and warmed (each worker decodes and transforms one clip of each
format), then :func:`utils.data.distributed.extract` writes the tracks into a
fresh temporary cache; the time is the wall time of that call (plan, submit,
all shards committed). The workers' CPU time over the run gives the cost
per track in core-seconds. For reference, the same tracks are extracted in
this process without Dask (:func:`utils.data.cache.extract`, decode thread
ahead, shards written: the same work a worker does), with this process's
CPU time: a worker's CPU per track over that is the cost of Dask itself.
Each clip's cost is also timed alone in one thread (``prefetch=0``, no
shard written), best of ``--rounds``; the ratio of a worker's CPU per track
to that, on the same clips, scales the per-format cost to what a worker
spends.

The files are read from the OS page cache after the first pass: this is the
compute cost, not the cost of reading audio from a network file system.
Wall-clock rates are only meaningful on an otherwise idle machine: each run
prints the cores other processes used meanwhile (all busy CPU time minus
this benchmark's own); CPU costs per track hardly depend on it.

Writes the figures with their provenance to ``reports/benchmarks_scale.json``
and the README's tables to ``reports/benchmarks_scale.md``: the measured
rates, and what the measured per-clip cost of an mp3 means for fma_large and
fma_full on a cluster (:data:`PROJECTION`: sizes from the FMA paper, the
machine type and its price assumed, not measured).

    python benchmarks/scale.py [--data data/sample] [--repeat 16] [--shard-size 8] [--json PATH]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads; Dask's nanny sets the same for workers

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from distributed import Client

from utils import audio

from utils.data import cache

from utils.data import distributed
from utils.audio.frontend import FrontEnd, LogMel, logmel_file, windows
from utils.evaluation.provenance import describe, finish, provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
# What the measured per-clip cost is multiplied by (assumptions, written into the report).
PROJECTION = {
    "machine": "c7i.4xlarge", "workers_per_machine": 16, "usd_per_machine_hour": 0.714,
    "datasets": {"fma_large": {"clips_30s": 106_574, "gib": 93, "what": "106,574 clips of 30 s, 93 GiB"},
                 "fma_full": {"clips_30s": 7_770 * 120, "gib": 879,
                              "what": "~7,770 h of audio (879 GiB at ~270 kbit/s)"}},
    "machines": (1, 10, 50),
}


def warm(paths: list[str], fe: FrontEnd) -> None:
    """Import the decoders and run the front end once in a worker, so start-up is not timed."""
    lm = LogMel(fe)
    for path in paths:
        windows(logmel_file(path, lm), fe)


def busy() -> float:
    """CPU seconds all processes of this machine have run so far (every core, not idle or waiting on I/O)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def cluster_run(tracks: pd.DataFrame, fe: FrontEnd, n_workers: int, shard_size: int,
                examples: list[str]) -> tuple[float, float, float, float]:
    """Seconds to extract ``tracks`` on ``n_workers`` local workers; CPU seconds of the workers,
    of this process (client and scheduler), and of all other processes meanwhile."""
    with distributed.local_cluster(n_workers, dashboard_address=":0") as lc, Client(lc) as client, \
            tempfile.TemporaryDirectory() as tmp:
        client.run(warm, examples, fe)
        cpu0, here0, all0 = client.run(time.process_time), time.process_time(), busy()
        summary = distributed.extract(tracks, Path(tmp) / "cache", fe, scheduler=lc.scheduler_address,
                                      shard_size=shard_size, progress=False)
        cpu1, here1, all1 = client.run(time.process_time), time.process_time(), busy()
    assert summary.n_ok == len(tracks) and not summary.failed_shards, str(summary)
    workers, here = sum(cpu1[w] - cpu0[w] for w in cpu1), here1 - here0
    return summary.seconds, workers, here, all1 - all0 - workers - here


def clip_cost(files: list[Path], fe: FrontEnd, rounds: int) -> dict[Path, float]:
    """Best CPU seconds of ``rounds`` to decode, transform, window and round to float16 each clip, in one thread."""
    lm = LogMel(fe)
    best = {f: np.inf for f in files}
    for _ in range(rounds):
        for f in files:
            t0 = time.process_time()
            windows(logmel_file(f, lm), fe).astype(np.float16)
            best[f] = min(best[f], time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/sample"))
    ap.add_argument("--repeat", type=int, default=16, help="copies of each clip (distinct track ids)")
    ap.add_argument("--shard-size", type=int, default=8, help="tracks per shard, i.e. per Dask task")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the per-clip timing")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "benchmarks_scale.json",
                    help="figures with their provenance (and the Markdown tables beside it, .md)")
    args = ap.parse_args()
    block = provenance(note="wall-clock rates need an idle machine: see other_cores")
    fe = FrontEnd()
    files = [f.resolve() for f in audio.find_audio([args.data])]
    if not files:
        raise SystemExit(f"no audio files under {args.data}")
    tracks = pd.DataFrame([(f"{k:03d}/{f.stem}", str(f)) for k in range(args.repeat) for f in files],
                          columns=["track_id", "path"])
    examples = [str(next(f for f in files if f.suffix == s)) for s in sorted({f.suffix for f in files})]
    print(f"{len(tracks)} tracks ({len(files)} clips x {args.repeat}), shards of {args.shard_size}; "
          f"{os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    with tempfile.TemporaryDirectory() as tmp:
        here0, all0 = time.process_time(), busy()
        local = cache.extract(tracks, Path(tmp) / "cache", fe, shard_size=args.shard_size, progress=False)
        local_cpu = time.process_time() - here0
        others = busy() - all0 - local_cpu
    in_process = local_cpu / len(tracks)
    print(f"in this process, no Dask: {len(tracks) / local.seconds:.2f} tracks/s, {in_process:.4f} core-s per track "
          f"(other processes meanwhile: {others / local.seconds:.2f} cores)")
    rate, cost, runs = {}, {}, {}
    for n in (1, 2):
        seconds, cpu, here, others = cluster_run(tracks, fe, n, args.shard_size, examples)
        rate[n], cost[n] = len(tracks) / seconds, cpu / len(tracks)
        runs[n] = {"tracks_per_s": rate[n], "seconds": seconds, "worker_core_s_per_track": cost[n],
                   "client_core_s_per_track": here / len(tracks), "other_cores": others / seconds}
        print(f"{n} worker{'s' * (n > 1)}: {rate[n]:.2f} tracks/s ({seconds:.1f} s); CPU per track: "
              f"workers {cost[n]:.4f} core-s, client + scheduler {here / len(tracks):.4f} core-s "
              f"(other processes meanwhile: {others / seconds:.2f} cores)")
    print(f"1 worker: {rate[1]:.2f} tracks/s; 2 workers: {rate[2]:.2f} tracks/s; "
          f"speed-up {rate[2] / rate[1]:.2f}")
    best = clip_cost(files, fe, args.rounds)
    by_kind = {k: np.mean([t for f, t in best.items() if f.suffix == k]) for k in sorted({f.suffix for f in files})}
    overhead = cost[1] / np.mean(list(best.values()))  # same mix of clips
    print(f"per-track cost in one thread (best of {args.rounds}, mean over clips), core-s per 30 s clip: "
          + ", ".join(f"{k} {v:.4f}" for k, v in by_kind.items()))
    print(f"a worker spends {overhead:.2f}x that (1-worker run, same clips): "
          + ", ".join(f"{k} {v * overhead:.4f}" for k, v in by_kind.items()) + " core-s per 30 s clip on Dask")
    print(f"and {cost[1] / in_process:.2f}x the in-process path (decode thread and shard writes included)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report = {"tracks": len(tracks), "clips": len(files), "repeat": args.repeat, "shard_size": args.shard_size,
              "rounds": args.rounds,
              "in_process_tracks_per_s": len(tracks) / local.seconds, "in_process_core_s_per_track": in_process,
              "worker_vs_in_process": cost[1] / in_process,
              "workers": {str(n): r for n, r in runs.items()}, "speed_up": rate[2] / rate[1],
              "one_thread_core_s": {k: float(v) for k, v in by_kind.items()}, "dask_overhead": float(overhead),
              "worker_core_s_per_clip": {k: float(v * overhead) for k, v in by_kind.items()},
              "projection": PROJECTION}
    block = finish(block)
    write_report(args.json, report, block, markdown({"provenance": block, **report}))
    print(f"wrote {args.json}")


def markdown(report: dict) -> str:
    """The README's tables of ``report``: measured rates, then the cluster projection for an mp3 clip's cost."""
    cost = report["worker_core_s_per_clip"][".mp3"]
    proj = report["projection"]
    per_machine = proj["workers_per_machine"]
    lines = ["| Dask workers | tracks/s | worker CPU per track | client + scheduler CPU per track "
             "| other processes meanwhile |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {r['tracks_per_s']:.1f} | {r['worker_core_s_per_track']:.3f} core-s "
              f"| {r['client_core_s_per_track']:.4f} core-s | {r['other_cores']:.2f} cores |"
              for n, r in report["workers"].items()]
    lines += ["", f"Speed-up with 2 workers: **{report['speed_up']:.2f}**; in one process without Dask: "
              f"{report['in_process_tracks_per_s']:.1f} tracks/s at {report['in_process_core_s_per_track']:.3f} "
              f"core-s per track. A Dask worker spends **{report['worker_vs_in_process']:.2f}x the CPU per track "
              f"of that in-process path** (target ≤ 1.15x; both decode ahead in a thread and write shards), "
              f"and {report['dask_overhead']:.2f}x the bare decode and transform of one clip in one thread, "
              f"best of {report['rounds']}: **{cost:.3f} core-s per 30 s FMA mp3**.", "",
              f"What that cost means with {per_machine} workers per `{proj['machine']}` (assumed "
              f"${proj['usd_per_machine_hour']}/h, assumed to match a core here), compute only:", "",
              "| | work | " + " | ".join(f"{m} machine{'s' * (m > 1)}" for m in proj["machines"]) + " | cost |",
              "|---|---|" + "---|" * len(proj["machines"]) + "---|"]
    for name, d in proj["datasets"].items():
        core_h = d["clips_30s"] * cost / 3600
        cells = [_duration(core_h * 3600 / (per_machine * m)) for m in proj["machines"]]
        usd = core_h / per_machine * proj["usd_per_machine_hour"]
        lines.append(f"| {name}: {d['what']} | {core_h:.1f} core-h | " + " | ".join(cells) + f" | ${usd:.2f} |")
    return "\n".join([*lines, "", f"<small>{report['tracks']} tracks ({report['clips']} sample clips x "
                       f"{report['repeat']}), shards of {report['shard_size']}; "
                       f"`reports/benchmarks_scale.json`: {describe(report['provenance'])}.</small>", ""])


def _duration(seconds: float) -> str:
    """``seconds`` as "38 s", "6.4 min" or "1.2 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    main()
