"""The five notebooks' study of fma_small's pictures: slices, what the pictures hold, models and baselines.

Everything runs on the official split of :func:`utils.data.pictures.pictures`
(training to fit, validation to judge; the sealed test pictures are never
read) and on picture arrays from :func:`utils.data.pictures.load_pictures`,
``(tracks, 128 time columns, 128 Mel bands)`` uint8 levels. A level ``v`` is
``-80 + 80 v / 255`` dB re the clip's peak (:data:`DB_PER_LEVEL`).

- 01: :func:`take_per_genre` (the slice a run works on), :func:`split_report`,
  :func:`plot_tracks_per_artist`, :func:`level_table`, :func:`plot_level_histograms`,
  :func:`plot_pictures`;
- 02: :func:`plot_steps`, :func:`parity`, :func:`mean_pictures` (then :func:`utils.data.explore.mean_spectra`,
  :func:`~utils.data.explore.genre_distances` and :func:`~utils.data.explore.distinct_order`);
- 03-04: :func:`fit_and_judge` (one CNN trained on training, judged on validation, saved with its
  card), :func:`imbalanced` (a genre subsampled in training, as FMA's larger subsets are);
- 05: :func:`probabilities` of a saved model, :func:`picture_statistics` and :func:`baseline` (the
  hand-crafted and VGGish baselines, logistic regression on the same split).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from utils.audio.frontend import FMA_SMALL
from utils.audio.picture import window_to_pixels
from utils.data.datasets import balance
from utils.evaluation.metrics import classification_metrics
from utils.evaluation.reports import Reference
from utils.models.calibration import fit_temperature, log_probs

DB_PER_LEVEL = FMA_SMALL.peak_range_db / (FMA_SMALL.levels - 1)  # 80 dB over levels 0..255
HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece")


# --- 01: the data --------------------------------------------------------------------------------

def take_per_genre(tracks: pd.DataFrame, per_genre: int | None, genres: Sequence[str] | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """``tracks`` restricted to ``genres`` (None: all) and, with ``per_genre``, to that many tracks of each
    genre in each split, drawn with ``seed`` (a reproducible slice for a quick run); order kept."""
    if genres:
        tracks = tracks[tracks.label.isin(genres)]
    if per_genre is not None:
        tracks = tracks.sample(frac=1, random_state=seed).groupby(["split", "label"]).head(per_genre).sort_index()
    return tracks.reset_index(drop=True)


def split_report(tracks: pd.DataFrame, data_root: str | os.PathLike, per_genre: int | None) -> dict:
    """The split every notebook of a run uses: tracks and artists per split and genre, the artists two splits
    share (none on FMA's official split), and which track ids each split holds."""
    artists = tracks.dropna(subset=["artist"]).groupby("split").artist.agg(lambda a: set(a))
    shared = sorted(set.intersection(*artists)) if len(artists) > 1 else []
    counts = tracks.groupby(["split", "label"]).size().unstack(fill_value=0)
    return {
        "data_root": str(data_root), "per_genre": per_genre,
        "how": "FMA's official artist-filtered split of fma_small: fit on training, judge on validation "
               "(the test split is sealed)" + (f"; {per_genre} tracks per genre and split" if per_genre else ""),
        "genres": sorted(tracks.label.unique()),
        "tracks": {s: int(n) for s, n in tracks.split.value_counts().sort_index().items()},
        "tracks_per_genre": {s: {g: int(n) for g, n in row.items()} for s, row in counts.iterrows()},
        "artists": {s: len(a) for s, a in artists.items()},
        "artists_in_two_splits": len(shared),
        "tracks_without_artist": int(tracks.artist.isna().sum()),
        "track_ids": {s: sorted(g.track_id) for s, g in tracks.groupby("split")},
    }


def run_tracks(split: dict) -> pd.DataFrame:
    """The tracks of a run's split (:func:`split_report`, written by notebook 01 as ``split.json``)."""
    from utils.data.pictures import pictures

    tracks = pictures(split["data_root"], splits=tuple(split["track_ids"]))
    wanted = {t for ids in split["track_ids"].values() for t in ids}
    return tracks[tracks.track_id.isin(wanted)].reset_index(drop=True)


def plot_tracks_per_artist(tracks: pd.DataFrame) -> Figure:
    """How many tracks each artist has, per split (log counts): a few artists hold many tracks."""
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    for split, group in tracks.dropna(subset=["artist"]).groupby("split"):
        per = group.artist.value_counts()
        ax.hist(per, bins=np.arange(1, per.max() + 2) - 0.5, alpha=0.6, log=True,
                label=f"{split}: {len(per):,} artists, median {per.median():.0f}, max {per.max()}")
    ax.set(xlabel="tracks by the same artist", ylabel="artists", title="Tracks per artist")
    ax.legend(fontsize=8)
    return fig


def level_table(x: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Per genre: pictures, mean level in dB re the peak, its spread within pictures, the share of pixels at
    the floor (80 dB or more down: silence or a band the encoder dropped), and the mean of the top Mel
    bands (above ~10 kHz), where MP3 encoding and genre differ most."""
    db = x.astype(np.float64) * DB_PER_LEVEL - FMA_SMALL.peak_range_db
    frame = pd.DataFrame({"label": np.asarray(labels), "mean_db": db.mean(axis=(1, 2)),
                          "std_db": db.std(axis=(1, 2)), "floor_share": (x == 0).mean(axis=(1, 2)),
                          "top_bands_db": db[:, :, -16:].mean(axis=(1, 2))})
    table = frame.groupby("label").agg(pictures=("mean_db", "size"), mean_db=("mean_db", "mean"),
                                       std_db=("std_db", "mean"), floor_share=("floor_share", "mean"),
                                       top_bands_db=("top_bands_db", "mean"))
    return table.round(2)


def plot_level_histograms(x: np.ndarray, labels: Sequence[str]) -> Figure:
    """The distribution of pixel levels (dB re the clip's peak) of each genre's pictures."""
    labels = np.asarray(labels)
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    edges = np.arange(0, 257, 8)
    for genre in sorted(set(labels)):
        counts, _ = np.histogram(x[labels == genre], bins=edges)
        ax.plot(edges[:-1] * DB_PER_LEVEL - FMA_SMALL.peak_range_db, counts / counts.sum(), label=genre)
    ax.set(xlabel="level (dB re the clip's peak)", ylabel="share of pixels", title="Pixel levels per genre")
    ax.legend(fontsize=8, ncols=2)
    return fig


def plot_pictures(x: np.ndarray, titles: Sequence[str], ncols: int = 4, cmap: str = "viridis") -> Figure:
    """Pictures side by side as they were drawn (highest Mel band on top, time left to right)."""
    nrows = -(-len(x) // ncols)
    fig = Figure(figsize=(2.2 * ncols, 2.4 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, window, title in zip(axes, x, titles):
        ax.imshow(window_to_pixels(window), cmap=cmap, vmin=0, vmax=255, aspect="auto")
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig


# --- 02: how a picture is made; the genres' distances ---------------------------------------------

def parity(ours: np.ndarray, shared: np.ndarray) -> dict:
    """How far a picture made here is from the shared one: pixels equal, within one level, the largest gap."""
    gap = np.abs(np.asarray(ours, np.float32) - np.asarray(shared, np.float32))
    return {"pixels": int(gap.size), "equal": float((gap == 0).mean()), "within_one_level": float((gap <= 1).mean()),
            "max_levels_off": float(gap.max())}


def plot_steps(panels: dict[str, np.ndarray], ncols: int = 3) -> Figure:
    """Arrays ``(time, Mel bands)`` side by side, lowest band at the bottom, each with its own colour bar."""
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, (title, a) in zip(axes, panels.items()):
        image = ax.imshow(np.asarray(a).T, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax)
        ax.set(title=title, xlabel="frame" if len(a) > 128 else "column", ylabel="Mel band")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return fig


def mean_pictures(x: np.ndarray, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Each genre's mean picture ``(time, Mel bands)`` in dB re the peak, genres sorted: the input of
    :func:`utils.data.explore.mean_spectra` (its mean over time; a picture's columns are snapshots 0.23 s
    apart, so the spectrum they share says more than their order)."""
    labels = np.asarray(labels)
    return {g: x[labels == g].mean(axis=0) * DB_PER_LEVEL - FMA_SMALL.peak_range_db for g in sorted(set(labels))}


# --- 03-04: training on pictures ------------------------------------------------------------------

@dataclass(frozen=True)
class PictureSet:
    """A run's tracks (:func:`take_per_genre`) and their pictures, row for row."""

    tracks: pd.DataFrame
    x: np.ndarray

    @classmethod
    def load(cls, tracks: pd.DataFrame) -> PictureSet:
        from utils.data.pictures import load_pictures

        tracks = tracks.reset_index(drop=True)
        return cls(tracks, load_pictures(tracks.path))

    def part(self, split: str, genres: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The pictures and genres of one split, of ``genres`` only (None: all)."""
        keep = (self.tracks.split == split) & (self.tracks.label.isin(genres) if genres else True)
        return self.x[keep.to_numpy()], self.tracks.label[keep].to_numpy()


@dataclass(frozen=True)
class Judged:
    """One model trained on training pictures and judged on validation pictures (calibrated by temperature).

    ``probs``: the model's validation probabilities before calibration; ``metrics``: their
    :func:`utils.evaluation.metrics.classification_metrics`; ``temperature``: fitted on them;
    ``model_path``: the model and its card (which carries the temperature).
    """

    classes: tuple[str, ...]
    y: np.ndarray
    metrics: dict
    probs: np.ndarray
    temperature: float
    model_path: Path
    log_csv: Path
    training: dict

    def row(self) -> dict:
        """The headline numbers, a table row."""
        return {**{k: self.metrics[k] for k in HEADLINE}, "best_epoch": self.training["best_epoch"],
                "epochs": self.training["epochs"], "n_training": self.training["n_training"],
                "n_validation": self.metrics["n_samples"]}


def class_indices(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Each label's index in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[g] for g in labels], np.int64)


def fit_and_judge(config, train: tuple[np.ndarray, Sequence[str]], validation: tuple[np.ndarray, Sequence[str]],
                  classes: Sequence[str], run_dir: str | os.PathLike, balancing: str = "none",
                  data: dict | None = None) -> Judged:
    """Train ``config`` (:class:`utils.models.training.TrainConfig`) on the pictures and labels of ``train``,
    its epoch chosen by the validation loss, and judge it on ``validation``.

    ``balancing`` (:func:`utils.data.datasets.balance`): ``"none"``, ``"undersample"`` / ``"oversample"``
    (training pictures dropped / repeated per genre to equal counts) or ``"class_weight"`` (the loss
    weighted by inverse genre frequency). The temperature is fitted on validation. Resumes the run in
    ``run_dir``; saves ``run_dir/model.keras`` with its card (front end :data:`FMA_SMALL`).
    """
    from utils.models.architectures import predict_proba
    from utils.models.card import ModelCard, save_model
    from utils.models.training import train as fit

    classes = tuple(classes)
    x, y = train[0], class_indices(train[1], classes)
    xv, yv = validation[0], class_indices(validation[1], classes)
    plan = balance(y, balancing, seed=config.seed)
    config = dataclasses.replace(config, balance="class_weight" if plan.class_weight else "none")
    run_dir = Path(run_dir)
    result = fit(config, (x[plan.indices], y[plan.indices]), (xv, yv), len(classes), run_dir / "training",
                 class_weight=plan.class_weight)
    probs = predict_proba(result.model, xv.astype(np.float32), batch_size=256)
    temperature = fit_temperature(log_probs(probs), yv)
    metrics = classification_metrics(yv, probs, classes)
    training = {**result.summary(), "balancing": balancing, "n_training": int(len(plan.indices))}
    card = ModelCard(classes, FMA_SMALL, config.model, training,
                     data={**(data or {}), "training_tracks": int(len(plan.indices)),
                           "validation_tracks": int(len(yv))},
                     metrics={"validation": {k: metrics[k] for k in HEADLINE}}, temperature=temperature)
    save_model(result.model, run_dir / "model.keras", card)
    return Judged(classes, yv, metrics, probs, temperature, run_dir / "model.keras", run_dir / "training" / "log.csv",
                  training)


def run_name(model: str, genres: Sequence[str]) -> str:
    """The training folder of ``model`` on ``genres``: the same genres share one run (03's pair, 04's first step)."""
    return f"{model}_" + "_".join(sorted(genres))


def genre_growth(config, data: PictureSet, order: Sequence[str], run_root: str | os.PathLike,
                 steps: Sequence[int] = (2, 4, 8)) -> tuple[pd.DataFrame, dict[int, Judged]]:
    """Train ``config`` on the first 2, 4, 8 ... genres of ``order`` (:func:`utils.evaluation.growth.growth_steps`)
    and judge each on validation. Returns one row per step (``n_genres``, ``added``, ``chance`` and
    :meth:`Judged.row`) and the runs by number of genres."""
    from utils.evaluation.growth import growth_steps

    rows, runs, seen = [], {}, set()
    for genres in growth_steps(order, steps):
        runs[len(genres)] = judged = fit_and_judge(config, data.part("training", genres),
                                                   data.part("validation", genres), genres,
                                                   Path(run_root) / run_name(config.model, genres))
        added = [g for g in order if g in genres and g not in seen]
        seen |= set(genres)
        rows.append({"n_genres": len(genres), "added": ", ".join(added), "chance": 1 / len(genres), **judged.row()})
    return pd.DataFrame(rows), runs


def imbalanced(labels: Sequence[str], minority: str, fraction: float, seed: int = 0) -> np.ndarray:
    """Positions of ``labels`` to keep so that ``minority`` keeps only ``fraction`` of its tracks (drawn with
    ``seed``) and every other genre all of its: the imbalance of FMA's larger subsets, made on purpose."""
    labels = np.asarray(labels)
    rows = np.flatnonzero(labels == minority)
    kept = np.random.default_rng(seed).choice(rows, max(1, round(fraction * len(rows))), replace=False)
    return np.sort(np.concatenate([np.flatnonzero(labels != minority), kept]))


def balancing_study(config, data: PictureSet, pair: Sequence[str], minority: str, fraction: float,
                    run_root: str | os.PathLike, methods: Sequence[str], balanced: Judged) -> pd.DataFrame:
    """What subsampling ``minority`` to ``fraction`` of its training tracks does, and how each of
    ``methods`` (:func:`utils.data.datasets.balance`) answers it; ``balanced`` is the run on every
    training track. Validation stays as it is. One row per training set: ``training``, ``n_training``,
    accuracy, balanced accuracy, macro-F1, log loss, ``minority_recall``."""
    x, labels = data.part("training", pair)
    keep = imbalanced(labels, minority, fraction, config.seed)
    ratio = f"1:{round(1 / fraction)}"
    runs = {"all tracks (1:1)": balanced}
    for method in methods:
        runs[f"{ratio}, {method}"] = fit_and_judge(
            config, (x[keep], labels[keep]), data.part("validation", pair), pair,
            Path(run_root) / f"{run_name(config.model, pair)}_cut-{minority}-{fraction:g}_{method}", balancing=method)
    return pd.DataFrame([{"training": name, "n_training": j.training["n_training"],
                          **{k: j.metrics[k] for k in HEADLINE[:4]},
                          "minority_recall": j.metrics["per_class"][minority]["recall"]}
                         for name, j in runs.items()])


def plot_balancing(rows: pd.DataFrame, minority: str) -> Figure:
    """Validation accuracy, macro-F1 and the subsampled genre's recall per training set."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    metrics = ("accuracy", "macro_f1", "minority_recall")
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        ax.bar(np.arange(len(rows)) + (i - 1) * width, rows[metric], width,
               label=metric.replace("minority", minority))
    ax.set_xticks(np.arange(len(rows)), rows.training, fontsize=8)
    ax.set(ylim=(0, 1), ylabel="validation", title=f"{minority} subsampled in training")
    ax.legend(fontsize=8, ncols=3, loc="lower center")
    return fig


# --- 05: a saved model and the baselines ----------------------------------------------------------

def choose_model(shipped: str | os.PathLike, own: str | os.PathLike, classes: Sequence[str]) -> tuple[Path, str]:
    """The model 05 judges: the shipped one when it exists and knows ``classes``, else the run's own (04's),
    with a sentence saying which and why."""
    from utils.models.card import load_card

    shipped, own = Path(shipped), Path(own)
    if shipped.is_file() and tuple(load_card(shipped).labels) == tuple(classes):
        return shipped, (f"the shipped model `{shipped.name}` (trained on every training picture, its recipe "
                         f"chosen on validation by scripts/train_fma_small.py)")
    why = "is not there yet" if not shipped.is_file() else "knows other genres than this run's"
    return own, f"04's model of this run (`models/{own.name}`): the shipped `{shipped.name}` {why}"


def probabilities(predictor, x: np.ndarray) -> np.ndarray:
    """A loaded picture model's probabilities ``(n, genres)`` of pictures ``x``, before its card's
    temperature (:func:`utils.models.predict.load_predictor`: its runtime and batch size)."""
    size = predictor.batch_size
    return np.concatenate([predictor.model(x[s:s + size].astype(np.float32)) for s in range(0, len(x), size)])


# Published figures on fma_small's official test split, for scale only (we judge on validation; test is sealed)
PUBLISHED = (
    Reference("CNN + RNN on log-Mel (the article the project started from)", "fma_small", "accuracy", 0.444,
              "Kostrzewa et al.; 52.5 % on validation"),
    Reference("SVM on FMA's MFCC statistics", "fma_small", "accuracy", 0.464, "Defferrard et al. 2017 (FMA)"),
    Reference("VGGish embeddings + logistic regression", "fma_small", "accuracy", 0.558,
              "issue 32, on the shared files (61.1 % on validation)"),
    Reference("Dasheng (600M, frozen) + linear head", "fma_small", "accuracy", 0.643, "Dinkel et al. 2024"),
)


def picture_statistics(x: np.ndarray) -> np.ndarray:
    """Hand-crafted statistics of each picture: per Mel band its mean, standard deviation, 10th and 90th
    percentile over time, and the mean absolute change between neighbouring columns (512 + 128 values)."""
    x = x.astype(np.float32)
    stats = [x.mean(axis=1), x.std(axis=1), *np.percentile(x, [10, 90], axis=1),
             np.abs(np.diff(x, axis=1)).mean(axis=1)]
    return np.concatenate(stats, axis=1)


def baseline(features: tuple[np.ndarray, np.ndarray], labels: tuple[Sequence[str], Sequence[str]],
             classes: Sequence[str], seed: int = 0) -> dict:
    """Standardised features + logistic regression fitted on training, judged on validation: the metrics of
    :func:`utils.evaluation.metrics.classification_metrics`. ``features`` and ``labels``: (training, validation)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y, yv = class_indices(labels[0], classes), class_indices(labels[1], classes)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))
    model.fit(features[0], y)
    return classification_metrics(yv, model.predict_proba(features[1]), classes)


def majority(labels: tuple[Sequence[str], Sequence[str]], classes: Sequence[str]) -> dict:
    """Always the genre most frequent in training, with the training genre frequencies as probabilities."""
    y, yv = class_indices(labels[0], classes), class_indices(labels[1], classes)
    prior = np.bincount(y, minlength=len(classes)) / len(y)
    probs = np.tile(prior, (len(yv), 1))
    probs[:, prior.argmax()] += 1e-9  # ties (a balanced training set) go to the first genre, as argmax does
    return classification_metrics(yv, probs / probs.sum(axis=1, keepdims=True), classes)
