"""Probability calibration: temperature scaling and expected calibration error.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
ICML 2017) divides a model's logits by one scalar ``T > 0`` fitted on the
validation set by minimising the negative log-likelihood; ``T > 1`` softens
over-confident predictions. It never changes the arg-max, so accuracy and
macro-F1 stay the same while log loss and calibration error improve.

Scores may be logits or log-probabilities, shape ``(N, C)``: softmax is
invariant to a constant added to a row, so ``log(softmax(z)) / T`` and
``z / T`` give the same result. A binary sigmoid model's scores are 1-D
(``N,``) or, as a Keras sigmoid unit gives them, ``(N, 1)``: a sigmoid logit
``z`` is the 2-class logit pair ``(0, z)``, and a probability ``p`` of the
positive class is the pair ``(1 - p, p)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BINS = 15  # Guo et al. (2017): 15 equal-width confidence bins
# Probabilities are clipped to [EPS, 1] before the log; -ln(1e-15) = 34.5 bounds one sample's loss.
EPS = 1e-15
_LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))  # search T in [0.01, 100]


@dataclass(frozen=True)
class ReliabilityCurve:
    """Reliability-diagram data over equal-width confidence bins on [0, 1].

    Attributes
    ----------
    edges : bin edges, shape ``(n_bins + 1,)``
    confidence : mean top-class probability of the samples in each bin (NaN where empty)
    accuracy : fraction of those samples predicted correctly (NaN where empty)
    count : number of samples in each bin
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of ``count / N * |accuracy - confidence|``."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.count[filled] * gaps) / self.count.sum())


def as_2d(probs: np.ndarray) -> np.ndarray:
    """Probabilities as ``(N, C)``: a positive-class probability ``p``, shape ``(N,)`` or a
    sigmoid unit's ``(N, 1)``, becomes ``(1 - p, p)``."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (N,) or (N, C), got {p.shape}")
    if not (np.all(np.isfinite(p)) and np.all(p >= -1e-6) and np.all(p <= 1 + 1e-6)):
        raise ValueError("probabilities must be finite and in [0, 1]")
    worst = np.max(np.abs(p.sum(axis=1) - 1.0), initial=0.0)
    if worst > 1e-3:  # float32 softmax rows sum to 1 within ~1e-6
        raise ValueError(f"probability rows must sum to 1, one is off by {worst:.3g}")
    return p


def log_probs(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities ``(N, C)`` from probabilities ``(N, C)`` or ``(N,)``, clipped at :data:`EPS`."""
    return np.log(np.clip(as_2d(probs), EPS, 1.0))


def _scores_2d(scores: np.ndarray) -> np.ndarray:
    z = np.asarray(scores, dtype=np.float64)
    if z.ndim == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if z.ndim == 1:  # sigmoid logit z == softmax over (0, z)
        return np.stack([np.zeros_like(z), z], axis=1)
    if z.ndim != 2:
        raise ValueError(f"scores must have shape (N,) or (N, C), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("scores contain NaN or infinity")
    return z


def _nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    return float(-np.mean(log_softmax(z / temperature)[np.arange(len(y)), y]))


def fit_temperature(scores: np.ndarray, y_true: np.ndarray) -> float:
    """Fit the temperature ``T > 0`` that minimises the mean negative log-likelihood.

    Parameters
    ----------
    scores : validation logits or log-probabilities, ``(N, C)``, or sigmoid logits ``(N,)``
    y_true : integer class of each sample, ``(N,)``

    Returns
    -------
    T in [0.01, 100]. The NLL is convex in ``1 / T``, hence unimodal in
    ``log T``, where a bounded Brent search finds its minimum. When every
    sample is already classified right the NLL keeps falling as ``T -> 0``:
    no finite temperature is best, the data say nothing about calibration,
    and 1.0 (no change) is returned.
    """
    z = _scores_2d(scores)
    y = check_labels(y_true, z.shape)
    if np.all(z.argmax(axis=1) == y):
        return 1.0
    from scipy.optimize import minimize_scalar  # only fitting needs it: prediction starts faster

    result = minimize_scalar(lambda log_t: _nll(z, y, np.exp(log_t)), bounds=_LOG_T_BOUNDS,
                             method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``log(softmax(z))`` along the last axis, stable for large scores (as ``scipy.special.log_softmax``)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(scores / T)``.

    ``(N, C)`` scores give ``(N, C)`` probabilities; sigmoid logits, ``(N,)``
    or ``(N, 1)``, give the positive-class probability ``sigmoid(z / T)`` in
    the same shape.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    probs = np.exp(log_softmax(_scores_2d(scores) / temperature))
    binary = np.ndim(scores) == 1 or np.shape(scores)[1] == 1
    return probs[:, 1].reshape(np.shape(scores)) if binary else probs


def reliability_curve(y_true: np.ndarray, probs: np.ndarray, n_bins: int = N_BINS) -> ReliabilityCurve:
    """Bin samples by their top-class probability into ``n_bins`` equal-width bins on [0, 1].

    A sample with confidence ``c`` falls in bin ``min(floor(c * n_bins), n_bins - 1)``:
    bins are ``[k / n, (k + 1) / n)`` and the last one is closed.
    """
    p = as_2d(probs)
    y = check_labels(y_true, p.shape)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        mean_acc = np.bincount(bins, weights=correct, minlength=n_bins) / count
    return ReliabilityCurve(np.linspace(0.0, 1.0, n_bins + 1), mean_conf, mean_acc, count)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error (top-class, equal-width bins; see :func:`reliability_curve`).

    ``ECE = sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|``, in [0, 1].
    """
    return reliability_curve(y_true, probs, n_bins).ece


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood in nats; probabilities clipped to [:data:`EPS`, 1]."""
    p = as_2d(probs)
    y = check_labels(y_true, p.shape)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))))


def calibration_summary(y_true: np.ndarray, scores: np.ndarray, temperature: float,
                        n_bins: int = N_BINS) -> dict[str, float]:
    """Log loss (nats) and ECE of ``scores`` before and after temperature scaling.

    "Before" is ``softmax(scores)`` (T = 1). Fit the temperature on the
    validation set and summarise on the test set.
    """
    before = apply_temperature(scores, 1.0)
    after = apply_temperature(scores, temperature)
    return {"temperature": float(temperature), "n_bins": n_bins,
            "log_loss_before": log_loss(y_true, before), "log_loss_after": log_loss(y_true, after),
            "ece_before": expected_calibration_error(y_true, before, n_bins),
            "ece_after": expected_calibration_error(y_true, after, n_bins)}


def check_labels(y_true: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``y_true`` as an integer array, checked against probabilities or scores of ``shape`` (N, C)."""
    y = np.asarray(y_true)
    if shape[0] == 0:
        raise ValueError("no samples")
    if y.shape != (shape[0],):
        raise ValueError(f"y_true has shape {y.shape}, expected ({shape[0]},) to match {shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= shape[1]):
        raise ValueError(f"y_true values must lie in [0, {shape[1] - 1}], got [{y.min()}, {y.max()}]")
    return y
