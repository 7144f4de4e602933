"""The ``fma-genre`` command line."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from . import __version__, audio, baselines, download, features, pipeline
from .atomic import write_npy, write_text
from .datasets import DATASETS, DatasetError, load_dataset
from .frontend import MUSICNN, FrontEnd, LogMel, logmel_files
from .modelcard import ModelCardError


def _spectrograms(args: argparse.Namespace) -> int:
    fe = FrontEnd()
    files = audio.find_audio(args.paths)
    if not files:
        print(f"no audio files ({', '.join(audio.AUDIO_EXTENSIONS)}) under {' '.join(args.paths)}",
              file=sys.stderr)
        return 1
    lm = LogMel(fe)
    failed: list[audio.AudioError] = []
    start = time.perf_counter()
    print(f"{'file':<44} {'seconds':>8} {'frames':>7} {'mean dB':>8} {'max dB':>7}")
    for path, S in tqdm(logmel_files(files, lm), total=len(files), unit="file",
                        disable=None, file=sys.stderr):
        if isinstance(S, audio.AudioError):
            failed.append(S)
            continue
        seconds = (S.shape[0] - 1) * fe.hop_length / fe.sample_rate
        name = str(path) if len(str(path)) <= 44 else "..." + str(path)[-41:]
        print(f"{name:<44} {seconds:8.1f} {S.shape[0]:7d} {S.mean():8.1f} {S.max():7.1f}")
        if args.out:
            write_npy(args.out / path.with_suffix(".npy").name, S)
    took = time.perf_counter() - start
    print(f"\n{len(files) - len(failed)} of {len(files)} files -> log-Mel spectrograms "
          f"({fe.n_mels} Mels, {fe.sample_rate} Hz, hop {fe.hop_length}) in {took:.1f} s "
          f"({len(files) / took:.1f} files/s)")
    for err in failed:
        print(f"failed: {err}", file=sys.stderr)
    return 1 if failed else 0


def _extract(args: argparse.Namespace) -> int:
    from . import cache  # numba-compiled reading; only this command needs it

    if args.workers is not None and args.workers < 0:
        print(f"fma-genre: error: --workers must be 0 or more, got {args.workers}", file=sys.stderr)
        return 1
    presets = {"default": FrontEnd(), "musicnn": MUSICNN}
    fe = presets.get(args.frontend) or FrontEnd.from_json(args.frontend)
    tracks, excluded = load_dataset(args.dataset, args.root, args.metadata, args.subset)
    if tracks.empty:
        print(f"fma-genre: error: {args.root}: no audio files", file=sys.stderr)
        return 1
    try:
        if args.workers == 0:
            summary = cache.extract(tracks, args.out, fe, shard_size=args.shard_size)
        else:
            from . import distributed  # Dask: only this path needs it

            summary = distributed.extract(tracks, args.out, fe, scheduler=args.scheduler, workers=args.workers,
                                          shard_size=args.shard_size)
    except cache.CacheError as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    print(summary)
    if len(excluded):
        cache.write_excluded(args.out, excluded)
        print(f"{len(excluded)} known-bad tracks left out (listed with reasons in {args.out / 'excluded.csv'})")
    return 1 if getattr(summary, "failed_shards", ()) else 0


def _predict(args: argparse.Namespace) -> int:
    from .predict import load_predictor

    files = audio.find_audio(args.paths)
    predictor = load_predictor(args.model)
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


def _train(args: argparse.Namespace) -> int:
    from . import backend

    backend.use(args.backend)
    from . import experiment
    from .cache import Cache, CacheError
    from .datasets import make_splits
    from .training import Augment, TrainConfig
    import pandas as pd

    try:
        cache = Cache(args.cache)
    except CacheError as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    ok = cache.tracks[cache.tracks.status == "ok"].dropna(subset=["label"])
    classes = args.classes or sorted(ok.label.unique())
    ok = ok[ok.label.isin(classes)].reset_index(drop=True)
    if ok.split.notna().all():
        split, how = experiment.official_split(cache), "the cache's split"
    else:
        ok = ok.assign(artist=pd.NA)  # the cache keeps no artists: a plain stratified split
        ok = ok.assign(split=make_splits(ok, seed=args.seed))
        split = experiment.Split(*(tuple(ok.track_id[ok.split == s]) for s in ("training", "validation", "test")))
        how = f"a stratified 80/10/10 split (seed {args.seed})"
    augment = Augment(time_masks=2 * args.spec_augment, freq_masks=2 * args.spec_augment, mixup_alpha=args.mixup)
    config = TrainConfig(args.model, args.epochs, args.batch_size, args.learning_rate, args.seed,
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


def _slides(args: argparse.Namespace) -> int:
    from .slides import SlideError, build

    folders = ([args.run_dir / "reports"] if args.run_dir else []) + [args.reports]
    try:
        deck = build(args.source, folders, args.out, pdf=not args.no_pdf)
    except SlideError as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    print(f"{deck.slides} slides: {deck.html}" + (f", {deck.pdf}" if deck.pdf else ""))
    return 0


def _organize(args: argparse.Namespace) -> int:
    from .organize import OrganizeConfig, organize
    from .predict import load_predictor

    config = OrganizeConfig(args.mode, args.min_probability, args.write_tags, args.dry_run)
    predictor = load_predictor(args.model)
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
    print(f"{verb} {sum(counts.values())} of {len(placed)} files under {args.dest}: "
          + ", ".join(f"{g} {n}" for g, n in sorted(counts.items())))
    for p in failed:
        print(f"failed: {p.source}: {p.error}", file=sys.stderr)
    return 1 if failed else 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .predict import load_predictor
    from .web import WebConfig, create_app

    predictor = load_predictor(args.model)
    app = create_app(predictor, WebConfig(args.max_upload_mib, args.max_concurrent),
                     model_name=Path(args.model or "models/default.keras").stem)
    print(f"fma-genre: serving on http://{args.host}:{args.port} (API docs at /docs); Ctrl-C stops")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fma-genre",
        description="Classify music by genre from log-Mel spectrograms (FMA, GTZAN, your own files).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("spectrograms", help="turn audio files into log-Mel spectrograms and summarise them",
                       description="Decode audio files (folders are searched recursively), compute "
                                   "log-Mel spectrograms and print one line per file and a summary.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--out", type=Path, help="also save each spectrogram as OUT/<name>.npy (frames x Mels, float32)")
    p.set_defaults(run=_spectrograms)

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
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the shards on the Dask scheduler at ADDRESS (tcp://host:8786); the cache and "
                            "the audio must be on a file system its workers mount at the same paths")
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the shards on a local Dask cluster of N processes; 0: in this process, "
                            "without Dask (default: one worker per core)")
    p.set_defaults(run=_extract)

    p = sub.add_parser("train", help="train a model on a spectrogram cache and judge it on held-out tracks",
                       description="Train a CNN on the windows of a cache made by `fma-genre extract`, "
                                   "stop early on the validation loss, judge it per window and per track "
                                   "on the test tracks, and save it with its model card. Uses the cache's "
                                   "split (FMA's official one) or a stratified 80/10/10 split. Resumable.")
    p.add_argument("--cache", type=Path, required=True, help="cache folder")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, model.keras)")
    p.add_argument("--model", choices=("cnn", "crnn", "parallel", "short_res"), default="cnn", help="default: cnn")
    p.add_argument("--classes", nargs="+", help="labels to use (default: all in the cache)")
    p.add_argument("--epochs", type=int, default=30, help="default: 30")
    p.add_argument("--batch-size", type=int, default=32, help="default: 32")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="default: 0.001")
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
    p.set_defaults(run=_train)

    model_help = "a .keras model with its .card.json (default: the shipped models/default.keras)"
    p = sub.add_parser("predict", help="classify audio files by genre",
                       description="Classify audio files (folders are searched recursively) with a trained "
                                   "model. Long files are classified window by window in bounded memory.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--model", type=Path, help=model_help)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--output", type=Path, help="write to this file instead of standard output")
    p.add_argument("--segments", action="store_true", help="also show the genre over time (table, json)")
    p.add_argument("--jobs", type=int, default=1, help="files decoded and classified at once (default: 1)")
    p.set_defaults(run=_predict)

    p = sub.add_parser("organize", help="copy or link a music library into one folder per genre",
                       description="Classify every audio file under SOURCES and copy (or link) it to "
                                   "DEST/<genre>/, keeping its path below the source folder; write "
                                   "DEST/<genre>.m3u playlists and DEST/predictions.csv. Originals are never "
                                   "moved or changed. Re-running skips files already placed.")
    p.add_argument("sources", nargs="+", type=Path, help="music files or folders")
    p.add_argument("dest", type=Path, help="destination folder")
    p.add_argument("--model", type=Path, help=model_help)
    p.add_argument("--mode", choices=("copy", "hardlink", "symlink"), default="copy", help="default: copy")
    p.add_argument("--min-probability", type=float, default=0.0,
                   help="tracks whose top genre is less probable go to DEST/_uncertain/ (default: 0)")
    p.add_argument("--write-tags", action="store_true", help="write the genre into the copies' tags")
    p.add_argument("--dry-run", action="store_true", help="show what would be done; write nothing")
    p.add_argument("--jobs", type=int, default=1, help="files decoded and classified at once (default: 1)")
    p.set_defaults(run=_organize)

    p = sub.add_parser("serve", help="start the web page and JSON API",
                       description="Serve a page to upload a song and see its genre probabilities, Mel "
                                   "spectrogram and genre over time, and POST /api/predict (docs at /docs).")
    p.add_argument("--model", type=Path, help=model_help)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="default: 8000")
    p.add_argument("--max-upload-mib", type=float, default=50.0, help="largest upload in MiB (default: 50)")
    p.add_argument("--max-concurrent", type=int, default=2, help="predictions at once (default: 2)")
    p.set_defaults(run=_serve)

    p = sub.add_parser("slides", help="build the slide deck (HTML and PDF) from a run's reports",
                       description="Fill slides/deck.md with the numbers and figures of a run's reports "
                                   "(and the project's reports/ for what the scripts measured), and write "
                                   "OUT/deck.html (self-contained) and OUT/deck.pdf (headless Chromium).")
    p.add_argument("--run", dest="run_dir", type=Path, help="a pipeline run folder (runs/NAME); its reports come first")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="the project's reports (default: reports)")
    p.add_argument("--source", type=Path, default=Path("slides/deck.md"), help="default: slides/deck.md")
    p.add_argument("--out", type=Path, default=Path("slides"), help="default: slides")
    p.add_argument("--no-pdf", action="store_true", help="HTML only")
    p.set_defaults(run=_slides)

    pipeline.add_cli(sub)
    download.add_cli(sub)
    features.add_cli(sub)
    baselines.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (audio.AudioError, DatasetError, ModelCardError, ValueError) as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fma-genre: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
