"""Report files: a run's metrics JSON with its figures, and results tables beside published figures.

:func:`write_report` writes ``<name>_metrics.json`` and the figures of one
set of predictions; :func:`results_table` sets our results beside the
published FMA figures (:data:`PUBLISHED`) and renders them as Markdown.
Every file is written atomically.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils.atomic import write_atomic, write_json
from utils.evaluation.metrics import classification_metrics
from utils.evaluation.plots import (plot_confusion_matrix, plot_learning_curves, plot_per_class_f1, plot_reliability,
                                    save_figure)
from utils.models.calibration import apply_temperature, calibration_summary, log_probs, reliability_curve


def write_report(reports_dir: str | os.PathLike, name: str, y_true: np.ndarray, probs: np.ndarray,
                 class_names: Sequence[str], temperature: float | None = None,
                 history_csv: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write the metrics JSON and figures of one evaluation; return the paths by kind.

    Files: ``<reports_dir>/<name>_metrics.json`` and
    ``<reports_dir>/figures/<name>_{confusion,confusion_normalized,per_class_f1,reliability}.png``,
    plus ``<name>_learning_curves.png`` when ``history_csv`` is given. ``probs``
    are the model's uncalibrated probabilities; with a ``temperature`` fitted
    on validation (:func:`utils.models.calibration.fit_temperature`) the JSON gains a
    ``calibration`` block (log loss and ECE before and after) and the
    reliability diagram shows both.
    """
    reports, figures = Path(reports_dir), Path(reports_dir) / "figures"
    metrics = classification_metrics(y_true, probs, class_names)
    curves = {"uncalibrated": reliability_curve(y_true, probs)}
    if temperature is not None:
        scores = log_probs(probs)
        metrics["calibration"] = calibration_summary(y_true, scores, temperature)
        curves[f"T = {temperature:.2f}"] = reliability_curve(y_true, apply_temperature(scores, temperature))
    counts = np.asarray(metrics["confusion_matrix"])
    figs = {"confusion": plot_confusion_matrix(counts, class_names, False, f"{name}: confusion matrix"),
            "confusion_normalized": plot_confusion_matrix(counts, class_names, True,
                                                          f"{name}: confusion matrix (recall)"),
            "per_class_f1": plot_per_class_f1(metrics, f"{name}: per-class F1"),
            "reliability": plot_reliability(curves, f"{name}: reliability")}
    if history_csv is not None:
        figs["learning_curves"] = plot_learning_curves(history_csv, f"{name}: learning curves")
    # everything is computed before the first write, so a bad input leaves no partial report
    paths = {"metrics": write_json(reports / f"{name}_metrics.json", metrics)}
    for kind, fig in figs.items():
        paths[kind] = save_figure(fig, figures / f"{name}_{kind}.png")
    return paths


@dataclass(frozen=True)
class Reference:
    """A published result (not ours), with the data it was measured on."""

    model: str
    dataset: str
    metric: str  # "accuracy" (fraction) or "log_loss" (nats)
    value: float
    source: str


PUBLISHED = (
    Reference("SVM (RBF) on all hand-crafted features", "fma_medium official test, 16 genres",
              "accuracy", 0.634, "Defferrard et al., FMA, ISMIR 2017 (best baseline)"),
    Reference("challenge winner (CNN ensemble)", "WWW 2018 challenge test set, 16 FMA top genres",
              "log_loss", 1.31, "WWW 2018 challenge, Learning to Recognize Musical Genre"),
    Reference("CNN-RNN tutorial (CRNN / parallel CNN-RNN)", "fma_small, 8 genres", "accuracy", 0.53,
              "CNN-RNN genre tutorial on fma_small (about 53 %)"),
)


RESULT_COLUMNS = ("source", "model", "dataset", "split", "accuracy", "macro_f1", "log_loss")


def results_table(ours: Iterable[Mapping], published: Iterable[Reference] = PUBLISHED) -> pd.DataFrame:
    """Our results and published ones side by side, as formatted strings.

    Each of ``ours`` has ``model``, ``dataset``, ``split`` and any of
    ``accuracy``, ``macro_f1`` (fractions) and ``log_loss`` (nats), each a
    number or a ``(mean, std)`` pair. Accuracy and macro-F1 print in %.
    Published rows say ``published: <source>`` and carry only the metric
    their authors reported.
    """
    rows = [{"source": "ours", "model": r["model"], "dataset": r["dataset"], "split": r["split"],
             **{m: _cell(r.get(m), m) for m in RESULT_COLUMNS[4:]}} for r in ours]
    for ref in published:
        cells = {m: "" for m in RESULT_COLUMNS[4:]} | {ref.metric: _cell(ref.value, ref.metric)}
        rows.append({"source": f"published: {ref.source}", "model": ref.model, "dataset": ref.dataset,
                     "split": "their test set", **cells})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _cell(value: float | tuple[float, float] | None, metric: str) -> str:
    if value is None:
        return ""
    scale, unit = (1, "") if metric == "log_loss" else (100, " %")
    digits = 3 if metric == "log_loss" else 1
    if isinstance(value, tuple):
        return f"{value[0] * scale:.{digits}f} ± {value[1] * scale:.{digits}f}{unit}"
    return f"{value * scale:.{digits}f}{unit}"


def to_markdown(table: pd.DataFrame) -> str:
    """A pipe table of ``table``'s string cells (no extra dependency)."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_results_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``table`` as Markdown to ``path`` atomically (e.g. ``reports/results.md``)."""
    text = to_markdown(table)
    return write_atomic(path, lambda tmp: tmp.write_text(text))
