"""The ``fma-genre`` command line."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, audio, baselines, download, features
from .datasets import DATASETS, DatasetError, load_dataset
from .frontend import MUSICNN, FrontEnd, LogMel, logmel_files


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
            _save_atomic(args.out / path.with_suffix(".npy").name, S)
    took = time.perf_counter() - start
    print(f"\n{len(files) - len(failed)} of {len(files)} files -> log-Mel spectrograms "
          f"({fe.n_mels} Mels, {fe.sample_rate} Hz, hop {fe.hop_length}) in {took:.1f} s "
          f"({len(files) / took:.1f} files/s)")
    for err in failed:
        print(f"failed: {err}", file=sys.stderr)
    return 1 if failed else 0


def _extract(args: argparse.Namespace) -> int:
    from . import cache  # numba-compiled reading; only this command needs it

    presets = {"default": FrontEnd(), "musicnn": MUSICNN}
    fe = presets.get(args.frontend) or FrontEnd.from_json(args.frontend)
    tracks, excluded = load_dataset(args.dataset, args.root, args.metadata, args.subset)
    if tracks.empty:
        print(f"fma-genre: error: {args.root}: no audio files", file=sys.stderr)
        return 1
    try:
        summary = cache.extract(tracks, args.out, fe, shard_size=args.shard_size)
    except cache.CacheError as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    print(summary)
    if len(excluded):
        cache.write_excluded(args.out, excluded)
        print(f"{len(excluded)} known-bad tracks left out (listed with reasons in {args.out / 'excluded.csv'})")
    return 0


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    tmp.replace(path)


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
    p.set_defaults(run=_extract)

    download.add_cli(sub)
    features.add_cli(sub)
    baselines.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (audio.AudioError, DatasetError) as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fma-genre: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
