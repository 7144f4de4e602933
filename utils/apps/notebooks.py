"""What the five notebooks share: their set-up cell.

Each notebook starts with one call, before it imports anything that may
import Keras::

    from utils.apps.notebooks import open_run

    layout = open_run(out_dir, keras_backend, cache_dir)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from utils.apps.pipeline import RunLayout
from utils.models import backend

INLINE_DPI = 72  # figures drawn inline; the PNG files under reports/figures keep their own dpi


def open_run(out_dir: str | os.PathLike, keras_backend: str = "tensorflow",
             cache_dir: str | os.PathLike | None = None) -> RunLayout:
    """Set up a notebook of the pipeline; returns the run folder's :class:`RunLayout`.

    Selects the Keras backend first (a process has one, fixed when Keras is
    first imported: call this before importing anything that imports Keras),
    draws matplotlib figures inline at :data:`INLINE_DPI`, creates
    ``<out_dir>/reports/figures`` and prints which Python runs the notebook and
    where the run writes.
    """
    backend.use(keras_backend)
    import matplotlib
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    matplotlib.rcParams["figure.dpi"] = INLINE_DPI
    layout = RunLayout(Path(out_dir), Path(cache_dir) if cache_dir else None)
    layout.figures.mkdir(parents=True, exist_ok=True)
    print(f"Python: {sys.executable}, Keras backend: {keras_backend}\n"
          f"run: {layout.root.resolve()}\ncache: {layout.cache.resolve()}")
    return layout
