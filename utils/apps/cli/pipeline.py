"""``fma-genre pipeline``: the five notebooks run with papermill into one run folder."""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from utils.apps.pipeline import PipelineConfig, is_s3, run_pipeline
from utils.models.registry import CNN_MODELS


def add(sub: argparse._SubParsersAction) -> None:
    """Register ``fma-genre pipeline``."""
    p = sub.add_parser(
        "pipeline", help="run the five notebooks (EDA -> evaluation) with papermill into a run folder",
        description="Execute notebooks/01_eda ... 05_evaluation in order on fma_small's pictures with the same "
                    "parameters, writing the executed notebooks, logs, reports/*.json, reports/figures/*.png, "
                    "04's model and "
                    "run.json into the run folder --out. An existing run folder is refused unless --resume "
                    "or --force. --out may be s3://bucket/prefix/NAME (needs boto3 and AWS credentials).")
    p.add_argument("--dataset", choices=("fma_small",), default="fma_small",
                   help="fma_small's pictures, FMA's official split (the only dataset of the notebooks)")
    p.add_argument("--root", type=Path,
                   help="picture folder <split>/<Genre>/<track_id>.png with tracks.csv and the VGGish embeddings "
                        "beside (default: ../shared/data/fma_small_mel beside the repository; not bundled)")
    p.add_argument("--genres", nargs="+", help="genres to use (default: all 8)")
    p.add_argument("--binary-genres", nargs=2, metavar="GENRE",
                   help="the binary task of 03 (default: the two most distinct by mean spectrum, from 02)")
    p.add_argument("--per-genre", type=int, help="pictures per genre and split: a slice (default: all)")
    p.add_argument("--model", choices=CNN_MODELS, default=PipelineConfig.model,
                   help=f"the CNN of 03 and 04 (default: {PipelineConfig.model}; the 2D ones are ~10x slower)")
    p.add_argument("--epochs", type=int, default=PipelineConfig.epochs,
                   help=f"training epochs (default: {PipelineConfig.epochs})")
    p.add_argument("--batch-size", type=int, default=PipelineConfig.batch_size,
                   help=f"default: {PipelineConfig.batch_size}")
    p.add_argument("--patience", type=int, default=PipelineConfig.patience,
                   help=f"early-stopping patience in epochs (default: {PipelineConfig.patience})")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow", help="Keras backend")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--shipped-model", default=PipelineConfig.shipped_model,
                   help="the model 05 judges on validation when it exists, else 04's (default: fma-small)")
    p.add_argument("--out", help="run folder, or s3://bucket/prefix/NAME (default: runs/DATASET-DATE-TIME)")
    p.add_argument("--work", type=Path, help="with an s3:// --out: the local run folder (default: runs/NAME)")
    p.add_argument("--resume", action="store_true", help="finish an existing run: skip notebooks that ran")
    p.add_argument("--force", action="store_true",
                   help="run an existing run folder again from the start (its cache is kept)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 epoch, 20 pictures per genre and split; numbers mean nothing")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel (default: python3, this Python's)")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The :class:`PipelineConfig` of parsed ``fma-genre pipeline`` arguments."""
    return PipelineConfig(
        dataset=args.dataset, root=str(args.root or PipelineConfig.root),
        genres=tuple(args.genres) if args.genres else None,
        binary_genres=tuple(args.binary_genres) if args.binary_genres else None, per_genre=args.per_genre,
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, patience=args.patience,
        keras_backend=args.backend, seed=args.seed, shipped_model=args.shipped_model, quick=args.quick)


def run(args: argparse.Namespace) -> int:
    out = args.out or f"runs/{args.dataset}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    record = run_pipeline(config_from_args(args), out, work=args.work, resume=args.resume, force=args.force,
                          kernel_name=args.kernel, log=lambda line: print(line, file=sys.stderr))
    root = Path(args.work) if args.work else Path(out)
    total = sum(e.get("seconds", 0) for e in record["notebooks"].values())
    print(f"run {record['status']}: {out} ({total:.0f} s of notebooks)")
    for nb, e in record["notebooks"].items():
        print(f"  {nb:<20} {e['status']:<8} {e.get('seconds', 0):6.0f} s  {e.get('error', '')}")
    if not is_s3(out):
        print(f"reports: {root / 'reports'}  figures: {root / 'reports' / 'figures'}")
    return 0 if record["status"] == "ok" else 1
