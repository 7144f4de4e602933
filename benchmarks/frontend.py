"""Front-end speed: audio file -> log-Mel spectrogram, ours against the naive librosa pipeline.

Single process, measured in one run on the real sample: per format, the
decode-only floor (the fastest decoder we know, straight to mono), the naive
pipeline (librosa.load(sr=22050) + melspectrogram + power_to_db), ours in one
thread, and ours as batch extraction runs it (one decode thread ahead).
Methods alternate round by round and each keeps its best round, so drift in
machine load hits all alike.

    python benchmarks/frontend.py [--data data/sample] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from utils import audio
from utils.atomic import write_text
from utils.audio.frontend import FrontEnd, LogMel, logmel_files


def decode_miniaudio(path: Path) -> np.ndarray:
    return audio.decode(path)[0]


def decode_soundfile(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def naive(path: Path, fe: FrontEnd) -> np.ndarray:
    y, sr = librosa.load(path, sr=fe.sample_rate)
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=fe.n_fft, hop_length=fe.hop_length,
                                       n_mels=fe.n_mels)
    return librosa.power_to_db(S)


def seconds_per_clip(fn, files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        fn(f)
    return (time.perf_counter() - t0) / len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/sample"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file (for the slides)")
    args = ap.parse_args()
    results = {}
    fe = FrontEnd()
    lm = LogMel(fe)
    methods = {
        "decode miniaudio": decode_miniaudio,
        "decode soundfile": decode_soundfile,
        "naive": lambda f: naive(f, fe),
        "ours 1 thread": None,
        "ours": None,
    }
    for fmt in ("mp3", "wav"):
        files = sorted(args.data.rglob(f"*.{fmt}"))
        if not files:
            raise SystemExit(f"no .{fmt} files under {args.data}")
        runs = dict(methods)
        runs["ours 1 thread"] = lambda fs: [S for _, S in logmel_files(fs, lm, prefetch=0)]
        runs["ours"] = lambda fs: [S for _, S in logmel_files(fs, lm, prefetch=2)]
        best = {name: float("inf") for name in runs}
        for _ in range(args.rounds + 1):  # the first round warms caches and is dropped
            for name, fn in runs.items():
                if name.startswith("ours"):
                    t0 = time.perf_counter()
                    fn(files)
                    t = (time.perf_counter() - t0) / len(files)
                else:
                    t = seconds_per_clip(fn, files)
                best[name] = min(best[name], t) if _ else best[name]
        floor = min(best["decode miniaudio"], best["decode soundfile"])
        print(f"{fmt}: {len(files)} clips; decode only (mono): miniaudio {best['decode miniaudio']*1e3:.1f} ms, "
              f"soundfile {best['decode soundfile']*1e3:.1f} ms per clip")
        print(f"{fmt}: one thread: ours {best['ours 1 thread']*1e3:.1f} ms per clip, "
              f"{best['naive'] / best['ours 1 thread']:.2f}x naive, "
              f"{best['ours 1 thread'] / floor:.2f}x the decode floor")
        print(f"{fmt}: batch (decode thread ahead): ours {best['ours']*1e3:.1f} ms per clip, "
              f"{best['ours'] / floor:.2f}x the decode floor")
        print(f"{fmt}: naive {1 / best['naive']:.1f} clips/s, ours {1 / best['ours']:.1f} clips/s, "
              f"ratio {best['naive'] / best['ours']:.2f}")
        results[fmt] = {"clips": len(files), "naive_clips_per_s": 1 / best["naive"],
                        "ours_clips_per_s": 1 / best["ours"], "ratio": best["naive"] / best["ours"],
                        "ratio_one_thread": best["naive"] / best["ours 1 thread"],
                        "decode_floor_ms": floor * 1e3, "ours_over_floor": best["ours"] / floor}
    if args.json:
        write_text(args.json, json.dumps({"frontend": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
