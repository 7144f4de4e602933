"""``fma-genre organize``: a music library copied or linked into one folder per genre."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from utils import audio
from utils.apps.cli.predict import MODEL_HELP, add_runtime_options, max_windows


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("organize", help="copy or link a music library into one folder per genre",
                       description="Classify every audio file under SOURCES and copy (or link) it to "
                                   "DEST/<genre>/, keeping its path below the source folder; write "
                                   "DEST/<genre>.m3u playlists and DEST/predictions.csv. Originals are never "
                                   "moved or changed. Re-running skips files already placed.")
    p.add_argument("sources", nargs="+", type=Path, help="music files or folders")
    p.add_argument("dest", type=Path, help="destination folder")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--mode", choices=("copy", "hardlink", "symlink"), default="copy", help="default: copy")
    p.add_argument("--min-probability", type=float, default=0.0,
                   help="tracks whose top genre is less probable go to DEST/_uncertain/ (default: 0)")
    p.add_argument("--write-tags", action="store_true",
                   help="write the genre into the copies' tags (and the model's genre, probability and name "
                        "into FMA_GENRE, FMA_GENRE_PROBABILITY, FMA_GENRE_MODEL)")
    p.add_argument("--dry-run", action="store_true", help="show what would be done; write nothing")
    add_runtime_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.apps.organize import OrganizeConfig, organize
    from utils.apps.tags import model_name
    from utils.models.predict import load_predictor

    config = OrganizeConfig(args.mode, args.min_probability, args.write_tags, args.dry_run, model_name(args.model))
    predictor = load_predictor(args.model, args.runtime, jobs=args.jobs, max_windows=max_windows(args))
    placed = []
    for p in tqdm(organize(predictor, args.sources, args.dest, config, jobs=args.jobs), unit="file",
                  total=len(audio.find_audio(args.sources)), disable=None, file=sys.stderr):
        placed.append(p)
        if args.dry_run and p.destination:
            print(f"would {args.mode} {p.source} -> {args.dest / p.destination} ({p.genre} {p.probability:.2f})")
    failed = [p for p in placed if p.error]
    counts: dict[str, int] = {}
    for p in placed:
        if p.destination:
            folder = p.destination.split("/", 1)[0]
            counts[folder] = counts.get(folder, 0) + 1
    verb = "would place" if args.dry_run else "placed"
    resumed = sum(p.resumed for p in placed)
    print(f"{verb} {sum(counts.values())} of {len(placed)} files under {args.dest}: "
          + ", ".join(f"{g} {n}" for g, n in sorted(counts.items()))
          + (f" ({resumed} done by an earlier run, not classified again)" if resumed else ""))
    for p in failed:
        print(f"failed: {p.source}: {p.error}", file=sys.stderr)
    return 1 if failed else 0
