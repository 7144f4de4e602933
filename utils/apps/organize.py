"""Organise a music library by genre: copies or links under ``DEST/<genre>/``, playlists, a CSV.

The user's originals are never moved, changed or deleted: files are copied
(or hard/soft-linked) into the destination, and genre tags, when asked for,
are written into the copies only. Every file appears in the destination
whole or not at all (copied to a temporary name, then renamed), and no file
replaces another: two sources that would land on the same name (``a/01.wav``
and ``b/01.wav`` from two folders) get distinct ones, the second
``01~<8 hex digits of its source path's SHA-1>.wav``, and the CSV and
playlists name the file as placed. A run appends each result to a journal in
``DEST`` as it goes and folds it into ``DEST/predictions.csv`` at the end, so
running the same command again, after a crash or a kill or on a grown
library, classifies only what is new or changed.
"""
from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from utils import audio
from utils.apps.tags import GenreTags, write_tags
from utils.atomic import check_writable, write_atomic, write_text
from utils.errors import FmaGenreError
from utils.models.predict import Predictor, TrackPrediction

MODES = ("copy", "hardlink", "symlink")
UNCERTAIN = "_uncertain"  # folder for tracks whose top probability is below the threshold
COLUMNS = ("source", "size", "mtime_ns", "genre", "probability", "top3", "destination", "error")
JOURNAL = ".predictions.journal"  # in DEST: one JSON row per file as it is done; folded into the CSV at the end
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")  # control characters (a newline would split a playlist entry)


class OrganizeError(FmaGenreError):
    """The destination cannot be used (read-only, not a folder, inside the music)."""


@dataclass(frozen=True)
class OrganizeConfig:
    """How to organise: ``mode`` (copy, hardlink or symlink), ``min_probability`` (below it a
    track goes to ``_uncertain/``), ``write_tags`` (genre tags in the copies, :mod:`utils.apps.tags`),
    ``dry_run``, ``model`` (the model's name written into the tags, :func:`utils.apps.tags.model_name`;
    None writes none)."""

    mode: str = "copy"
    min_probability: float = 0.0
    write_tags: bool = False
    dry_run: bool = False
    model: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.write_tags and self.mode != "copy":
            raise ValueError("writing tags needs mode 'copy': a link would change your original file")


@dataclass(frozen=True)
class Placement:
    """One source file's outcome: where it goes (or its error)."""

    source: Path
    size: int
    mtime_ns: int
    genre: str = ""
    probability: float = float("nan")
    top3: str = ""
    destination: str = ""  # relative to DEST
    error: str = ""
    resumed: bool = False  # placed by an earlier run, not classified again

    def row(self) -> dict:
        return {"source": str(self.source), "size": self.size, "mtime_ns": self.mtime_ns,
                "genre": self.genre, "probability": f"{self.probability:.4f}", "top3": self.top3,
                "destination": self.destination, "error": self.error}


def sources(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """``(file, path relative to the folder it was found in)`` for every audio file under ``paths``."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [(f, f.relative_to(p)) for f in audio.find_audio([p])]
        else:
            found += [(f, Path(f.name)) for f in audio.find_audio([p])]
    return found


def read_log(dest: Path) -> dict[str, dict]:
    """Rows of earlier runs by source path: ``predictions.csv``, then the journal of a run that did
    not finish (its rows win; a last line cut short by a kill is ignored). Empty if none."""
    rows = {}
    log, journal = dest / "predictions.csv", dest / JOURNAL
    if log.is_file():
        with open(log, newline="", encoding="utf-8") as f:
            rows = {row["source"]: row for row in csv.DictReader(f)}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["source"]] = row
    return rows


def organize(predictor: Predictor, paths: Iterable[str | os.PathLike], dest: str | os.PathLike,
             config: OrganizeConfig = OrganizeConfig(), jobs: int = 1) -> Iterator[Placement]:
    """Classify the audio files under ``paths`` and place them under ``dest`` by genre.

    Yields one :class:`Placement` per file as it is done (those already
    placed by an earlier run with the same size and modification time are
    yielded from the log, ``resumed``, not classified again). Appends each
    result to ``dest/`` :data:`JOURNAL` as it is done, so a killed run loses
    nothing; writes ``dest/predictions.csv`` (all files, with errors) and
    ``dest/<genre>.m3u`` playlists at the end, then removes the journal.
    With ``config.dry_run`` nothing is written. Raises :class:`OrganizeError`
    if ``dest`` cannot be written, or stops placing files (those placed are kept).
    """
    dest = Path(dest)
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.is_dir() and dest.resolve().is_relative_to(p.resolve()):
            raise OrganizeError(dest, f"the destination must not be inside {p}, the music being organised")
    if not config.dry_run:
        check_writable(dest / "predictions.csv")
    earlier = read_log(dest)
    found = sources(paths)
    done: list[Placement] = []
    todo: list[tuple[Path, Path]] = []
    claimed: dict[str, str] = {}  # destination -> the source placed there
    for src, rel in found:
        st = src.stat()
        row = earlier.get(str(src))
        if row and int(row["size"]) == st.st_size and int(row["mtime_ns"]) == st.st_mtime_ns and (
                (row["error"] and not row["destination"]) or (row["destination"] and (dest / row["destination"]).exists())):
            placed = Placement(src, st.st_size, st.st_mtime_ns, row["genre"], float(row["probability"] or "nan"),
                               row["top3"], row["destination"], row["error"], resumed=True)
            done.append(placed)
            yield placed
        else:
            todo.append((src, rel))
    for row in earlier.values():  # what earlier runs placed keeps its name
        if row["destination"]:
            claimed.setdefault(row["destination"], row["source"])
    relative = dict(todo)
    for src, result in predictor.predict_files([s for s, _ in todo], jobs=jobs):
        st = src.stat()
        if isinstance(result, audio.AudioError):
            placed = Placement(src, st.st_size, st.st_mtime_ns, error=result.problem)
        else:
            placed = _place(src, relative[src], result, dest, config, st, claimed)
        if not config.dry_run:
            _append_journal(dest, placed)
        done.append(placed)
        yield placed
    if not config.dry_run:
        _write_log(dest, done)
        write_playlists(dest, done)
        (dest / JOURNAL).unlink(missing_ok=True)


def _place(src: Path, rel: Path, result: TrackPrediction, dest: Path, config: OrganizeConfig,
           st: os.stat_result, claimed: dict[str, str]) -> Placement:
    genre, p = result.genre, float(result.probabilities.max())
    folder = genre if p >= config.min_probability else UNCERTAIN
    target = unique_destination(Path(_safe(folder)) / _clean(rel), src, dest, config.mode, claimed)
    claimed[target] = str(src)
    top3 = "; ".join(f"{g} {q:.2f}" for g, q in result.top(3))
    placed = Placement(src, st.st_size, st.st_mtime_ns, genre, p, top3, target)
    if not config.dry_run:
        try:
            _link_or_copy(src, dest / target, config.mode)
        except OSError as err:  # the destination's fault, not the file's: the next files would fail too
            raise OrganizeError(src, _placing_error(err, dest / target, config.mode)) from None
        if config.write_tags:
            try:
                write_tags(dest / target, GenreTags(genre, genre, p, config.model))
            except audio.AudioError as err:
                return dataclasses.replace(placed, error=f"copied, but {err.problem}")
    return placed


def unique_destination(target: Path, src: Path, dest: Path, mode: str, claimed: dict[str, str]) -> str:
    """``target`` (relative to ``dest``, POSIX form) if it is free for ``src``, else
    ``<stem>~<8 hex digits of the SHA-1 of src's absolute path><suffix>``: the same name on every run.

    A name is free when no other source has it (in this run or, by the log, an earlier one) and
    no other file is there already (one placed from ``src`` by a run that was killed is ``src``'s).
    """
    def free(name: str) -> bool:
        owner = claimed.get(name)
        if owner is not None:
            return owner == str(src)
        return not os.path.lexists(dest / name) or _placed_from(dest / name, src, mode)

    if free(target.as_posix()):
        return target.as_posix()
    tag = hashlib.sha1(str(src.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return target.with_name(f"{target.stem}~{tag}{target.suffix}").as_posix()


def _placed_from(path: Path, src: Path, mode: str) -> bool:
    """Whether ``path`` is ``src``'s copy or link (left by a run killed before it logged it)."""
    import filecmp

    try:
        if mode == "symlink":
            return path.is_symlink() and path.resolve() == src.resolve()
        if mode == "hardlink":
            return path.samefile(src)
        return path.stat().st_size == src.stat().st_size and filecmp.cmp(path, src, shallow=False)
    except OSError:
        return False


def _clean(rel: Path) -> Path:
    """``rel`` with control characters (newlines, tabs) in its names replaced by ``_``."""
    return Path(*(_UNSAFE.sub("_", part) for part in rel.parts))


def _placing_error(err: OSError, target: Path, mode: str) -> str:
    if err.errno == errno.EXDEV:
        return (f"cannot {mode} it to {target}, which is on another file system "
                "(use --mode copy or --mode symlink); the files placed so far are kept")
    return f"cannot {mode} it to {target} ({err.strerror or err}); the files placed so far are kept"


def _safe(name: str) -> str:
    """A genre as a folder name: no path separators, no leading dots."""
    return name.replace("/", "-").replace("\\", "-").lstrip(".") or "unknown"


def _link_or_copy(src: Path, target: Path, mode: str) -> None:
    if mode == "copy":
        write_atomic(target, lambda tmp: shutil.copy2(src, tmp))
    elif mode == "hardlink":
        write_atomic(target, lambda tmp: os.link(src, tmp))
    else:
        write_atomic(target, lambda tmp: os.symlink(src.resolve(), tmp))


def _append_journal(dest: Path, placed: Placement) -> None:
    """One JSON line per file, on disk before the next file starts: what a killed run keeps."""
    with open(dest / JOURNAL, "a", encoding="utf-8") as f:
        f.write(json.dumps(placed.row()) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _write_log(dest: Path, placed: list[Placement]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(p.row() for p in placed)

    write_atomic(dest / "predictions.csv", write)


def write_playlists(dest: Path, placed: list[Placement]) -> list[Path]:
    """``dest/<folder>.m3u`` for each genre folder, paths relative to ``dest``, sorted."""
    by_folder: dict[str, list[str]] = {}
    for p in placed:
        if p.destination:
            by_folder.setdefault(p.destination.split("/", 1)[0], []).append(p.destination)
    written = []
    for folder, entries in sorted(by_folder.items()):
        written.append(write_text(dest / f"{folder}.m3u", "#EXTM3U\n" + "".join(f"{e}\n" for e in sorted(entries))))
    return written
