"""``fma-genre evaluate``: a model scored on a labelled folder (pictures or audio), one summary line and JSON."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from utils.apps.cli.predict import MODEL_HELP, add_runtime_options, max_windows
from utils.atomic import check_writable, write_json


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model on a labelled folder: accuracy, macro-F1, log loss, ECE",
                       description="Score a model on a labelled folder: pictures laid out <Genre>/<track_id>.png "
                                   "(with or without a <split>/ level above, e.g. fma_small's validation or test "
                                   "folder) or audio files laid out <genre>/<file>. Prints one line with the "
                                   "accuracy; --output writes accuracy, macro-F1, log loss, ECE, a per-genre "
                                   "table and the confusion matrix as JSON.")
    p.add_argument("folder", type=Path, help="the labelled folder")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--output", type=Path, help="write the full result as JSON to this file")
    add_runtime_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.evaluation.labelled import evaluate_folder
    from utils.models.card import load_card
    from utils.models.predict import load_predictor, model_path

    if args.output:
        check_writable(args.output)
    path = model_path(args.model)
    card = load_card(path)
    predictor = load_predictor(path, args.runtime, jobs=args.jobs, max_windows=max_windows(args))
    metrics, failed = evaluate_folder(
        predictor, args.folder, jobs=args.jobs,
        progress=lambda items, total: tqdm(items, total=total, unit="batch" if total < 200 else "file",
                                           disable=None, file=sys.stderr))
    name = args.model or "gtzan"
    print(f"{name} on {args.folder}: accuracy {100 * metrics['accuracy']:.1f} % of {metrics['n_tracks']} "
          f"{metrics['kind'] == 'pictures' and 'pictures' or 'tracks'} ({len(predictor.labels)} genres), "
          f"macro-F1 {metrics['macro_f1']:.3f}, log loss {metrics['log_loss']:.3f}, ECE {metrics['ece']:.3f}"
          + (f"; {len(failed)} file(s) failed" if failed else ""))
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    if args.output:
        write_json(args.output, {"model": name, "model_file": str(path), "folder": str(args.folder),
                                 "how_chosen": card.training.get("selection", card.training), **metrics,
                                 "failed": failed})
    return 1 if failed else 0
