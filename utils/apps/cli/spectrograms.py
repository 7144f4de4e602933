"""``fma-genre spectrograms``: log-Mel spectrograms of audio files, one summary line each."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from utils import audio
from utils.atomic import write_npy
from utils.audio.frontend import FMA_SMALL, MUSICNN, FrontEnd, LogMel, logmel_files
from utils.errors import FmaGenreError

FRONT_ENDS = {"default": FrontEnd(), "musicnn": MUSICNN, "fma-small": FMA_SMALL}


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spectrograms", help="turn audio files into log-Mel spectrograms and summarise them",
                       description="Decode audio files (folders are searched recursively), compute "
                                   "log-Mel spectrograms and print one line per file and a summary. "
                                   "--frontend fma-small makes the picture the fma-small model sees: "
                                   "the clip's first 30 s (a longer track's middle 30 s), 128 Mels in dB "
                                   "re its peak, 128 time columns, 256 levels, as fma_small's pictures.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--frontend", choices=tuple(FRONT_ENDS), default="default",
                   help="default: the 22.05 kHz front end; musicnn: 16 kHz, 96 Mels; fma-small: fma_small's "
                        "pictures (default: %(default)s)")
    p.add_argument("--out", type=Path, help="also save each spectrogram as OUT/<name>.npy (frames x Mels, float32); "
                                            "with --frontend fma-small, each picture as OUT/<name>.png (8-bit, "
                                            "highest Mel band on top, as the shared pictures)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    fe = FRONT_ENDS[args.frontend]
    files = audio.find_audio(args.paths)
    if not files:
        raise FmaGenreError(f"no audio files ({', '.join(audio.AUDIO_EXTENSIONS)}) under {' '.join(args.paths)}")
    lm = LogMel(fe)
    failed: list[audio.AudioError] = []
    start = time.perf_counter()
    if fe.is_picture:
        print(f"{'file':<44} {'from s':>7} {'mean level':>10} {'max':>4}")
        from utils.audio.picture import picture_files

        results = picture_files(files, fe)
    else:
        print(f"{'file':<44} {'seconds':>8} {'frames':>7} {'mean dB':>8} {'max dB':>7}")
        results = logmel_files(files, lm)
    for path, S in tqdm(results, total=len(files), unit="file", disable=None, file=sys.stderr):
        if isinstance(S, audio.AudioError):
            failed.append(S)
            continue
        name = str(path) if len(str(path)) <= 44 else "..." + str(path)[-41:]
        if fe.is_picture:
            offset, picture = S
            print(f"{name:<44} {offset:7.1f} {picture.mean():10.1f} {picture.max():4.0f}")
            if args.out:
                from utils.audio.picture import save_png

                save_png(picture, args.out / path.with_suffix(".png").name)
            continue
        seconds = (S.shape[0] - 1) * fe.hop_length / fe.sample_rate
        print(f"{name:<44} {seconds:8.1f} {S.shape[0]:7d} {S.mean():8.1f} {S.max():7.1f}")
        if args.out:
            write_npy(args.out / path.with_suffix(".npy").name, S)
    took = time.perf_counter() - start
    what = (f"pictures ({fe.columns} x {fe.n_mels}, {fe.levels} levels)" if fe.is_picture else
            f"log-Mel spectrograms ({fe.n_mels} Mels, {fe.sample_rate} Hz, hop {fe.hop_length})")
    print(f"\n{len(files) - len(failed)} of {len(files)} files -> {what} in {took:.1f} s "
          f"({len(files) / took:.1f} files/s)")
    for err in failed:
        print(f"failed: {err}", file=sys.stderr)
    return 1 if failed else 0

