"""``fma-genre extract``: a dataset's log-Mel windows into a cache (in process or on Dask)."""
from __future__ import annotations

import argparse
from pathlib import Path

from utils.audio.frontend import MUSICNN, FrontEnd
from utils.data.catalog import DATASETS, load_dataset
from utils.errors import FmaGenreError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract", help="extract log-Mel spectrograms of a dataset into a cache",
        description="Decode every track once and store its log-Mel frames (float16) with an index in a "
                    "cache folder that training reads. Resumable: run the same command again after an "
                    "interruption. Files that fail are recorded with their error and skipped.")
    p.add_argument("--dataset", choices=DATASETS, default="folder",
                   help="fma: ROOT/<id[:3]>/<id>.mp3 with --metadata; gtzan: ROOT/<genre>/<genre>.000NN.wav; "
                        "folder: ROOT/<label>/<file>, or a flat folder of unlabelled files (default: folder)")
    p.add_argument("--root", type=Path, required=True, help="audio folder")
    p.add_argument("--metadata", type=Path, help="fma: tracks.csv from fma_metadata, or a flat export "
                                                 "such as fma-rock-vs-hiphop.csv.gz")
    p.add_argument("--subset", choices=("small", "medium", "large", "full"), default="medium",
                   help="fma with tracks.csv: the subset (default: medium)")
    p.add_argument("--out", type=Path, required=True, help="cache folder (created)")
    p.add_argument("--frontend", default="default",
                   help="front-end parameters: default, musicnn, or a JSON file of them")
    p.add_argument("--shard-size", type=int, default=64, help="tracks per shard (default: 64)")
    p.add_argument("--excerpt", type=float, metavar="SECONDS",
                   help="keep only the middle SECONDS of each track, as FMA cut its clips from fma_full's "
                        "untrimmed tracks (30); decoded by seeking; recorded in the cache (default: whole tracks)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the shards on the Dask scheduler at ADDRESS (tcp://host:8786); the cache and "
                            "the audio must be on a file system its workers mount at the same paths")
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the shards on a local Dask cluster of N processes; 0: in this process, "
                            "without Dask (default: one worker per core)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.data import cache  # numba-compiled reading; only this command needs it

    if args.workers is not None and args.workers < 0:
        raise FmaGenreError(f"--workers must be 0 or more, got {args.workers}")
    if args.excerpt is not None and not args.excerpt > 0:
        raise FmaGenreError(f"--excerpt must be a positive number of seconds, got {args.excerpt}")
    presets = {"default": FrontEnd(), "musicnn": MUSICNN}
    fe = presets.get(args.frontend) or FrontEnd.from_json(args.frontend)
    tracks, excluded = load_dataset(args.dataset, args.root, args.metadata, args.subset)
    if tracks.empty:
        raise FmaGenreError(args.root, "no audio files")
    if args.workers == 0:
        summary = cache.extract(tracks, args.out, fe, shard_size=args.shard_size, excerpt=args.excerpt)
    else:
        from utils.data import distributed  # Dask: only this path needs it

        summary = distributed.extract(tracks, args.out, fe, scheduler=args.scheduler, workers=args.workers,
                                      shard_size=args.shard_size, excerpt=args.excerpt)
    print(summary)
    if len(excluded):
        cache.write_excluded(args.out, excluded)
        print(f"{len(excluded)} known-bad tracks left out (listed with reasons in {args.out / 'excluded.csv'})")
    return 1 if getattr(summary, "failed_shards", ()) else 0
