"""``fma-genre spectrograms``: log-Mel spectrograms of audio files, one summary line each."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from utils import audio
from utils.atomic import write_npy
from utils.audio.frontend import FrontEnd, LogMel, logmel_files
from utils.errors import FmaGenreError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spectrograms", help="turn audio files into log-Mel spectrograms and summarise them",
                       description="Decode audio files (folders are searched recursively), compute "
                                   "log-Mel spectrograms and print one line per file and a summary.")
    p.add_argument("paths", nargs="+", help="audio files or folders")
    p.add_argument("--out", type=Path, help="also save each spectrogram as OUT/<name>.npy (frames x Mels, float32)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    fe = FrontEnd()
    files = audio.find_audio(args.paths)
    if not files:
        raise FmaGenreError(f"no audio files ({', '.join(audio.AUDIO_EXTENSIONS)}) under {' '.join(args.paths)}")
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
