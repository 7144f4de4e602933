"""What the five notebooks share: their set-up cell, and the executed copies a reader opens on the web.

Each notebook starts with one call, before it imports anything that may
import Keras::

    from utils.apps.notebooks import open_run

    layout = open_run(out_dir, keras_backend)

:func:`publish` turns the executed notebooks of a pipeline run into the copies
committed under ``notebooks/executed/`` (``make notebooks``): outputs kept,
figures shrunk, audio players left out, paths made relative to the repository.
"""
from __future__ import annotations

import base64
import io
import os
import re
import sys
from pathlib import Path

from utils.apps.pipeline import NOTEBOOKS, REPO, REPORTS, PipelineError, RunLayout
from utils.atomic import write_text
from utils.data.datasets import SHARED_DATA
from utils.models import backend

INLINE_DPI = 72  # figures drawn inline; the PNG files under reports/figures keep their own dpi
AUDIO_STUB = "[audio player left out of this copy: run the notebook to listen]"


def open_run(out_dir: str | os.PathLike, keras_backend: str = "tensorflow") -> RunLayout:
    """Set up a notebook of the pipeline; returns the run folder's :class:`RunLayout`.

    Selects the Keras backend first (a process has one, fixed when Keras is
    first imported: call this before importing anything that imports Keras),
    draws matplotlib figures inline at :data:`INLINE_DPI`, creates
    ``<out_dir>/reports/figures`` and prints which Python runs the notebook and
    where the run writes. TensorFlow's native start-up lines (absl, oneDNN, the GPU probe) are
    kept out of the notebook's output, as the CLI keeps them off the terminal
    (:func:`utils.apps.cli.quiet.drop_native_logs_for_good`).
    """
    from utils.apps.cli.quiet import drop_native_logs_for_good

    drop_native_logs_for_good()
    backend.use(keras_backend)
    import matplotlib
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    matplotlib.rcParams["figure.dpi"] = INLINE_DPI
    layout = RunLayout(Path(out_dir))
    layout.figures.mkdir(parents=True, exist_ok=True)
    print(f"Python: {sys.executable}, Keras backend: {keras_backend}\n"
          f"run: {layout.root.resolve()}")
    return layout


def read_report(layout: RunLayout, name: str) -> dict:
    """The JSON report ``name`` an earlier notebook wrote into the run; :class:`FileNotFoundError` naming that
    notebook (:data:`utils.apps.pipeline.REPORTS`) when it has not run."""
    import json

    path = layout.reports / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run notebooks/{REPORTS[name]}.ipynb into {layout.root} first")
    return json.loads(path.read_text())


def shrink_png(data: str, max_width: int = 800) -> str:
    """A base64 PNG at most ``max_width`` px wide with a 256-colour palette (plots and spectrograms survive it)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def rebase_links(markdown: str, home: Path, dest: Path) -> str:
    """``markdown`` with its relative links, written for a file in ``home``, rewritten for one in ``dest``.

    Examples
    --------
    >>> rebase_links("[a](../docs/x.md#y)", Path("/r/notebooks"), Path("/r/notebooks/executed"))
    '[a](../../docs/x.md#y)'
    """
    def rebase(m: re.Match) -> str:
        target = os.path.relpath((home / m[1]).resolve(), dest.resolve())
        return f"]({Path(target).as_posix()}{m[2] or ''})"

    return re.sub(r"\]\((?![a-z]+:|#|/)([^)#\s]+)(#[^)\s]*)?\)", rebase, markdown)


def publish(run: str | os.PathLike, dest: str | os.PathLike, max_width: int = 800) -> list[Path]:
    """Copy the executed notebooks of the run folder ``run`` to ``dest``, made fit to commit.

    Figures are shrunk (:func:`shrink_png`), audio players are replaced by
    :data:`AUDIO_STUB`, relative links in markdown are rebased so they still
    lead to the same file from a ``dest`` inside the checkout
    (:func:`rebase_links`), and the absolute paths of this checkout, of the
    shared data beside it and of the Python environment become relative
    (``data/sample/...``, ``runs/NAME/...`` for a run inside the checkout,
    ``../shared/data/...``, ``.venv/...``). Raises :class:`PipelineError`
    naming a notebook the run has not executed.
    """
    import nbformat

    run = Path(run).resolve()
    replace = sorted({f"{REPO}/": "", f"{sys.prefix}/": ".venv/", str(REPO): ".",
                      f"{SHARED_DATA.resolve()}/": "../shared/data/"}.items(),
                     key=lambda kv: -len(kv[0]))
    written, inside = [], Path(dest).resolve().is_relative_to(REPO)
    for name in NOTEBOOKS:
        source = run / "notebooks" / f"{name}.ipynb"
        if not source.is_file():
            raise PipelineError(f"{source}: not executed; run `fma-genre pipeline --out {run}` first")
        text = source.read_text()
        for old, new in replace:
            text = text.replace(old, new)
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown" and inside:
                cell.source = rebase_links(cell.source, REPO / "notebooks", Path(dest))
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "<audio" in data.get("text/html", ""):
                    output["data"] = {"text/plain": AUDIO_STUB}
                elif "image/png" in data:
                    data["image/png"] = shrink_png(data["image/png"], max_width)
        written.append(write_text(Path(dest) / f"{name}.ipynb", nbformat.writes(nb) + "\n"))
    return written


if __name__ == "__main__":  # make notebooks: python -m utils.apps.notebooks RUN DEST
    import argparse

    parser = argparse.ArgumentParser(description="Copy a pipeline run's executed notebooks, fit to commit.")
    parser.add_argument("run", type=Path, help="the run folder (runs/NAME)")
    parser.add_argument("dest", type=Path, help="where the copies go (notebooks/executed)")
    args = parser.parse_args()
    try:
        for path in publish(args.run, args.dest):
            print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")
    except PipelineError as err:
        sys.exit(f"fma-genre: {err}")
