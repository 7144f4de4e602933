"""``fma-genre train``: a CNN trained on a spectrogram cache, or the musicnn transfer model on a labelled
folder, a dataset or a cache's audio files, judged on held-out tracks."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from utils.models.registry import CNN_MODELS, TRANSFER_MODELS

if TYPE_CHECKING:
    import pandas as pd


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (a CNN, or the musicnn transfer model) and judge it on "
                                     "held-out tracks",
                       description="CNNs: train on the windows of a cache made by `fma-genre extract`, "
                                   "stop early on the validation loss, judge per window and per track on the "
                                   "test tracks, save with the model card; the cache's split (FMA's official "
                                   "one) or a stratified 80/10/10 split. Resumable. "
                                   "musicnn: the pretrained musicnn with a genre head trained on its cached "
                                   "embeddings (frozen backbone; --fine-tune N then tunes it end to end), on a "
                                   "labelled folder, GTZAN, FMA or the audio files of a cache; minutes on a CPU "
                                   "for a few hundred clips; resumable (embeddings cached in the run folder).")
    p.add_argument("--cache", type=Path, help="cache folder (--dataset cache)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, model.keras)")
    p.add_argument("--model", choices=CNN_MODELS + TRANSFER_MODELS, default="cnn",
                   help="default: cnn; musicnn: the pretrained musicnn with a genre head")
    p.add_argument("--dataset", choices=("cache", "folder", "gtzan", "fma"), default="cache",
                   help="cache: a cache made by `fma-genre extract` --cache DIR (a CNN trains on its "
                        "spectrograms; musicnn on its audio files and split, as it needs its own front end); "
                        "folder: a labelled folder --root DIR/<genre>/*; gtzan: GTZAN at --root; fma: FMA "
                        "audio at --root with --metadata (folder, gtzan, fma: musicnn only)")
    p.add_argument("--root", type=Path, help="dataset folder (--dataset folder, gtzan, fma)")
    p.add_argument("--metadata", type=Path, help="FMA's tracks.csv or a flat export (--dataset fma)")
    p.add_argument("--subset", choices=("small", "medium", "large", "full"), default="medium",
                   help="FMA subset of tracks.csv (default: medium)")
    p.add_argument("--head", choices=("linear", "dense", "ensemble"), default="linear",
                   help="musicnn's genre head (default: linear, the shipped model's)")
    p.add_argument("--weighting", choices=("artist", "none"), default="artist",
                   help="musicnn: artist (default, the shipped model's): every genre, and every artist within it, "
                        "weighs the same in training where the tracks name their artists; none: every window alike")
    p.add_argument("--copies", type=int, default=3,
                   help="musicnn: augmented copies of each training file (default: 3)")
    p.add_argument("--fine-tune", type=int, default=0, metavar="EPOCHS",
                   help="musicnn: epochs of end-to-end fine-tuning after the head (default: 0, musicnn frozen); "
                        "a GPU job beyond a few hundred clips; the windows are cached in the run folder")
    p.add_argument("--classes", nargs="+", help="labels to use (default: all in the cache)")
    p.add_argument("--epochs", type=int, help="default: 30 for a CNN, 20 for musicnn's head")
    p.add_argument("--batch-size", type=int, default=32, help="windows per step (default: 32)")
    p.add_argument("--learning-rate", type=float,
                   help="default: 0.001 for a CNN, 1e-05 for musicnn's fine-tuning")
    p.add_argument("--patience", type=int, default=5, help="epochs without a better validation loss (default: 5)")
    p.add_argument("--balance", choices=("none", "class_weight", "oversample", "undersample"), default="none",
                   help="imbalance handling (default: none)")
    p.add_argument("--spec-augment", type=int, default=0, metavar="N",
                   help="N time and N frequency masks per window (default: 0)")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA", help="mixup alpha (default: 0, off)")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--reports", type=Path, help="write metrics JSON and figures here")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow", help="Keras backend")
    p.add_argument("--data-parallel", action="store_true",
                   help="split each batch over all GPUs of this machine (the batch size is the global one)")
    p.add_argument("--verbose", type=int, default=0, help="Keras progress output (0, 1, 2)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from utils.models import backend

    backend.use(args.backend)
    if args.model in TRANSFER_MODELS or args.dataset != "cache":
        return run_transfer(args)
    if args.cache is None:
        raise ValueError("--cache is needed to train a CNN (or --model musicnn --dataset folder --root DIR)")
    from utils.evaluation import experiment
    from utils.data.cache import Cache
    from utils.data.splits import SPLITS, Split, make_splits, official_split
    from utils.models.training import Augment, TrainConfig

    cache = Cache(args.cache)
    ok = cache.sources().dropna(subset=["label"])
    classes = args.classes or sorted(ok.label.unique())
    ok = ok[ok.label.isin(classes)].reset_index(drop=True)
    if ok.split.notna().all():
        split, how = official_split(ok), "the cache's split"
    else:
        ok = ok.assign(split=make_splits(ok, seed=args.seed))  # grouped by the artists the cache recorded
        split = Split(*(tuple(ok.track_id[ok.split == s]) for s in SPLITS))
        how = (f"a stratified 80/10/10 split (seed {args.seed}"
               f"{', grouped by artist' if ok.artist.notna().any() else ''})")
    augment = Augment(time_masks=args.spec_augment, freq_masks=args.spec_augment, mixup_alpha=args.mixup)
    config = TrainConfig(args.model, args.epochs or 30, args.batch_size, args.learning_rate or 1e-3, args.seed,
                         args.patience, augment=augment,
                         distribution="data_parallel" if args.data_parallel else "none")
    print(f"training {args.model} on {len(split.training)} tracks of {len(classes)} classes "
          f"({len(split.validation)} validation, {len(split.test)} test; {how})", file=sys.stderr)
    out = experiment.run(cache, classes, split, config, args.out, balancing=args.balance,
                         reports=args.reports, name=args.model, data={"split": how}, verbose=args.verbose)
    t, w = out.track_metrics, out.window_metrics
    print(f"test: track accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f}, log loss {t['log_loss']:.3f}; "
          f"window accuracy {w['accuracy']:.3f}; temperature {out.temperature:.2f}")
    print(f"model: {out.model_path} (card beside it)")
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    from utils.models.transfer_train import TransferConfig, train_tracks

    if args.model not in TRANSFER_MODELS:
        raise ValueError(f"--dataset {args.dataset} trains the transfer model (--model musicnn); "
                         "CNNs train on --dataset cache --cache DIR")
    tracks, source = transfer_tracks(args)
    config = TransferConfig(head=args.head, by_artist=args.weighting == "artist", copies=args.copies,
                            epochs=args.epochs or 20, seed=args.seed,
                            fine_tune=args.fine_tune, fine_tune_learning_rate=args.learning_rate or 1e-5,
                            fine_tune_batch_size=args.batch_size)
    out = train_tracks(tracks, args.out, config, source=source, classes=args.classes,
                       log=lambda line: print(line, file=sys.stderr))
    test = out.metrics.get("test")
    print(f"test: track accuracy {test['accuracy']:.3f} on {test['n_tracks']} tracks ({out.split}); temperature "
          f"{out.temperature:.2f}" if test else "no test figures: " + out.metrics["note"])
    print(f"model: {out.model_path} (card beside it)")
    return 0


def transfer_tracks(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """The track table the transfer model trains on, and what it came from (for errors and the card)."""
    if args.dataset == "cache":
        from utils.data.cache import Cache

        if args.cache is None:
            raise ValueError("--dataset cache needs --cache DIR (a cache made by `fma-genre extract`)")
        return Cache(args.cache).sources(), str(args.cache)
    if args.root is None:
        raise ValueError(f"--dataset {args.dataset} needs --root DIR")
    if args.dataset == "folder":
        from utils.models.transfer_train import labelled_tracks

        return labelled_tracks(args.root, args.classes), str(args.root)
    from utils.data.catalog import load_dataset

    if args.dataset == "fma" and args.metadata is None:
        raise ValueError("--dataset fma needs --metadata (FMA's tracks.csv or a flat export): labels come from it")
    tracks, _ = load_dataset(args.dataset, args.root, args.metadata, args.subset)  # known-bad clips left out
    return tracks, str(args.root)
