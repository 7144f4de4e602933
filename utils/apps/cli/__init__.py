"""The ``fma-genre`` command line: one module per command, one error wrapper.

Each command module has ``add(subparsers)``, which registers its parser with
``run`` as the action. :func:`main` parses, runs the command and turns any
:class:`~utils.errors.FmaGenreError` (or a bad value) into one line on stderr
and exit status 1, Ctrl-C into exit status 130: never a traceback.
:func:`console` is the program: it exits at once after Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import sys

from utils import __version__
from utils.apps.cli import (baselines, download, extract, features, organize, pipeline, predict, quiet, serve,
                            slides, spectrograms, train)
from utils.errors import FmaGenreError

COMMANDS = (predict, organize, serve, train, extract, spectrograms, pipeline, slides, download, features, baselines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fma-genre",
        description="Classify music by genre from log-Mel spectrograms (FMA, GTZAN, your own files).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FmaGenreError, ValueError) as err:
        print(f"fma-genre: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a file system's refusal no command foresaw: still one line naming the file
        where = f"{err.filename}: " if err.filename else ""
        print(f"fma-genre: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fma-genre: interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The ``fma-genre`` program: :func:`main` with TensorFlow's native log noise filtered out of stderr
    (:mod:`~utils.apps.cli.quiet`), then exit with its status. After Ctrl-C the process ends at once,
    without Python's teardown (TensorFlow's alone takes seconds), whatever threads still run."""
    with quiet.native_logs_filtered():
        rc = main()
        if rc == 130:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    sys.exit(rc)
