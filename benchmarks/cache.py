"""Spectrogram cache speed: windows/s read from the cache in random batch order vs. computed from audio.

One process pinned to one core, one run on the real sample: every clip under
``--data`` (10 FMA mp3, 20 GTZAN wav) is listed ``--repeat`` times under
distinct track ids and extracted into a temporary cache. Then, alternating
round by round, each keeping its best round:

- read: all windows in a random permutation, batches of 64, float32 out,
  through ``Cache.read`` and through ``WindowDataset`` (which adds labels);
- recompute: the windows of every distinct clip from audio (decode,
  resample, LogMel, windows), in the calling thread (``prefetch=0``).

The cache was just written, so its pages are in the OS page cache: this is
the read speed of a cache that fits in RAM (or a warm epoch), not of a cold
disk. Writes the figures with their provenance to ``reports/benchmarks_cache.json``
and the README's table to ``reports/benchmarks_cache.md``.

    python benchmarks/cache.py [--data data/sample] [--repeat 10] [--rounds 3] [--json PATH]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy / numba load: one core

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from utils import audio

from utils.data import batches

from utils.data import cache
from utils.audio.frontend import FrontEnd, LogMel, logmel_files, windows
from utils.evaluation.provenance import describe, finish, provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def read_all(c: cache.Cache, w: cache.Windows, rng: np.random.Generator) -> int:
    order = rng.permutation(len(w))
    for i in range(0, len(w), BATCH):
        c.read(w, order[i:i + BATCH])
    return len(w)


def read_dataset(ds: batches.WindowDataset) -> int:
    ds.on_epoch_end()  # a fresh permutation, as each epoch gets
    return sum(len(ds[i][0]) for i in range(len(ds)))


def recompute(files: list[Path], lm: LogMel) -> int:
    return sum(len(windows(S, lm.fe)) for _, S in logmel_files(files, lm, prefetch=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/sample"))
    ap.add_argument("--repeat", type=int, default=10, help="copies of each clip in the cache")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "benchmarks_cache.json",
                    help="figures with their provenance (and the Markdown table beside it, .md)")
    args = ap.parse_args()
    block = provenance()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    fe = FrontEnd()
    files = audio.find_audio([args.data])
    if not files:
        raise SystemExit(f"no audio files under {args.data}")
    tracks = pd.DataFrame([(f"{k:03d}/{f.stem}", str(f), f.parent.name)
                           for k in range(args.repeat) for f in files],
                          columns=["track_id", "path", "label"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = cache.extract(tracks, Path(tmp) / "cache", fe, progress=False)
        print(f"extract: {summary.n_ok} tracks ({len(files)} clips x {args.repeat}) in "
              f"{summary.seconds:.1f} s, {summary.n_ok / summary.seconds:.1f} tracks/s "
              f"(one core, decode thread ahead)")
        c = cache.Cache(Path(tmp) / "cache", fe)
        w = c.windows()
        ds = batches.WindowDataset(c, w, sorted(set(w.label)), batch_size=BATCH)
        stored = sum(p.stat().st_size for p in (Path(tmp) / "cache" / "shards").glob("*.npy"))
        print(f"cache: {len(w)} windows of {fe.window_frames} x {fe.n_mels}, {stored / 2**20:.0f} MiB "
              f"of float16 frames ({stored / (len(w) * fe.window_frames * fe.n_mels * 4):.2f} x "
              "the bytes of the same windows as float32)")
        lm = LogMel(fe)
        rng = np.random.default_rng(0)
        runs = {"read": lambda: read_all(c, w, rng), "read via WindowDataset": lambda: read_dataset(ds),
                "recompute from audio": lambda: recompute(files, lm)}
        best = {name: 0.0 for name in runs}
        for r in range(args.rounds + 1):  # round 0 warms up and is dropped
            for name, fn in runs.items():
                t0 = time.perf_counter()
                n = fn()
                rate = n / (time.perf_counter() - t0)
                best[name] = max(best[name], rate) if r else 0.0
    base = best["recompute from audio"]
    for name, rate in best.items():
        print(f"{name:<24} {rate:10,.0f} windows/s  ({rate / base:6.1f}x recomputing)")
    print(f"targets: >= 5,000 windows/s on one core, >= 50x recomputing; "
          f"read: {best['read']:,.0f} windows/s, {best['read'] / base:.0f}x")
    report = {"rounds": args.rounds, "clips": len(files), "repeat": args.repeat, "windows": len(w),
              "stored_mib": stored / 2**20, "batch": BATCH,
              "extract_tracks_per_s": summary.n_ok / summary.seconds,
              "windows_per_s": best, "read_over_recompute": best["read"] / base,
              "dataset_over_recompute": best["read via WindowDataset"] / base}
    block = finish(block)
    write_report(args.json, report, block, markdown({"provenance": block, **report}))
    print(f"wrote {args.json}")


def markdown(report: dict) -> str:
    """The README's table of ``report`` (what :func:`main` writes)."""
    rate = report["windows_per_s"]
    return "\n".join([
        "| one core, windows of 128 x 128 in random batches of 64 | windows/s | vs recomputing |", "|---|---|---|",
        f"| read from the cache (`Cache.read`) | {rate['read']:,.0f} | **{report['read_over_recompute']:.0f}x** |",
        f"| read with labels (`WindowDataset`) | {rate['read via WindowDataset']:,.0f} "
        f"| {report['dataset_over_recompute']:.0f}x |",
        f"| recompute from audio (decode, resample, log-Mel) | {rate['recompute from audio']:,.0f} | 1x |", "",
        f"<small>{report['windows']:,} windows of {report['clips']} sample clips x {report['repeat']}; "
        f"extraction {report['extract_tracks_per_s']:.1f} tracks/s; best of {report['rounds']} rounds; "
        f"`reports/benchmarks_cache.json`: {describe(report['provenance'])}.</small>", ""])


if __name__ == "__main__":
    main()
