"""Honest metrics of a classifier's probabilities.

Everything starts from integer labels ``y_true (N,)`` and probabilities
``(N, C)`` (or a binary model's positive-class probability ``(N,)``), at
whatever level the caller aggregated them (windows or tracks): accuracy,
balanced accuracy, macro-F1, top-k, log loss, calibration (ECE) and the
confusion counts.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from utils.models.calibration import N_BINS, as_2d, check_labels, expected_calibration_error, log_loss


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
