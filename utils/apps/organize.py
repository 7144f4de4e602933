"""Organise a music library by genre: copies or links under ``DEST/<genre>/``, playlists, a CSV.

The user's originals are never moved, changed or deleted: files are copied
(or hard/soft-linked) into the destination, and genre tags, when asked for,
are written into the copies only. Every file appears in the destination
whole or not at all (copied to a temporary name, then renamed). A run
records each result in ``DEST/predictions.csv`` as it goes, so running the
same command again, after an interruption or on a grown library, classifies
only what is new or changed.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from utils import audio
from utils.atomic import write_atomic, write_text
from utils.models.predict import Predictor, TrackPrediction

MODES = ("copy", "hardlink", "symlink")
UNCERTAIN = "_uncertain"  # folder for tracks whose top probability is below the threshold
COLUMNS = ("source", "size", "mtime_ns", "genre", "probability", "top3", "destination", "error")


@dataclass(frozen=True)
class OrganizeConfig:
    """How to organise: ``mode`` (copy, hardlink or symlink), ``min_probability`` (below it a
    track goes to ``_uncertain/``), ``write_tags`` (genre tag in the copies), ``dry_run``."""

    mode: str = "copy"
    min_probability: float = 0.0
    write_tags: bool = False
    dry_run: bool = False

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
    """Rows of an earlier run's ``predictions.csv``, by source path (empty if none)."""
    log = dest / "predictions.csv"
    if not log.is_file():
        return {}
    with open(log, newline="") as f:
        return {row["source"]: row for row in csv.DictReader(f)}


def organize(predictor: Predictor, paths: Iterable[str | os.PathLike], dest: str | os.PathLike,
             config: OrganizeConfig = OrganizeConfig(), jobs: int = 1) -> Iterator[Placement]:
    """Classify the audio files under ``paths`` and place them under ``dest`` by genre.

    Yields one :class:`Placement` per file as it is done (those already
    placed by an earlier run with the same size and modification time are
    yielded from the log, not classified again). Writes ``dest/predictions.csv``
    (all files, with errors) and ``dest/<genre>.m3u`` playlists at the end,
    and the log also every 25 files so an interrupted run loses little.
    With ``config.dry_run`` nothing is written.
    """
    dest = Path(dest)
    if not config.dry_run:
        dest.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.is_dir() and dest.resolve().is_relative_to(p.resolve()):
            raise ValueError(f"{dest}: the destination must not be inside {p}, the music being organised")
    earlier = read_log(dest)
    found = sources(paths)
    done: list[Placement] = []
    todo: list[tuple[Path, Path]] = []
    for src, rel in found:
        st = src.stat()
        row = earlier.get(str(src))
        if row and int(row["size"]) == st.st_size and int(row["mtime_ns"]) == st.st_mtime_ns and (
                row["error"] or (dest / row["destination"]).exists()):
            placed = Placement(src, st.st_size, st.st_mtime_ns, row["genre"], float(row["probability"] or "nan"),
                               row["top3"], row["destination"], row["error"])
            done.append(placed)
            yield placed
        else:
            todo.append((src, rel))
    relative = dict(todo)
    for src, result in predictor.predict_files([s for s, _ in todo], jobs=jobs):
        st = src.stat()
        if isinstance(result, audio.AudioError):
            placed = Placement(src, st.st_size, st.st_mtime_ns, error=result.problem)
        else:
            placed = _place(src, relative[src], result, dest, config, st)
        done.append(placed)
        yield placed
        if not config.dry_run and len(done) % 25 == 0:
            _write_log(dest, done)
    if not config.dry_run:
        _write_log(dest, done)
        write_playlists(dest, done)


def _place(src: Path, rel: Path, result: TrackPrediction, dest: Path, config: OrganizeConfig,
           st: os.stat_result) -> Placement:
    genre, p = result.genre, float(result.probabilities.max())
    folder = genre if p >= config.min_probability else UNCERTAIN
    target = Path(_safe(folder)) / rel
    top3 = "; ".join(f"{g} {q:.2f}" for g, q in result.top(3))
    placed = Placement(src, st.st_size, st.st_mtime_ns, genre, p, top3, target.as_posix())
    if not config.dry_run:
        _link_or_copy(src, dest / target, config.mode)
        if config.write_tags:
            try:
                write_genre_tag(dest / target, genre)
            except audio.AudioError as err:
                return dataclasses.replace(placed, error=f"copied, but {err.problem}")
    return placed


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


def write_genre_tag(path: Path, genre: str) -> None:
    """Write ``genre`` into the file's genre tag (ID3 TCON, Vorbis/FLAC GENRE, MP4 ©gen)."""
    import mutagen

    try:
        tagged = mutagen.File(path, easy=True)
        if tagged is None:
            raise mutagen.MutagenError("no tag format known for this kind of file")
        if tagged.tags is None:
            tagged.add_tags()
        tagged["genre"] = genre
        tagged.save()
    except (mutagen.MutagenError, KeyError, TypeError, ValueError) as err:
        raise audio.AudioDecodeError(path, f"cannot write a genre tag: {err}") from None


def _write_log(dest: Path, placed: list[Placement]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
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
