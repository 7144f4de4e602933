"""Where a published figure came from: the provenance block every benchmark and experiment writes.

Each script that measures something writes ``reports/<name>.json`` holding
its figures and a ``provenance`` block (:func:`provenance`): when (UTC), the
git commit and whether the work tree had uncommitted changes, the machine
(CPU model, core count, load average before and after), the Python version
and the command line that wrote it. README tables, slides and cards are
rendered from these files (``scripts/render_docs.py``), never typed by hand.

:func:`code_hash` fingerprints source files, so a cached result can be tied
to the code that produced it and recomputed when that code changes.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from utils.atomic import write_json, write_text

ROOT = Path(__file__).resolve().parents[2]


def git_state(root: str | os.PathLike = ROOT) -> dict:
    """Commit of ``root``'s checkout and whether tracked files other than ``reports/`` differ from it
    (a benchmark rewriting a committed report does not make the code it runs uncommitted).

    Returns ``{"commit": None, "dirty": None}`` outside a git checkout or without git.
    """
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(argv: Sequence[str] | None = None, *, note: str = "") -> dict:
    """The provenance block of a report written now by the command ``argv`` (default ``sys.argv``).

    ``load_average`` is the 1, 5 and 15 minute load when called: other work on
    the machine slows every timing, so a report of speeds records it (call
    :func:`finish` at the end to add the load after the run).
    """
    argv = list(sys.argv if argv is None else argv)
    script = argv[0] if argv else ""
    if script and Path(script).exists():
        try:
            script = str(Path(script).resolve().relative_to(ROOT))
        except ValueError:
            pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **git_state(),
            "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "system": platform.platform()},
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "command": shlex.join(["python", script, *argv[1:]]),
            **({"note": note} if note else {})}


def finish(block: dict) -> dict:
    """``block`` with the load average at the end of the run added (``load_average_after``)."""
    return {**block, "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def write_report(path: str | os.PathLike, figures: dict, block: dict, markdown: str | None = None) -> Path:
    """Write ``{"provenance": block, **figures}`` as JSON to ``path`` atomically, and ``markdown``
    (rendered from that JSON) beside it as ``<stem>.md``; return the JSON's path."""
    path = write_json(path, {"provenance": block, **figures})
    if markdown is not None:
        write_text(path.with_suffix(".md"), markdown)
    return path


def code_hash(paths: Iterable[str | os.PathLike]) -> str:
    """SHA-1 (hex, 12 digits) over the files ``paths`` (folders: every ``*.py`` below them),
    named relative to the repository, so that changed code gives another hash."""
    files: set[Path] = set()
    for p in map(Path, paths):
        files |= set(p.rglob("*.py")) if p.is_dir() else {p}
    h = hashlib.sha1()
    for f in sorted(files, key=lambda f: f.resolve().as_posix()):
        name = f.resolve().relative_to(ROOT).as_posix() if f.resolve().is_relative_to(ROOT) else f.name
        h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def describe(block: dict, command: bool = True) -> str:
    """One line for a report: date, commit (``+`` when dirty), machine, load and, with ``command``, the command."""
    commit = (block.get("commit") or "unknown")[:10] + ("+uncommitted changes" if block.get("dirty") else "")
    load = block.get("load_average")
    return (f"{block['date'][:16].replace('T', ' ')} UTC, commit {commit}, {block['machine']['cpu_count']} cores "
            f"({block['machine']['cpu']}), load average {load[0]:.1f} before"
            + (f", {block['load_average_after'][0]:.1f} after" if "load_average_after" in block else "")
            + (f"; `{block['command']}`" if command else ""))
