"""``fma-genre predict``: genre probabilities of audio files as a table, CSV or JSON."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from tqdm import tqdm

from utils import audio
from utils.atomic import write_text

MODEL_HELP = "a .keras model with its .card.json (default: the shipped models/default.keras)"
RUNTIME_HELP = ("auto (default): the model's exported .onnx on ONNX Runtime, re-exported if stale, else Keras; "
                "onnx: only the exported graph; keras: the Keras model")
JOBS_HELP = "files decoded and classified at once (default: one per core)"


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """``--runtime`` and ``--jobs``, shared by predict and organize."""
    p.add_argument("--runtime", choices=("auto", "onnx", "keras"), default="auto", help=RUNTIME_HELP)
    p.add_argument("--jobs", type=int, help=JOBS_HELP)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify audio files by genre",
                       description="Classify audio files (folders are searched recursively) with a trained "
                                   "model. Long files are classified window by window in bounded memory.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--output", type=Path, help="write to this file instead of standard output")
    p.add_argument("--segments", action="store_true", help="also show the genre over time (table, json)")
    add_runtime_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.models.predict import load_predictor

    files = audio.find_audio(args.paths)
    predictor = load_predictor(args.model, args.runtime, jobs=args.jobs)
    results, failed = [], []
    progress = tqdm(predictor.predict_files(files, jobs=args.jobs), total=len(files), unit="file",
                    disable=None, file=sys.stderr)
    for path, result in progress:
        (failed if isinstance(result, audio.AudioError) else results).append(result)
    if args.format == "table":
        text = _table(results, args.segments)
    elif args.format == "json":
        text = json.dumps([_with_segments(r, args.segments) for r in results], indent=2) + "\n"
    else:
        text = _csv(results, predictor.labels)
    if args.output:
        write_text(args.output, text)
        print(f"{len(results)} predictions written to {args.output}")
    else:
        sys.stdout.write(text)
    for err in failed:
        print(f"failed: {err}", file=sys.stderr)
    return 1 if failed else 0

def _with_segments(result, segments: bool) -> dict:
    d = result.to_dict()
    if segments:
        d["segments"] = [{"start": s, "end": e, "genre": g, "probability": p} for s, e, g, p in result.segments()]
    return d


def _table(results, segments: bool) -> str:
    lines = [f"{'track':<40} {'genre':<16} {'prob':>5}  top 3"]
    for r in results:
        name = r.path if len(r.path) <= 40 else "..." + r.path[-37:]
        top = ", ".join(f"{g} {p:.2f}" for g, p in r.top(3))
        lines.append(f"{name:<40} {r.genre:<16} {r.probabilities.max():5.2f}  {top}")
        if segments:
            lines += [f"    {s:7.1f}-{e:7.1f} s  {g} ({p:.2f})" for s, e, g, p in r.segments()]
    return "\n".join(lines) + "\n"


def _csv(results, labels) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "genre", "probability", *labels])
    for r in results:
        writer.writerow([r.path, r.genre, f"{r.probabilities.max():.4f}", *(f"{p:.4f}" for p in r.probabilities)])
    return buf.getvalue()
