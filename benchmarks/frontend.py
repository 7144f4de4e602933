"""Front-end speed: audio file -> log-Mel spectrogram, ours against the naive librosa pipeline.

Single process, measured in one run on the real sample: per format, the
decode-only floor (the fastest decoder we know, straight to mono), the naive
pipeline (librosa.load(sr=22050) + melspectrogram + power_to_db), ours in one
thread, and ours as batch extraction runs it (one decode thread ahead).
Methods alternate round by round and each keeps its best round, so drift in
machine load hits all alike. Writes the figures with their provenance to
``reports/benchmarks_frontend.json`` and the README's table to
``reports/benchmarks_frontend.md``.

    python benchmarks/frontend.py [--data data/sample] [--rounds 5] [--json reports/benchmarks_frontend.json]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from utils import audio
from utils.audio.frontend import FrontEnd, LogMel, logmel_files
from utils.evaluation.provenance import describe, finish, provenance, write_report

ROOT = Path(__file__).resolve().parents[1]


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
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "benchmarks_frontend.json",
                    help="figures with their provenance (and the Markdown table beside it, .md)")
    args = ap.parse_args()
    block = provenance()
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
                        "ours_one_thread_ms": best["ours 1 thread"] * 1e3,
                        "one_thread_over_floor": best["ours 1 thread"] / floor,
                        "decode_floor_ms": floor * 1e3, "ours_over_floor": best["ours"] / floor}
    report = {"rounds": args.rounds, "data": str(args.data), "frontend": results}
    block = finish(block)
    write_report(args.json, report, block, markdown({"provenance": block, **report}))
    print(f"wrote {args.json}")


def markdown(report: dict) -> str:
    """The README's table of ``report`` (what :func:`main` writes)."""
    names = {"mp3": "FMA mp3", "wav": "GTZAN wav"}
    lines = ["| format | naive librosa | ours, one thread | ours, batch (decode 1 thread ahead) | decode floor |",
             "|---|---|---|---|---|"]
    for fmt, r in report["frontend"].items():
        lines.append(f"| {names.get(fmt, fmt)} ({r['clips']} clips) | {r['naive_clips_per_s']:.1f} clips/s "
                     f"| {r['ours_one_thread_ms']:.1f} ms/clip: {r['ratio_one_thread']:.2f}x naive, "
                     f"{r['one_thread_over_floor']:.2f}x the floor "
                     f"| {r['ours_clips_per_s']:.1f} clips/s, **{r['ratio']:.2f}x** naive, "
                     f"{r['ours_over_floor']:.2f}x the floor | {r['decode_floor_ms']:.1f} ms/clip |")
    return "\n".join([*lines, "", f"<small>Best of {report['rounds']} alternating rounds, single process, "
                       f"`reports/benchmarks_frontend.json`: {describe(report['provenance'])}.</small>", ""])


if __name__ == "__main__":
    main()
