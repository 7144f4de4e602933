"""``fma-genre pipeline``: the five notebooks run with papermill into one run folder."""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from utils.apps.pipeline import PipelineConfig, PipelineError, is_s3, run_pipeline
from utils.models.registry import CNN_MODELS


def add(sub: argparse._SubParsersAction) -> None:
    """Register ``fma-genre pipeline``."""
    p = sub.add_parser(
        "pipeline", help="run the five notebooks (EDA -> evaluation) with papermill into a run folder",
        description="Execute notebooks/01_eda ... 05_evaluation in order with the same parameters, writing "
                    "the executed notebooks, logs, reports/*.json, reports/figures/*.png, the best model and "
                    "run.json into the run folder --out. An existing run folder is refused unless --resume "
                    "or --force. --out may be s3://bucket/prefix/NAME (needs boto3 and AWS credentials).")
    p.add_argument("--dataset", choices=("gtzan", "fma", "folder"), default="gtzan", help="default: gtzan")
    p.add_argument("--root", type=Path,
                   help="audio folder (default with --dataset gtzan: ../shared/data/gtzan_mini beside the "
                        "repository; GTZAN is not bundled)")
    p.add_argument("--metadata", type=Path,
                   help="fma: tracks.csv of fma_metadata (official split), or a flat export")
    p.add_argument("--subset", choices=("small", "medium", "large", "full"), default="medium",
                   help="fma with tracks.csv: the subset (default: medium)")
    p.add_argument("--genres", nargs="+", help="labels to use (default: all)")
    p.add_argument("--binary-genres", nargs=2, metavar="GENRE",
                   help="the binary task of 03 (default: Hip-Hop Rock on fma, classical metal on gtzan, "
                        "the two most distinct by mean spectrum otherwise)")
    p.add_argument("--models", nargs="+", choices=CNN_MODELS, default=list(CNN_MODELS),
                   help="architectures compared in 04 (default: all four)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3, the sample's)")
    p.add_argument("--batch-size", type=int, default=32, help="default: 32")
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs (default: 5)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow", help="Keras backend")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--folds", type=int, default=5,
                   help="without an official split: k of the stratified folds (capped by the smallest class)")
    p.add_argument("--repeats", type=int, default=1, help="repeats of the folds (default: 1)")
    p.add_argument("--features", type=Path,
                   help="FMA's features.csv (fma_metadata) for the baselines instead of computing features")
    p.add_argument("--cache", type=Path, help="spectrogram cache folder to use or make (default: OUT/cache)")
    p.add_argument("--out", help="run folder, or s3://bucket/prefix/NAME (default: runs/DATASET-DATE-TIME)")
    p.add_argument("--work", type=Path, help="with an s3:// --out: the local run folder (default: runs/NAME)")
    p.add_argument("--resume", action="store_true", help="finish an existing run: skip notebooks that ran")
    p.add_argument("--force", action="store_true",
                   help="run an existing run folder again from the start (its cache is kept)")
    for flag, unit in (("sample-rate", "Hz"), ("n-fft", "samples"), ("hop-length", "samples"), ("n-mels", "bands"),
                       ("window-frames", "frames per model window"), ("window-hop", "frames between windows")):
        name = flag.replace("-", "_")
        p.add_argument(f"--{flag}", type=int, default=getattr(PipelineConfig, name),
                       help=f"front end: {unit} (default: {getattr(PipelineConfig, name)})")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 epoch, fewer windows; numbers mean nothing")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel (default: python3, this Python's)")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The :class:`PipelineConfig` of parsed ``fma-genre pipeline`` arguments."""
    if args.root is None and args.dataset != "gtzan":
        raise PipelineError(f"--dataset {args.dataset} needs --root (its audio folder)")
    binary = args.binary_genres
    if binary is None:  # the two distinct genres the issue names; a folder's come from notebook 02
        binary = {"fma": ("Hip-Hop", "Rock"), "gtzan": ("classical", "metal")}.get(args.dataset)
    return PipelineConfig(
        dataset=args.dataset, root=str(args.root or PipelineConfig.root), metadata=str(args.metadata) if args.metadata else None,
        subset=args.subset, genres=tuple(args.genres) if args.genres else None,
        binary_genres=tuple(binary) if binary else None, models=tuple(args.models),
        epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, keras_backend=args.backend,
        seed=args.seed, folds=args.folds, repeats=args.repeats,
        features=str(args.features) if args.features else None,
        cache=str(args.cache) if args.cache else None, quick=args.quick, sample_rate=args.sample_rate,
        n_fft=args.n_fft, hop_length=args.hop_length, n_mels=args.n_mels, window_frames=args.window_frames,
        window_hop=args.window_hop)


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
