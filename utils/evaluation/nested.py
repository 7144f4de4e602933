"""Nested, artist-grouped choice of the transfer model: variants, heads, selection and the outer loop.

The robustness experiment (``scripts/robustness_experiment.py``) caches, for
every clip and every listening condition, the per-window embeddings of both
musicnn backbones (``data[condition]["msd_mean_pool"]``, ...; ``track`` gives each
window's clip, ``applied`` each clip's effects). Here those arrays become genre
models and scores:

- a :class:`Variant` is one recipe: which embeddings, which head
  (:data:`utils.models.transfer_train.HEADS`), and whether training weighs every
  artist of a genre alike (:func:`utils.data.splits.group_weights`);
- :func:`select_variant` chooses one inside a training set by an inner
  stratified 3-fold, grouped by artist, on the worst case over clean and the
  augmentation families (then the mean);
- :func:`cross_validate` runs the outer folds: the nested choice, every variant
  for reference, leave-one-family-out and the windows-analysed trade.

No test fold and no SoX / FFmpeg condition takes part in any choice.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.audio.augment import FAMILIES
from utils.audio.budget import budget_windows
from utils.data.splits import cv_folds, group_weights

CHOSEN = "chosen by nested validation"  # the method name of the nested choice in the results' rows
OLD_VARIANT = "MSD penultimate+max_pool, dense head"  # the recipe shipped before the artist-grouped choice
OLD = f"{OLD_VARIANT} (reference)"  # its method name in the results' rows


@dataclass(frozen=True)
class Variant:
    """One transfer recipe.

    Attributes
    ----------
    layers : embeddings the head reads (``"mtt/mean_pool"``, ...; :func:`utils.models.transfer.embedding_name`)
    heads : heads of :data:`utils.models.transfer_train.HEADS` whose window probabilities are averaged
    by_artist : weigh the training windows so every genre, and every artist within it, counts alike
    """

    layers: tuple[str, ...]
    heads: tuple[str, ...]
    by_artist: bool = False


FEATURES = {"MSD penultimate+max_pool": ("penultimate", "max_pool"),
            "MSD mean_pool": ("mean_pool",),
            "MTT mean_pool": ("mtt/mean_pool",),
            "MSD+MTT mean_pool": ("mean_pool", "mtt/mean_pool"),
            "MSD+MTT taggram": ("tags", "mtt/tags")}
HEAD_SETS = {"linear head": ("linear",), "dense head": ("dense",)}
# Every pair of features and head, trained plainly and weighted by artist; MTT's pooled features with the
# linear head only (an exploration before this run, disclosed in the report, found MTT alone the weakest)
VARIANTS = {f"{f}, {h}" + (", by artist" if a else ""): Variant(layers, heads, a)
            for f, layers in FEATURES.items() for h, heads in HEAD_SETS.items() for a in (False, True)
            if not (f == "MTT mean_pool" and h == "dense head")}
# windows analysed per 30 s clip (of 11) and where, scored on the chosen model: the trade behind the predictor's budget
BUDGETS = (3, 5, 8)
PLACEMENTS = ("spread", "middle")


def key(name: str) -> str:
    """The cache key of an embedding name: ``"mtt/tags"`` -> ``"mtt_tags"``."""
    from utils.models.transfer import embedding_name  # Keras: only when windows are scored

    return "_".join(embedding_name(name))


def features(d: Mapping[str, np.ndarray], layers: Sequence[str]) -> np.ndarray:
    """Per-window head input ``(n_windows, dim)`` of one condition's arrays."""
    return np.concatenate([np.asarray(d[key(n)], np.float32) for n in layers], axis=1)


def training_windows(data, y: np.ndarray, clips: np.ndarray, n_copies: int, layers: Sequence[str],
                     exclude: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows, labels and clip of each window for ``clips``: clean, and every augmented copy whose
    chain lacks the family ``exclude``."""
    xs, ys, owner = [], [], []
    for c in ["clean", *(f"augment_{k}" for k in range(n_copies))]:
        d = data[c]
        keep = clips
        if exclude is not None and c != "clean":
            keep = np.array([i for i in clips if exclude not in str(d["applied"][i]).split("+")], int)
        m = np.isin(d["track"], keep)
        xs.append(features(d, layers)[m])
        ys.append(y[d["track"][m]])
        owner.append(d["track"][m])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(owner)


def train_variant(data, y: np.ndarray, groups: np.ndarray, clips: np.ndarray, n_copies: int, variant: Variant,
                  exclude: str | None = None, seed: int = 0) -> list:
    """The variant's heads (Keras models, window embeddings -> probabilities) trained on ``clips``."""
    from utils.models.transfer import train_head
    from utils.models.transfer_train import HEADS

    x, labels, owner = training_windows(data, y, clips, n_copies, variant.layers, exclude)
    weight = None
    if variant.by_artist:
        per_clip = np.zeros(len(y))
        per_clip[clips] = group_weights(y[clips], groups[clips])
        weight = per_clip[owner]
    return [train_head(x, labels, int(y.max()) + 1, dataclasses.replace(HEADS[h], layers=variant.layers, seed=seed),
                       sample_weight=weight) for h in variant.heads]


def window_probs(heads: list, variant: Variant, d: Mapping[str, np.ndarray], clips: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The variant's window probabilities (its heads averaged) for the windows of ``clips``, and their clip."""
    m = np.isin(d["track"], clips)
    x = features(d, variant.layers)[m]
    return np.mean([np.asarray(h(x, training=False)) for h in heads], axis=0), d["track"][m]


def window_index(track: np.ndarray) -> np.ndarray:
    """Position of each window within its clip (windows are stored clip by clip, in time order)."""
    starts = np.r_[0, np.flatnonzero(np.diff(track)) + 1]
    return np.arange(track.size) - np.repeat(starts, np.diff(np.r_[starts, track.size]))


def analysed(track: np.ndarray, stride: int = 1, budget: int | None = None, placement: str = "spread") -> np.ndarray:
    """Which windows the predictor would analyse: every ``stride``-th, or ``budget`` placed by
    :func:`utils.audio.budget.budget_windows`, of each clip."""
    index = window_index(track)
    if budget is None:
        return index % stride == 0
    keep = np.zeros(track.size, bool)
    for clip in np.unique(track):
        rows = np.flatnonzero(track == clip)
        keep[rows[budget_windows(len(rows), budget, placement)]] = True
    return keep


def pool(p: np.ndarray, track: np.ndarray, clips: np.ndarray, how: str = "mean") -> np.ndarray:
    """Track probabilities ``(len(clips), C)`` from window probabilities: mean, or normalised geometric mean."""
    out = []
    for i in clips:
        w = p[track == i]
        if how == "mean":
            out.append(w.mean(axis=0))
        else:
            z = np.log(np.maximum(w, 1e-12)).mean(axis=0)
            out.append(np.exp(z - z.max()) / np.exp(z - z.max()).sum())
    return np.array(out)


def select_variant(data, y, groups, train, n_copies, seed: int, variants: Mapping[str, Variant] = VARIANTS
                   ) -> tuple[str, dict, float]:
    """Nested choice inside ``train``: ``(variant, inner validation accuracies, temperature)``.

    Inner stratified 3-fold grouped by artist; criterion: the worst accuracy over clean and each
    augmentation family, then the mean. The temperature is fitted on the chosen variant's clean
    inner-validation track probabilities.
    """
    from utils.models.calibration import fit_temperature, log_probs

    inner = cv_folds(y[train], 3, 1, seed, groups=groups[train])[0]
    val_conditions = ["clean", *(f"family_{f}" for f in FAMILIES)]
    correct = {v: dict.fromkeys(val_conditions, 0) for v in variants}
    clean_probs: dict[str, list] = {v: [] for v in variants}
    clean_labels = []
    for j in np.unique(inner):
        fit, val = train[inner != j], train[inner == j]
        for name, variant in variants.items():
            heads = train_variant(data, y, groups, fit, n_copies, variant, seed=seed)
            for c in val_conditions:
                p = pool(*window_probs(heads, variant, data[c], val), val)
                correct[name][c] += int((p.argmax(axis=1) == y[val]).sum())
                if c == "clean":
                    clean_probs[name].append(p)
        clean_labels.append(y[val])
    acc = {v: {c: n / len(train) for c, n in cs.items()} for v, cs in correct.items()}
    best = max(variants, key=lambda v: (min(acc[v].values()), np.mean(list(acc[v].values()))))
    temperature = fit_temperature(log_probs(np.concatenate(clean_probs[best])), np.concatenate(clean_labels))
    return best, acc, temperature


def sklearn_fit(x_train, y_train, seed: int):
    """Standardised multinomial logistic regression: the baselines' classifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)).fit(x_train, y_train)


def track_embeddings(d: Mapping[str, np.ndarray], n_clips: int) -> np.ndarray:
    """Mean and max over each clip's windows of MSD's penultimate + max_pool: the plain musicnn + logreg input."""
    x = features(d, ("penultimate", "max_pool"))
    return np.stack([np.concatenate([x[d["track"] == i].mean(axis=0), x[d["track"] == i].max(axis=0)])
                     for i in range(n_clips)])


def cross_validate(data, y, groups, folds, n_copies, test_on: Sequence[str], lofo_repeats: int,
                   variants: Mapping[str, Variant] = VARIANTS, log: Callable[[str], None] = print,
                   checkpoints: Path | None = None):
    """Every outer fold: the nested choice and its test scores under every condition, every variant for
    reference, the plain musicnn and hand-crafted baselines, the windows-analysed trade and
    leave-one-family-out. Returns ``(rows, choices, lofo)``. With ``checkpoints`` (a folder), each outer
    fold's results are saved there as they are done, under a name that depends on everything they came
    from, and read back instead of recomputed: a stopped run resumes fold by fold."""
    import json

    from utils.atomic import write_json

    n_clips = len(y)
    pooled = {c: track_embeddings(data[c], n_clips) for c in test_on}
    rows, choices, lofo = [], [], []
    stamp = _stamp(y, groups, folds, n_copies, test_on, lofo_repeats, variants)
    for r, assignment in enumerate(folds):
        for k in np.unique(assignment):
            done = None if checkpoints is None else checkpoints / f"{stamp}-r{r}-f{int(k)}.json"
            if done is not None and done.is_file():
                saved = json.loads(done.read_text())
                rows, choices, lofo = rows + saved["rows"], choices + [saved["choice"]], lofo + saved["lofo"]
                log(f"repeat {r} fold {k}: chose {saved['choice']['chosen']} (read from {done.name})")
                continue
            fold_rows, choice, fold_lofo = _outer_fold(data, y, groups, assignment, int(k), r, n_copies, test_on,
                                                       lofo_repeats, variants, pooled, log)
            rows, choices, lofo = rows + fold_rows, choices + [choice], lofo + fold_lofo
            if done is not None:
                write_json(done, {"rows": fold_rows, "choice": choice, "lofo": fold_lofo})
    return rows, choices, lofo


def _stamp(*parts) -> str:
    """A short digest of what an outer fold's results depend on (its data are named by the embedding cache)."""
    import hashlib

    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p.tolist() if isinstance(p, np.ndarray) else p).encode())
    return h.hexdigest()[:12]


def _outer_fold(data, y, groups, assignment, k: int, r: int, n_copies, test_on, lofo_repeats, variants, pooled,
                log) -> tuple[list[dict], dict, list[dict]]:
    """One outer fold of :func:`cross_validate`: ``(rows, choice, lofo rows)``."""
    from utils.models.calibration import apply_temperature, log_probs

    rows, lofo = [], []
    t0 = time.perf_counter()
    train, test = np.flatnonzero(assignment != k), np.flatnonzero(assignment == k)
    seed = 1000 * (r + 1) + int(k)
    chosen, inner_acc, temperature = select_variant(data, y, groups, train, n_copies, seed, variants)
    heads = {v: train_variant(data, y, groups, train, n_copies, variant, seed=seed)
             for v, variant in variants.items()}
    plain = sklearn_fit(pooled["clean"][train], y[train], seed)
    crafted = sklearn_fit(data["clean"]["features"][train], y[train], seed)
    for c in test_on:
        methods = {}
        for v, variant in variants.items():
            p, track = window_probs(heads[v], variant, data[c], test)
            methods[f"{v} (reference)"] = pool(p, track, test)
            if v != chosen:
                continue
            methods[CHOSEN] = methods[f"{v} (reference)"]
            methods[f"{CHOSEN}, geometric pooling"] = pool(p, track, test, "geometric")
            methods[f"{CHOSEN}, every 2 windows"] = pool(p[analysed(track, 2)], track[analysed(track, 2)], test)
            for n in BUDGETS:
                for where in PLACEMENTS:
                    keep = analysed(track, budget=n, placement=where)
                    methods[f"{CHOSEN}, {n} windows, {where}"] = pool(p[keep], track[keep], test)
        methods["plain musicnn track mean+max + logreg, clean training"] = plain.predict_proba(pooled[c][test])
        if "features" in data[c]:  # clean and the SoX / FFmpeg conditions
            methods["hand-crafted features + logreg, clean training"] = \
                crafted.predict_proba(data[c]["features"][test])
        for name, p in methods.items():
            row = {"method": name, "condition": c, "repeat": r, "fold": int(k),
                   "accuracy": float((p.argmax(axis=1) == y[test]).mean())}
            if name == CHOSEN and c == "clean":
                q = apply_temperature(log_probs(p), temperature)
                row["log_loss_calibrated"] = float(-np.log(np.maximum(q[np.arange(len(test)), y[test]],
                                                                       1e-12)).mean())
            rows.append(row)
    choice = {"repeat": r, "fold": int(k), "chosen": chosen, "temperature": temperature,
              "inner_validation_accuracy": inner_acc}
    if r < lofo_repeats:
        for f in FAMILIES:
            held = train_variant(data, y, groups, train, n_copies, variants[chosen], exclude=f, seed=seed)
            p = pool(*window_probs(held, variants[chosen], data[f"family_{f}"], test), test)
            lofo.append({"family": f, "repeat": r, "fold": int(k), "chosen": chosen,
                         "accuracy": float((p.argmax(axis=1) == y[test]).mean())})
    log(f"repeat {r} fold {k}: chose {chosen}, {time.perf_counter() - t0:.0f} s")
    return rows, choice, lofo


def learning_curve(data, y, groups, folds, n_copies, variant: Variant, sizes: Sequence[int] = (1, 2, 3),
                   seed: int = 0) -> list[dict]:
    """Clean test accuracy of ``variant`` trained on ``n`` artists per genre (all its clips; every artist a
    genre has in training when it has fewer), for each ``n`` of ``sizes`` and on every artist, on the same
    outer folds. The artists kept are drawn at random per fold (seeded)."""
    out = []
    for r, assignment in enumerate(folds):
        for k in np.unique(assignment):
            train, test = np.flatnonzero(assignment != k), np.flatnonzero(assignment == k)
            rng = np.random.default_rng(seed + 100 * r + int(k))
            for n in (*sizes, None):
                keep = train
                if n is not None:
                    keep = np.concatenate([train[np.isin(groups[train], rng.permutation(np.unique(
                        groups[train][y[train] == c]))[:n]) & (y[train] == c)] for c in np.unique(y[train])])
                heads = train_variant(data, y, groups, keep, n_copies, variant, seed=seed)
                p = pool(*window_probs(heads, variant, data["clean"], test), test)
                per_genre = [len(np.unique(groups[keep][y[keep] == c])) for c in np.unique(y)]
                out.append({"artists_per_genre": "all" if n is None else n, "repeat": r, "fold": int(k),
                            "mean_artists_per_genre": float(np.mean(per_genre)), "n_train_clips": int(len(keep)),
                            "accuracy": float((p.argmax(axis=1) == y[test]).mean())})
    return out
