"""The ``fma-genre`` command line: one module per command, one error wrapper.

Each command module has ``add(subparsers)``, which registers its parser with
``run`` as the action. Only the module of the command being run is imported
(all of them for ``--help`` or a mistyped command), so ``fma-genre predict``
does not pay for pandas, seaborn or scikit-learn that other commands load.
:func:`main` parses, runs the command and turns any
:class:`~utils.errors.FmaGenreError` (or a bad value) into one line on stderr
and exit status 1, Ctrl-C into exit status 130: never a traceback.
:func:`console` is the program: it exits at once after Ctrl-C.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from utils import __version__
from utils.apps.cli import quiet
from utils.errors import FmaGenreError

COMMANDS = ("predict", "organize", "serve", "evaluate", "export", "train", "extract", "spectrograms", "pipeline",
            "slides", "download", "features", "baselines")  # modules of utils.apps.cli, in --help order


def build_parser(commands: tuple[str, ...] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fma-genre",
        description="Classify music by genre from log-Mel spectrograms (FMA, GTZAN, your own files).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        importlib.import_module(f"utils.apps.cli.{command}").add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser((command,) if command in COMMANDS else COMMANDS).parse_args(argv)
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
