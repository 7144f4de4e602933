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
from utils.apps.cli.arguments import positive_int
from utils.atomic import check_writable, write_text
from utils.errors import FmaGenreError

MODEL_HELP = ("a shipped model's name, gtzan (GTZAN's 10 genres, the default) or fma-small (fma_small's 8 FMA "
              "genres), or a .keras model with its .card.json")
RUNTIME_HELP = ("auto (default): the model's exported .onnx on ONNX Runtime, re-exported if stale, else Keras; "
                "onnx: only the exported graph; keras: the Keras model")
JOBS_HELP = ("files decoded at once, and model calls at once on windows batched across files "
             "(default: one per core)")
WINDOWS_HELP = ("judge each track on at most N of its 3 s windows, spread over it and decoded by seeking, so a "
                "song costs the same whatever its length (default: %(default)s; reports/benchmarks_predict.json "
                "measures it against every window)")
EVERY_HELP = "judge each track on every 3 s window (the whole-track mean; slower for long files)"


def add_window_options(p: argparse.ArgumentParser) -> None:
    """``--windows N`` and ``--every-window``: which windows a track is judged on."""
    from utils.models.predict import DEFAULT_BUDGET

    group = p.add_mutually_exclusive_group()
    group.add_argument("--windows", type=positive_int, default=DEFAULT_BUDGET, metavar="N", help=WINDOWS_HELP)
    group.add_argument("--every-window", action="store_true", help=EVERY_HELP)


def max_windows(args: argparse.Namespace) -> int | None:
    """The :class:`~utils.models.predict.Predictor` ``max_windows`` the window options ask for."""
    return None if args.every_window else args.windows


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """``--runtime``, ``--jobs`` and the window options, shared by predict and organize."""
    p.add_argument("--runtime", choices=("auto", "onnx", "keras"), default="auto", help=RUNTIME_HELP)
    p.add_argument("--jobs", type=positive_int, help=JOBS_HELP)
    add_window_options(p)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify audio files by genre",
                       description="Classify audio files (folders are searched recursively) with a trained "
                                   "model. Each track is judged on a fixed budget of 3 s windows spread over "
                                   "it (--windows), or on every window (--every-window), in bounded memory.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--output", type=Path, help="write to this file instead of standard output")
    p.add_argument("--segments", action="store_true",
                   help="also show the genre over time, window by window analysed (table, json)")
    add_runtime_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.models.predict import load_predictor

    files = audio.find_audio(args.paths)
    if not files:
        raise FmaGenreError(f"no audio files ({', '.join(audio.AUDIO_EXTENSIONS)}) under {' '.join(args.paths)}")
    if args.output:
        check_writable(args.output)  # before the work, not after it
    predictor = load_predictor(args.model, args.runtime, jobs=args.jobs, max_windows=max_windows(args))
    outcomes = []  # (path, prediction or error), in the order of the files
    for path, result in tqdm(predictor.predict_files(files, jobs=args.jobs), total=len(files), unit="file",
                             disable=None, file=sys.stderr):
        outcomes.append((path, result))
    failed = [r for _, r in outcomes if isinstance(r, audio.AudioError)]
    if args.format == "table":
        text = _table(outcomes, args.segments)
    elif args.format == "json":
        text = json.dumps([_json(p, r, args.segments) for p, r in outcomes], indent=2) + "\n"
    else:
        text = _csv(outcomes, predictor.labels)
    for err in failed:
        print(f"failed: {err}", file=sys.stderr)
    if not args.output:
        sys.stdout.write(text)
        return 1 if failed else 0
    try:
        write_text(args.output, text)
    except OSError as err:  # the results are not lost: they go to standard output
        sys.stdout.write(text)
        raise FmaGenreError(args.output, f"cannot write it ({err.strerror or err}); "
                                         "the results went to standard output instead") from None
    print(f"{len(outcomes) - len(failed)} predictions and {len(failed)} failures written to {args.output}")
    return 1 if failed else 0


def _json(path: Path, result, segments: bool) -> dict:
    if isinstance(result, audio.AudioError):
        return {"path": str(path), "error": result.problem}
    d = result.to_dict()
    if segments:
        d["segments"] = [{"start": s, "end": e, "genre": g, "probability": p} for s, e, g, p in result.segments()]
    d["error"] = None
    return d


def _table(outcomes, segments: bool) -> str:
    lines = [f"{'track':<40} {'genre':<16} {'prob':>5}  top 3"]
    for path, r in outcomes:
        name = str(path) if len(str(path)) <= 40 else "..." + str(path)[-37:]
        if isinstance(r, audio.AudioError):
            lines.append(f"{name:<40} {'(failed)':<16} {'':>5}  {r.problem}")
            continue
        top = ", ".join(f"{g} {p:.2f}" for g, p in r.top(3))
        lines.append(f"{name:<40} {r.genre:<16} {r.probabilities.max():5.2f}  {top}")
        if segments:
            lines += [f"    {s:7.1f}-{e:7.1f} s  {g} ({p:.2f})" for s, e, g, p in r.segments()]
    return "\n".join(lines) + "\n"


def _csv(outcomes, labels) -> str:
    """One row per file; a file that could not be classified has empty probabilities and its ``error``;
    ``windows_analysed`` says how many 3 s windows the track was judged on and ``window_budget`` the most
    it could be (empty: every window, ``--every-window``)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "genre", "probability", *labels, "windows_analysed", "window_budget", "error"])
    for path, r in outcomes:
        if isinstance(r, audio.AudioError):
            writer.writerow([str(path), "", "", *([""] * len(labels)), "", "", r.problem])
        else:
            writer.writerow([r.path, r.genre, f"{r.probabilities.max():.4f}", *(f"{p:.4f}" for p in r.probabilities),
                             len(r.window_times), "" if r.window_budget is None else r.window_budget, ""])
    return buf.getvalue()
