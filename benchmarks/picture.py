"""The fma_small picture's cost: audio file -> the 128 x 128 picture the fma-small model sees.

Against the baseline the issue names, measured in the same run on the same files: a plain
``librosa.load`` at the file's rate (first 30 s) and ``librosa.feature.melspectrogram`` (128
Mels, n_fft 2048, hop 512), with no dB, no drawing and no picture. Ours makes the whole picture
(:func:`utils.audio.picture.picture_file`: decode as librosa does, the project's Mel of every frame
for the peak, the 128 drawn columns, 256 levels), one file at a time and as a batch with one
decode thread ahead (:func:`utils.audio.picture.picture_files`, what ``fma-genre spectrograms
--frontend fma-small`` runs). Methods alternate round by round and each keeps its best round.
Target: at most 0.7x the baseline's time. Writes ``reports/benchmarks_picture.{json,md}``::

    python benchmarks/picture.py [--data data/sample/fma/audio] [--rounds 5]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import librosa

from utils import audio
from utils.audio.frontend import FMA_SMALL, LogMel
from utils.audio.picture import picture_file, picture_files
from utils.evaluation.provenance import describe, finish, provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.7  # ours / baseline, at most


def baseline(path: Path) -> None:
    y, sr = librosa.load(path, sr=None, duration=FMA_SMALL.excerpt_seconds)
    librosa.feature.melspectrogram(y=y, sr=sr, n_fft=FMA_SMALL.n_fft, hop_length=FMA_SMALL.hop_length,
                                   n_mels=FMA_SMALL.n_mels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "sample" / "fma" / "audio")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "benchmarks_picture.json")
    args = ap.parse_args()
    block = provenance()
    files = audio.find_audio([args.data])
    if not files:
        raise SystemExit(f"no audio files under {args.data}")
    logmel = LogMel(FMA_SMALL)
    runs = {"librosa load + Mel": lambda: [baseline(f) for f in files],
            "ours, one file at a time": lambda: [picture_file(f, FMA_SMALL, logmel) for f in files],
            "ours, batch": lambda: list(picture_files(files, FMA_SMALL))}
    best = {name: float("inf") for name in runs}
    for i in range(args.rounds + 1):  # the first round warms caches and is dropped
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            if i:
                best[name] = min(best[name], (time.perf_counter() - t0) / len(files))
    base = best["librosa load + Mel"]
    results = {name: {"ms_per_file": 1e3 * t, "ratio": t / base} for name, t in best.items()}
    for name, r in results.items():
        print(f"{name}: {r['ms_per_file']:.0f} ms per file, {r['ratio']:.2f}x the baseline")
    report = {"rounds": args.rounds, "data": str(args.data), "files": len(files), "target_ratio": TARGET,
              "methods": results, "met": results["ours, one file at a time"]["ratio"] <= TARGET}
    block = finish(block)
    write_report(args.json, report, block, markdown({"provenance": block, **report}))
    print(f"wrote {args.json}")


def markdown(report: dict) -> str:
    """The table of ``report`` (what :func:`main` writes)."""
    lines = ["| audio file -> fma_small picture | ms per file | time against librosa load + Mel |", "|---|---|---|"]
    for name, r in report["methods"].items():
        lines.append(f"| {name} | {r['ms_per_file']:.0f} | {r['ratio']:.2f}x |")
    return "\n".join([*lines, "", f"<small>{report['files']} FMA mp3 clips (30 s, 44.1 kHz stereo); best of "
                      f"{report['rounds']} alternating rounds, single process; target at most "
                      f"{report['target_ratio']}x; `reports/benchmarks_picture.json`: "
                      f"{describe(report['provenance'])}.</small>", ""])


if __name__ == "__main__":
    main()
