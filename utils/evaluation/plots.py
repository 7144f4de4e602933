"""Figures of a classifier's results: confusion matrix, per-class F1, reliability, learning curves,
accuracy per listening condition.

Figures are built on :class:`matplotlib.figure.Figure` without pyplot, so no
backend or global state is touched and they render headless (Agg) into PNG;
:func:`save_figure` writes them atomically.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from utils.atomic import write_atomic
from utils.evaluation.metrics import normalize_rows
from utils.models.calibration import ReliabilityCurve


def plot_confusion_matrix(counts: np.ndarray, class_names: Sequence[str], normalized: bool = False,
                          title: str = "") -> Figure:
    """Annotated heatmap of a confusion matrix (counts, or rows normalised to 1)."""
    counts = np.asarray(counts)
    values = normalize_rows(counts) if normalized else counts
    size = 2.5 + 0.55 * len(class_names)
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.add_subplot()
    sns.heatmap(values, annot=True, fmt=".2f" if normalized else "d", cmap="Blues", square=True,
                vmin=0, vmax=1 if normalized else None, xticklabels=class_names,
                yticklabels=class_names, cbar_kws={"label": "fraction of true class" if normalized
                                                   else "count"}, ax=ax)
    ax.set(xlabel="predicted", ylabel="true",
           title=title or ("Confusion matrix (row-normalised)" if normalized else "Confusion matrix"))
    return fig


def plot_per_class_f1(metrics: Mapping, title: str = "") -> Figure:
    """Bar chart of each class's F1 (from :func:`classification_metrics`), macro-F1 as a line."""
    per_class = metrics["per_class"]
    frame = pd.DataFrame({"class": list(per_class), "F1": [v["f1"] for v in per_class.values()]})
    fig = Figure(figsize=(2.5 + 0.5 * len(frame), 4), layout="constrained")
    ax = fig.add_subplot()
    sns.barplot(frame, x="class", y="F1", color="steelblue", ax=ax)
    ax.axhline(metrics["macro_f1"], color="darkred", ls="--", label=f"macro-F1 {metrics['macro_f1']:.3f}")
    ax.set(ylim=(0, 1), xlabel="", title=title or "Per-class F1")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="lower right")
    return fig


def plot_reliability(curves: Mapping[str, ReliabilityCurve], title: str = "") -> Figure:
    """Reliability diagram: accuracy against confidence per bin, one line per curve, ECE in the legend."""
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration")
    for label, curve in curves.items():
        filled = curve.count > 0
        ax.plot(curve.confidence[filled], curve.accuracy[filled], marker="o",
                label=f"{label} (ECE {curve.ece:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-class probability)",
           ylabel="accuracy", title=title or "Reliability diagram")
    ax.legend(loc="upper left")
    return fig


def plot_learning_curves(csv_path: str | os.PathLike, title: str = "") -> Figure:
    """One panel per metric of a Keras ``CSVLogger`` file: training and ``val_`` value per epoch."""
    history = read_history(csv_path)
    names = [c for c in history.columns if c != "epoch" and not c.startswith("val_")
             and c not in ("lr", "learning_rate")]
    fig = Figure(figsize=(4.5 * len(names), 3.8), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        ax.plot(history["epoch"], history[name], marker=".", label="training")
        if f"val_{name}" in history:
            ax.plot(history["epoch"], history[f"val_{name}"], marker=".", label="validation")
        ax.set(xlabel="epoch", title=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def read_history(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read a Keras ``CSVLogger`` file; raises ValueError naming the file if it is unusable."""
    try:
        history = pd.read_csv(csv_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{csv_path}: cannot read training log ({err})") from err
    if "epoch" not in history or history.empty or len(history.columns) < 2:
        raise ValueError(f"{csv_path}: not a training log (needs an 'epoch' column, "
                         f"a metric column and at least one row)")
    return history


def plot_condition_accuracy(accuracy: Mapping[str, Mapping[str, float]], trained: Sequence[str] = (),
                            title: str = "") -> Figure:
    """Grouped horizontal bars: ``accuracy[model][condition]`` (0 to 1) for each condition of the first model,
    one colour per model; a condition in ``trained`` is labelled so, the others were never trained on."""
    conditions = list(next(iter(accuracy.values())))
    frame = pd.DataFrame([{"condition": c + (" (trained)" if c in trained else ""), "model": m, "accuracy": a[c]}
                          for m, a in accuracy.items() for c in conditions if c in a])
    fig = Figure(figsize=(8, 2 + 0.42 * len(conditions)), layout="constrained")
    ax = fig.add_subplot()
    sns.barplot(frame, y="condition", x="accuracy", hue="model", orient="h", ax=ax)
    ax.set(xlim=(0, 1), ylabel="", xlabel="accuracy", title=title or "Accuracy per condition")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), fontsize="small", frameon=False)
    return fig


def plot_learning_curve(curve: Sequence[Mapping], recipe: str = "") -> Figure:
    """Accuracy (mean ± std over test folds) against the mean number of training artists per genre,
    from :func:`utils.evaluation.robustness.curve_summary` rows; each point is labelled with its artist count."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = [r["mean_artists_per_genre"] for r in curve]
    m = np.array([r["accuracy_mean"] for r in curve])
    s = np.array([r["accuracy_std"] for r in curve])
    ax.errorbar(x, m, yerr=s, marker="o", capsize=4)
    for xi, mi, r in zip(x, m, curve):
        ax.annotate(f"{r['artists_per_genre']}: {100 * mi:.0f} %", (xi, mi), textcoords="offset points",
                    xytext=(6, -12), fontsize="small")
    ax.set(ylim=(0, 1), xlabel="training artists per genre (mean over genres and folds)",
           ylabel="accuracy, artists never heard",
           title="More artists per genre, better genres" + (f"\n{recipe}" if recipe else ""))
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
