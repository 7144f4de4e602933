"""Honest metrics, figures and report files for a classifier's probabilities.

Everything starts from integer labels ``y_true (N,)`` and probabilities
``(N, C)`` (or a binary model's positive-class probability ``(N,)``), at
whatever level the caller aggregated them (windows or tracks). Figures are
built on :class:`matplotlib.figure.Figure` without pyplot, so no backend or
global state is touched and they render headless (Agg) into PNG. Every file
is written atomically (temporary file in the same folder, then ``os.replace``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import f1_score, precision_recall_fscore_support

from utils.atomic import write_atomic
from utils.models.calibration import (N_BINS, ReliabilityCurve, apply_temperature, as_2d, calibration_summary,
                          check_labels, expected_calibration_error, log_loss, log_probs,
                          reliability_curve)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str],
                           n_bins: int = N_BINS) -> dict:
    """All metrics of one set of predictions, as a JSON-ready dict.

    Keys: ``n_samples``, ``class_names``, ``accuracy``, ``balanced_accuracy``
    (mean recall over the classes present in ``y_true``), ``macro_f1`` (over
    the classes present in ``y_true`` or predicted, scikit-learn's default),
    ``log_loss`` (nats), ``top_2_accuracy`` (None for 2 classes, where it is
    always 1), ``ece`` (``n_bins`` equal-width bins), ``per_class``
    (name -> precision, recall, f1, support), ``confusion_matrix`` (counts,
    rows = true class) and ``confusion_matrix_normalized`` (each row divided
    by its support; a row without samples is all zeros).
    """
    p = as_2d(probs)
    names = list(class_names)
    if len(names) != p.shape[1]:
        raise ValueError(f"{len(names)} class names for {p.shape[1]} probability columns")
    y = check_labels(y_true, p.shape)
    y_pred = p.argmax(axis=1)
    counts = confusion_counts(y, y_pred, len(names))
    support = counts.sum(axis=1)
    recall = np.divide(np.diag(counts), support, out=np.zeros(len(names)), where=support > 0)
    precision, _, f1, _ = precision_recall_fscore_support(y, y_pred, labels=range(len(names)),
                                                          zero_division=0)
    return {
        "n_samples": int(len(y)),
        "class_names": names,
        "accuracy": float(np.mean(y_pred == y)),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1_score(y, y_pred, average="macro", zero_division=0)),
        "log_loss": log_loss(y, p),
        "top_2_accuracy": top_k_accuracy(y, p, 2) if len(names) > 2 else None,
        "ece": expected_calibration_error(y, p, n_bins),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(names)},
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalized": normalize_rows(counts).tolist(),
    }


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` most probable."""
    p = as_2d(probs)
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(y_true)[:, None], axis=1)))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix ``(C, C)`` of counts; rows are true classes, columns predictions."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def normalize_rows(counts: np.ndarray) -> np.ndarray:
    """Divide each row by its sum (recall on the diagonal); empty rows stay zero."""
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


# --- figures ---------------------------------------------------------------------------------

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


# --- files -----------------------------------------------------------------------------------

def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (NumPy scalars and arrays allowed)."""
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def _to_builtin(value: object) -> object:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


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


# --- results table ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """A published result (not ours), with the data it was measured on."""

    model: str
    dataset: str
    metric: str  # "accuracy" (fraction) or "log_loss" (nats)
    value: float
    source: str


# As cited in issue 5; quoted for comparison only, measured by their authors on their data.
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
