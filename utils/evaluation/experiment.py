"""Experiments: train a model on cached windows, judge it per window and per track, report, save.

What the notebooks, the ``train`` command and the cross-validation runs
call. One run: windows of the training, validation and test tracks from a
:class:`~utils.data.cache.Cache`; optional re-balancing of the training tracks;
:func:`utils.models.training.train`; window probabilities averaged per track; a
calibration temperature fitted on the validation tracks; metrics and figures
written by :func:`utils.evaluation.reports.write_report`; the model saved with its
card, ready for :mod:`utils.models.predict`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

import numpy as np
import pandas as pd

from utils.data.cache import Cache, Windows
from utils.models.calibration import apply_temperature, fit_temperature, log_probs
from utils.data.datasets import balance
from utils.data.splits import Split, cross_validate as run_splits, fold_splits
from utils.evaluation.metrics import classification_metrics
from utils.evaluation.reports import write_report
from utils.models.card import ModelCard, save_model

if TYPE_CHECKING:
    from utils.models.training import TrainConfig

BALANCING = ("none", "class_weight", "oversample", "undersample")


@dataclass(frozen=True)
class Outcome:
    """One run's results: metrics per window and per track (calibrated), the
    temperature, the saved model and how training went; ``validation_metrics``:
    the validation tracks' metrics before calibration, for choosing between runs
    without looking at the test tracks."""

    window_metrics: dict
    track_metrics: dict
    temperature: float
    model_path: Path
    training: dict
    validation_metrics: dict


def subset(windows: Windows, idx: np.ndarray) -> Windows:
    """The windows at positions ``idx``."""
    return Windows(windows.tracks, windows.track[idx], windows.shard[idx], windows.start[idx])


def run(cache: Cache, classes: list[str], split: Split, config: TrainConfig, run_dir: str | os.PathLike,
        *, balancing: str = "none", reports: str | os.PathLike | None = None, name: str = "model",
        data: dict | None = None, verbose: int = 0) -> Outcome:
    """Train ``config.model`` on the split's training tracks of ``classes`` and judge it on its test tracks.

    ``balancing``: ``"none"``; ``"class_weight"`` (loss weighted by inverse
    class frequency of the training windows); ``"oversample"`` /
    ``"undersample"`` (training tracks repeated / dropped per class, with
    all their windows, to equal counts). Resumes an interrupted run in
    ``run_dir``. Writes ``<reports>/<name>_windows_metrics.json``,
    ``<name>_tracks_metrics.json`` and their figures when ``reports`` is given,
    and saves ``<run_dir>/model.keras`` with its card.
    """
    # Keras only here: planning splits (notebooks 01 and 02) must not pay for importing it
    from utils.data.batches import WindowDataset
    from utils.models.architectures import predict_proba, track_probabilities
    from utils.models.training import balanced_class_weight, train

    if balancing not in BALANCING:
        raise ValueError(f"balancing must be one of {BALANCING}, got {balancing!r}")
    run_dir = Path(run_dir)
    sets = {s: cache.windows(labels=classes, track_ids=getattr(split, s)) for s in ("training", "validation", "test")}
    for s, w in sets.items():
        if not len(w):
            raise ValueError(f"no {s} windows of the classes {classes} in {cache.path}")
    train_w = sets["training"]
    if balancing in ("oversample", "undersample"):
        tracks = train_w.tracks
        chosen = balance(tracks.label.to_numpy(), balancing, seed=config.seed).indices
        train_w = subset(train_w, np.concatenate([np.flatnonzero(train_w.track == t) for t in chosen]))
    y_train = pd.Series(train_w.label).map({c: i for i, c in enumerate(classes)}).to_numpy()
    weights = balanced_class_weight(y_train, len(classes)) if balancing == "class_weight" else None
    config = dataclasses.replace(config, balance="class_weight" if weights else "none")
    result = train(config, WindowDataset(cache, train_w, classes, config.batch_size, seed=config.seed),
                   WindowDataset(cache, sets["validation"], classes, config.batch_size, shuffle=False),
                   len(classes), run_dir, class_weight=weights, verbose=verbose)

    def judged(w: Windows):
        p = predict_proba(result.model, WindowDataset(cache, w, None, config.batch_size, shuffle=False))
        ids, pt = track_probabilities(p, w.track_id, cache.audible(w))
        labels = w.tracks.set_index("track_id").label
        index = {c: i for i, c in enumerate(classes)}
        return (np.array([index[c] for c in w.label]), p,
                np.array([index[labels[t]] for t in ids]), pt)

    _, _, yv, pv = judged(sets["validation"])
    validation_metrics = classification_metrics(yv, pv, classes)
    temperature = fit_temperature(log_probs(pv), yv)
    yw, pw, yt, pt = judged(sets["test"])
    window_metrics = classification_metrics(yw, pw, classes)
    track_metrics = classification_metrics(yt, _calibrated(pt, temperature), classes)
    if reports is not None:
        write_report(reports, f"{name}_windows", yw, pw, classes)
        write_report(reports, f"{name}_tracks", yt, pt, classes, temperature=temperature,
                     history_csv=run_dir / "log.csv")
    card = ModelCard(tuple(classes), cache.fe, config.model, result.summary(),
                     data={**(data or {}), "cache": str(cache.path), "balancing": balancing,
                           "tracks": {s: len(getattr(split, s)) for s in ("training", "validation", "test")}},
                     metrics={"test_windows": _headline(window_metrics), "test_tracks": _headline(track_metrics)},
                     temperature=temperature)
    model_path = run_dir / "model.keras"
    save_model(result.model, model_path, card)
    return Outcome(window_metrics, track_metrics, temperature, model_path, result.summary(),
                   _headline(validation_metrics))


def _calibrated(p: np.ndarray, temperature: float) -> np.ndarray:
    return apply_temperature(log_probs(p), temperature)


def _headline(metrics: dict) -> dict:
    """The scalar metrics of :func:`utils.evaluation.metrics.classification_metrics`, for a card."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}


def cross_validate(cache: Cache, classes: list[str], folds: np.ndarray, track_ids: np.ndarray,
                   config: TrainConfig, run_root: str | os.PathLike, *, balancing: str = "none",
                   name: str = "cv") -> pd.DataFrame:
    """Run :func:`run` on each fold of ``folds`` (fold per track, aligned with ``track_ids``).

    Returns one row per fold: track-level accuracy, balanced accuracy, macro-F1
    and log loss, window-level accuracy, the temperature, and the validation
    tracks' accuracy and log loss (before calibration: what selection may use). Each fold's run lives in
    ``<run_root>/<name>-fold<k>`` and resumes if interrupted.
    """
    splits = fold_splits(track_ids, folds)

    def evaluate(split: Split) -> dict:
        k = splits.index(split)
        out = run(cache, classes, split, config, Path(run_root) / f"{name}-fold{k}", balancing=balancing)
        t = out.track_metrics
        return {"accuracy": t["accuracy"], "balanced_accuracy": t["balanced_accuracy"], "macro_f1": t["macro_f1"],
                "log_loss": t["log_loss"], "window_accuracy": out.window_metrics["accuracy"],
                "temperature": out.temperature, "val_accuracy": out.validation_metrics["accuracy"],
                "val_log_loss": out.validation_metrics["log_loss"]}

    return run_splits(splits, evaluate)
