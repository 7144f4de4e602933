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
disk.

    python benchmarks/cache.py [--data data/sample] [--repeat 10] [--rounds 3]
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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
