"""``fma-genre features``: FMA-style hand-crafted features of audio files into a CSV (resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from utils import audio
from utils.apps.cli.arguments import positive_int
from utils.errors import FmaGenreError
from utils.evaluation.features import FeatureConfig, columns, features_table, load_features, save_features


def add(sub: argparse._SubParsersAction) -> None:
    """Register the ``features`` subcommand."""
    p = sub.add_parser(
        "features", help="compute hand-crafted features (MFCC, chroma, spectral...) of audio files",
        description="Compute FMA-style hand-crafted features (7 statistics over time of MFCC, chroma, "
                    "spectral contrast, centroid, bandwidth, roll-off, zero-crossing rate and RMS) "
                    "of audio files (folders are searched recursively) into a CSV, one row per file. "
                    "Files already in OUT are skipped, so an interrupted run resumes.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, help="features CSV to write (or resume)")
    p.add_argument("--chroma", choices=("stft", "cqt"), default="stft",
                   help="chroma from the STFT (default, fast) or a constant-Q transform (4x slower)")
    p.add_argument("--every", type=positive_int, default=100,
                   help="save a checkpoint every N files (default 100)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = FeatureConfig(chroma=args.chroma)
    files = audio.find_audio(args.paths)
    done = load_features(args.out) if args.out.exists() else None
    if done is not None and not done.columns.equals(columns(config)):
        raise FmaGenreError(args.out, "has other feature columns (another --chroma?); choose another --out")
    todo = [f for f in files if done is None or str(f) not in done.index]
    print(f"{len(files)} audio files, {len(files) - len(todo)} already in {args.out}", file=sys.stderr)
    tables, failures = [] if done is None else [done], {}
    for start in tqdm(range(0, len(todo), args.every), unit="checkpoint", disable=None, file=sys.stderr):
        table, failed = features_table(todo[start:start + args.every], config, progress=False)
        tables.append(table)
        failures |= failed
        save_features(pd.concat(tables), args.out)  # checkpoint: an interrupted run resumes here
    for message in failures.values():
        print(f"failed: {message}", file=sys.stderr)
    print(f"{len(files) - len(failures)} of {len(files)} files in {args.out}", file=sys.stderr)
    return 1 if failures else 0
