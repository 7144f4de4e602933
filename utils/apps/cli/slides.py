"""``fma-genre slides``: the deck (HTML and PDF) from a run's reports."""
from __future__ import annotations

import argparse
from pathlib import Path


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("slides", help="build the slide deck (HTML and PDF) from a run's reports",
                       description="Fill slides/deck.md with the numbers and figures of a run's reports "
                                   "(and the project's reports/ for what the scripts measured), and write "
                                   "OUT/deck.html (self-contained) and OUT/deck.pdf (headless Chromium).")
    p.add_argument("--run", dest="run_dir", type=Path, help="a pipeline run folder (runs/NAME); its reports come first")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="the project's reports (default: reports)")
    p.add_argument("--source", type=Path, default=Path("slides/deck.md"), help="default: slides/deck.md")
    p.add_argument("--out", type=Path, default=Path("slides"), help="default: slides")
    p.add_argument("--no-pdf", action="store_true", help="HTML only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.apps.slides import build

    deck = build(args.source, [args.reports], args.out, pdf=not args.no_pdf, run=args.run_dir)
    print(f"{deck.slides} slides: {deck.html}" + (f", {deck.pdf}" if deck.pdf else ""))
    if deck.smoke_test:
        print(f"marked as a smoke test ({deck.smoke_test}): build the deck you present from a run whose "
              "numbers mean something (README, Slides)")
    return 0
