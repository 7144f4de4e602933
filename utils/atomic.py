"""Atomic file writes: a reader sees the old file or the complete new one, never a partial write.

Every file the project writes goes through :func:`write_atomic`: the content
is written to a uniquely named temporary file in the target's folder (so
parallel writers, e.g. Dask workers, never share one), then renamed over
the target with ``os.replace``, which is atomic on POSIX file systems.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from utils.errors import FmaGenreError


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Create ``path``'s folder, call ``write(tmp)`` on a sibling temporary file, rename it to ``path``.

    If ``write`` fails, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # failing to clean up (read-only) must not hide why the write failed
            tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`~utils.errors.FmaGenreError` (one line, the system's reason) unless a file can
    be written at ``path`` (made by :func:`write_atomic`), before the work that would fill it is done."""
    path = Path(path)
    if path.is_dir():
        raise FmaGenreError(path, "is a folder: give a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise FmaGenreError(folder, f"cannot write there ({err.strerror or err})") from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_npy(path: str | os.PathLike, array) -> Path:
    """Save a NumPy array in ``.npy`` format to ``path`` atomically (whatever its suffix)."""
    import numpy as np

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append .npy to a bare name
            np.save(f, array)

    return write_atomic(path, save)


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (NumPy scalars and arrays allowed)."""
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def _to_builtin(value: object) -> object:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
