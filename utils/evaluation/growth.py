"""From binary to multiclass: the comparisons and genre-growth experiment of notebooks 03-05.

Every experiment restricts the run's one split plan
(:class:`utils.data.splits.SplitPlan`, written by notebook 01) to its classes,
so the binary task, the model comparison, the genre-growth steps and the
hand-crafted baselines are judged on the same held-out tracks.

The genre-growth experiment trains one model per step of a growing genre set,
2 -> 4 -> 8 -> all, in the "most distinct first" order of
:func:`utils.data.explore.distinct_order`, and plots accuracy and macro-F1 against
the number of genres with chance (1 / n) for scale.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from utils.evaluation.metrics import classification_metrics
from utils.evaluation.plots import read_history
from utils.data.splits import Split
from utils.evaluation.experiment import Outcome, run
from utils.models.transfer_train import TransferOutcome

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")


# --- comparing runs --------------------------------------------------------------------------

def outcome_row(outcome: Outcome) -> dict:
    """The headline numbers of one run: track-level test metrics, window accuracy, training."""
    t = outcome.track_metrics
    return {**{m: t[m] for m in METRICS}, "window_accuracy": outcome.window_metrics["accuracy"],
            "temperature": outcome.temperature, "best_val_loss": outcome.training["best_val_loss"],
            "epochs": outcome.training["epochs"], "n_test_tracks": t["n_samples"]}


def transfer_row(outcome: TransferOutcome) -> dict:
    """:func:`outcome_row`'s track-level test metrics for the musicnn transfer model (no window figures or
    validation loss: its head trains on embeddings, not through the CNNs' training loop)."""
    t = classification_metrics(outcome.test_labels, outcome.test_probs, list(outcome.labels))
    return {"model": "musicnn (transfer)", **{m: t[m] for m in METRICS}, "temperature": outcome.temperature,
            "n_test_tracks": t["n_samples"]}


def plot_comparison(rows: pd.DataFrame, by: str, title: str, ylabel: str = "test (tracks)") -> Figure:
    """Bars of accuracy, balanced accuracy and macro-F1 per ``by`` (mean, with the standard
    deviation over runs as error bars where there are several)."""
    import seaborn as sns

    long = rows.melt(id_vars=[by], value_vars=list(METRICS[:3]), var_name="metric", value_name="value")
    fig = Figure(figsize=(2.5 + 1.4 * rows[by].nunique(), 4), layout="constrained")
    ax = fig.subplots()
    sns.barplot(long, x=by, y="value", hue="metric", errorbar="sd", ax=ax)
    ax.set(ylim=(0, 1), xlabel="", ylabel=ylabel)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


def plot_histories(logs: Mapping[str, str | os.PathLike], title: str = "") -> Figure:
    """Validation loss and accuracy per epoch of several runs (``name -> log.csv``)."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for name, path in logs.items():
        history = read_history(path)
        for ax, metric in zip(axes, ("val_loss", "val_accuracy")):
            ax.plot(history.epoch + 1, history[metric], marker=".", label=name)
    for ax, metric in zip(axes, ("validation loss", "validation accuracy")):
        ax.set(xlabel="epoch", title=metric)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def save_best(outcomes: Mapping[str, Outcome], path: str | os.PathLike) -> str:
    """Copy the run with the lowest validation loss (never chosen on test data) to ``path``
    (``.keras``, with its card); returns its name."""
    from utils.models.card import load_model, save_model

    best = min(outcomes, key=lambda name: outcomes[name].training["best_val_loss"])
    model, card = load_model(outcomes[best].model_path)
    save_model(model, path, card)
    return best


# --- the genre-growth experiment -------------------------------------------------------------

def growth_steps(order: Sequence[str], steps: Sequence[int] = (2, 4, 8)) -> list[list[str]]:
    """The genre sets of the experiment: the first ``n`` of ``order`` for each step below
    ``len(order)``, then all of them; each set sorted (the model's output order)."""
    sizes = sorted({n for n in steps if 2 <= n < len(order)} | {len(order)})
    return [sorted(order[:n]) for n in sizes]


def genre_growth(cache, order: Sequence[str], split: Split, config, run_root: str | os.PathLike,
                 steps: Sequence[int] = (2, 4, 8)) -> pd.DataFrame:
    """Train ``config`` on each step of :func:`growth_steps` and judge it on the split's test
    tracks of those genres. Step ``n`` lives in ``<run_root>/<model>_<n>genres`` (resumed, or
    reused when another experiment trained the same genres with the same configuration).
    One row per step: ``n_genres``, ``added`` (the genres new at this step), ``chance`` and
    the :func:`outcome_row` numbers."""
    rows, seen = [], set()
    for genres in growth_steps(order, steps):
        out = run(cache, genres, split, config, Path(run_root) / f"{config.model}_{len(genres)}genres")
        added = [g for g in order if g in genres and g not in seen]
        seen |= set(genres)
        rows.append({"n_genres": len(genres), "added": ", ".join(added), "chance": 1 / len(genres),
                     **outcome_row(out)})
    return pd.DataFrame(rows)


def plot_growth(rows: pd.DataFrame, title: str = "", ylabel: str = "test (tracks)") -> Figure:
    """Accuracy and macro-F1 against the number of genres, with chance (1 / n) for scale."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(rows.n_genres, rows.accuracy, marker="o", label="accuracy")
    ax.plot(rows.n_genres, rows.macro_f1, marker="s", label="macro-F1")
    ax.plot(rows.n_genres, rows.chance, color="grey", ls=":", label="chance (1 / n)")
    for n, acc, added in zip(rows.n_genres, rows.accuracy, rows.added):
        ax.annotate(f"+ {added}" if len(added) < 40 else f"+ {added.count(',') + 1} genres", (n, acc),
                    textcoords="offset points", xytext=(4, 6), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xticks(rows.n_genres, [str(n) for n in rows.n_genres])
    ax.set(ylim=(0, 1.05), xlabel="number of genres (most distinct first)", ylabel=ylabel,
           title=title or "From binary to multiclass: genre growth")
    ax.legend(loc="lower left")
    return fig


# --- held-out evaluation ---------------------------------------------------------------------

def heldout_probabilities(cache, model, labels: Sequence[str], track_ids: Sequence[str],
                       batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-track probabilities of ``model`` on the cached windows of ``track_ids`` with one of
    ``labels``: ``(track ids, true class indices, uncalibrated probabilities (n, C))``."""
    from utils.data.batches import WindowDataset
    from utils.models.architectures import predict_proba, track_probabilities

    w = cache.windows(labels=labels, track_ids=track_ids)
    if not len(w):
        raise ValueError(f"no windows of the labels {list(labels)} among the test tracks in {cache.path}")
    p = predict_proba(model, WindowDataset(cache, w, None, batch_size, shuffle=False))
    ids, probs = track_probabilities(p, w.track_id, cache.audible(w))
    truth = w.tracks.set_index("track_id").label[ids]
    return ids, truth.map({c: i for i, c in enumerate(labels)}).to_numpy(int), probs


def prediction_table(track_ids: Sequence[str], y_true: np.ndarray, probs: np.ndarray,
                     labels: Sequence[str]) -> pd.DataFrame:
    """One row per track: ``true``, ``predicted``, ``probability`` (of the prediction),
    ``p_true`` and ``correct``."""
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    return pd.DataFrame({"track_id": track_ids, "true": labels[y_true], "predicted": labels[pred],
                         "probability": probs.max(axis=1), "p_true": probs[np.arange(len(pred)), y_true],
                         "correct": pred == y_true})


def confused_pairs(metrics: Mapping, top: int = 3) -> list[tuple[str, str, int]]:
    """The ``top`` most frequent mistakes ``(true, predicted, tracks)`` of a
    :func:`utils.evaluation.metrics.classification_metrics` result, largest first."""
    counts = np.array(metrics["confusion_matrix"])
    names = metrics["class_names"]
    off = [(names[i], names[j], int(counts[i, j])) for i in range(len(names)) for j in range(len(names))
           if i != j and counts[i, j] > 0]
    return sorted(off, key=lambda t: -t[2])[:top]


def track_features(tracks: pd.DataFrame, out_csv: str | os.PathLike,
                   features_csv: str | os.PathLike | None = None) -> pd.DataFrame:
    """Hand-crafted features of ``tracks`` (``track_id``, ``path``), indexed by ``track_id``.

    From FMA's ``features.csv`` (indexed by integer track id) when
    ``features_csv`` is given; else computed with
    :func:`utils.evaluation.features.features_table` and kept in ``out_csv`` (by path),
    so a rerun computes only what is missing. Tracks whose audio fails are left out.
    """
    from utils.evaluation.features import features_table, load_features, save_features

    if features_csv is not None:
        table = load_features(features_csv)
        table.index = [f"{int(i):06d}" for i in table.index]
        return table.reindex([t for t in tracks.track_id if t in table.index])
    done = load_features(out_csv) if Path(out_csv).exists() else None
    todo = [p for p in tracks.path if done is None or p not in done.index]
    table = done
    if todo:
        new, _ = features_table(todo)
        table = new if done is None else pd.concat([done, new])
        save_features(table, out_csv)
    by_path = dict(zip(tracks.path, tracks.track_id))
    table = table[table.index.isin(by_path)]
    return table.set_axis([by_path[p] for p in table.index])


def holdout_baselines(features: pd.DataFrame, labels: pd.Series, split: Split, classes: Sequence[str],
                      seed: int = 0) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Fit the scikit-learn baselines (:func:`utils.evaluation.baselines.make_baselines`) on the split's
    training tracks of ``classes`` and judge them on its test tracks.

    ``features`` and ``labels`` are indexed by track id. Returns one row per
    model (accuracy, balanced accuracy, macro-F1, log loss; log loss and ECE
    None for the SVM, which gives no probabilities) and the full metrics per model.
    """
    from utils.evaluation.baselines import make_baselines

    index = {c: i for i, c in enumerate(classes)}

    def part(ids):
        ids = [t for t in ids if t in features.index and labels.get(t) in index]
        return features.loc[ids].to_numpy(), labels[ids].map(index).to_numpy(int)

    x_train, y_train = part(split.training)
    x_test, y_test = part(split.test)
    rows, full = [], {}
    for name, model in make_baselines(seed, n_neighbors=min(5, len(y_train))).items():
        model.fit(x_train, y_train)
        if hasattr(model, "predict_proba"):
            probs = np.zeros((len(y_test), len(classes)))
            probs[:, model.classes_] = model.predict_proba(x_test)
        else:  # one-hot of the prediction: right accuracy and F1, no meaningful log loss
            probs = np.eye(len(classes))[model.predict(x_test)]
        m = full[name] = classification_metrics(y_test, probs, classes)
        if not hasattr(model, "predict_proba"):
            m.update(log_loss=None, ece=None)
        rows.append({"model": name, **{k: m[k] for k in METRICS}, "n_train": len(y_train), "n_test": len(y_test)})
    return pd.DataFrame(rows), full
