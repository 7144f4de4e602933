"""Splits and folds of a track table, and the one cross-validation loop with its summary.

The one home of "which tracks train, validate and test":

- :func:`split_groups`: the tracks that must stay on one side of every split
  (one artist; one recording, where a table names recordings);
- :func:`make_splits`: one deterministic training / validation / test split
  (stratified by label, grouped by artist where known);
- :func:`repeated_folds` (track tables) and :func:`cv_folds` (label arrays,
  optionally with groups): repeated stratified (group) k-fold assignments;
  :func:`folds_by_class` falls back to dealing each class (each group)
  round-robin when a class has fewer tracks (groups) than folds;
- :class:`Split` and :func:`fold_splits`: fold ``k`` tests, fold ``k + 1``
  validates, the others train; :func:`official_split` reads a dataset's own;
- :class:`SplitPlan` / :func:`plan_splits`: a run's plan, saved once (notebook
  01) and shared by every experiment of the run;
- :func:`cross_validate` and :func:`summarize`: evaluate every split, then
  mean ± standard deviation per group.

Keras-free and quick to import: planning splits must not pay for a framework.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils.atomic import write_json

SPLITS = ("training", "validation", "test")
_MAX_FOLDS = 100  # split fractions are realised as whole folds of 1/n, n <= 100


@dataclass(frozen=True)
class Split:
    """Track ids of the training, validation and test sets."""

    training: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]


def make_splits(tracks: pd.DataFrame, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                seed: int = 0) -> pd.Series:
    """Deterministic training / validation / test split of the labelled tracks.

    Stratified by label (a multi-label tuple counts as one class) and, where
    ``artist`` is known, grouped by artist so that no artist is in two
    splits; a track without an artist is a group of its own. The fractions
    are realised as whole folds: ``(0.8, 0.1, 0.1)`` is 10 folds of
    sklearn's ``StratifiedGroupKFold`` (``StratifiedKFold`` when no artist
    is known) shuffled with ``seed``, 8 / 1 / 1 of them per split: sizes
    match the fractions to within a track per class (a group, if grouped).

    Returns a str Series aligned with ``tracks``; NA for unlabelled tracks.
    """
    counts = _fold_counts(fractions)
    labelled = tracks.label.notna().to_numpy()
    folds = _test_folds(tracks[labelled], sum(counts), seed)
    names = np.repeat(SPLITS, counts)
    split = pd.Series(None, index=tracks.index, dtype="str", name="split")
    split[labelled] = names[folds]
    return split


def repeated_folds(tracks: pd.DataFrame, n_splits: int = 5, n_repeats: int = 1,
                   seed: int = 0) -> pd.DataFrame:
    """Fold assignments for repeated stratified k-fold cross-validation.

    Column ``r`` holds, for each track, the fold (0 .. ``n_splits``-1) in
    which it is a test track in repeat ``r``; each repeat reshuffles with
    seed ``seed + r``. Stratified by label and grouped by artist where known,
    as :func:`make_splits`. Unlabelled tracks get NA.
    """
    labelled = tracks.label.notna().to_numpy()
    out = pd.DataFrame(index=tracks.index, columns=pd.RangeIndex(n_repeats, name="repeat"), dtype="Int64")
    for r in range(n_repeats):
        out.loc[labelled, r] = _test_folds(tracks[labelled], n_splits, seed + r)
    return out


def cv_folds(y: np.ndarray, n_splits: int = 5, n_repeats: int = 10, seed: int = 0,
             groups: np.ndarray | None = None) -> np.ndarray:
    """Seeded repeated stratified k-fold assignment, shape ``(n_repeats, n_samples)``.

    Entry ``[r, i]`` is the fold (0 .. n_splits - 1) in which sample ``i`` is
    tested in repeat ``r``; each repeat reshuffles. Every class needs at
    least ``n_splits`` samples. With ``groups`` (one label per sample, e.g.
    :func:`split_groups`), samples of one group always share a fold
    (scikit-learn's ``StratifiedGroupKFold``, shuffled with ``seed + r``): the
    folds are as stratified as the groups allow.
    """
    y = np.asarray(y)
    folds = np.empty((n_repeats, len(y)), dtype=int)
    from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedGroupKFold

    if groups is not None:
        for r in range(n_repeats):
            parts = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed + r).split(y, y, groups)
            for k, (_, test) in enumerate(parts):
                folds[r, test] = k
        return folds
    splitter = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        folds[k // n_splits, test] = k % n_splits
    return folds


def group_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Training weights ``(n,)``, mean 1, under which every class weighs the same and, within a
    class, every group (artist) does: a class of one prolific artist and a few others then
    teaches the others' sound as much as that artist's.

    Examples
    --------
    >>> group_weights(np.array([0, 0, 0, 1]), np.array([7, 7, 8, 9])).tolist()
    [0.5, 0.5, 1.0, 2.0]
    """
    y, groups = np.asarray(y), np.asarray(groups)
    w = np.empty(len(y))
    for c in np.unique(y):
        mine = y == c
        names, inverse, sizes = np.unique(groups[mine], return_inverse=True, return_counts=True)
        w[mine] = 1.0 / (len(names) * sizes[inverse])
    return w * len(w) / w.sum()


def split_groups(tracks: pd.DataFrame) -> np.ndarray:
    """The group of each track, ``(n_tracks,)`` int: tracks of one group must never sit on both sides of a split.

    Tracks share a group when they share an ``artist`` or, where the table has a
    ``recording`` column (GTZAN: the title in Sturm's index), a recording: GTZAN
    repeats some recordings, under other artists' names too. Groups are closed
    under both links (an artist's two clips and the repeat of one of them are one
    group). A track with neither is a group of its own. Names compare without
    case and surrounding space.

    Examples
    --------
    >>> t = pd.DataFrame({"artist": ["A", "a ", None, None], "recording": ["x", "y", "y", None]})
    >>> split_groups(t).tolist()
    [0, 0, 0, 3]
    """
    parent = list(range(len(tracks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for column in [c for c in ("artist", "recording") if c in tracks]:
        for i, name in enumerate(tracks[column]):
            if pd.isna(name) or not str(name).strip():
                continue
            key = (column, str(name).strip().casefold())
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    return np.array([root(i) for i in range(len(tracks))])


def folds_by_class(tracks: pd.DataFrame, n_splits: int, n_repeats: int, seed: int) -> tuple[np.ndarray, bool]:
    """Fold of each track per repeat ``(n_repeats, n_tracks)`` and whether it is stratified.

    Stratified (group) k-fold from the library when every genre has ``n_splits``
    groups (:func:`split_groups`); otherwise each genre's groups are dealt
    round-robin over the folds (shuffled with ``seed + r``), so a genre is in as
    many folds as it has groups, and a group is never split.
    """
    groups = split_groups(tracks)
    labels = tracks.label.to_numpy()
    if pd.Series(groups).groupby(labels).nunique().min() >= n_splits:
        return repeated_folds(tracks, n_splits, n_repeats, seed).to_numpy(int).T, True
    folds = np.empty((n_repeats, len(tracks)), int)
    for r in range(n_repeats):
        rng = np.random.default_rng(seed + r)
        dealt = 0
        for c in sorted(tracks.label.unique()):
            mine = np.unique(groups[labels == c])
            for g in rng.permutation(mine):
                folds[r, groups == g] = dealt % n_splits
                dealt += 1
    return folds, False


def _fold_counts(fractions: Sequence[float]) -> np.ndarray:
    """Folds per split for ``fractions``: the fewest whole folds that realise them exactly."""
    f = np.asarray(fractions, dtype=float)
    if f.shape != (len(SPLITS),) or (f < 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers "
                         f"({', '.join(SPLITS)}) summing to 1, got {tuple(fractions)}")
    for n in range(2, _MAX_FOLDS + 1):
        if np.allclose(f * n, np.round(f * n), atol=1e-6):
            return np.round(f * n).astype(int)
    raise ValueError(f"fractions must be multiples of 1/n for some n <= {_MAX_FOLDS}, got {tuple(fractions)}")


def _test_folds(tracks: pd.DataFrame, n_splits: int, seed: int) -> np.ndarray:
    """Test-fold index of each (labelled) track for a shuffled stratified (group) k-fold."""
    # sklearn is slow to import: only the splits need it
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if len(tracks) < n_splits:
        raise ValueError(f"{len(tracks)} labelled tracks cannot fill {n_splits} folds")
    y = tracks.label.map(str).to_numpy()
    smallest = pd.Series(y).value_counts()
    if smallest.min() < n_splits:
        raise ValueError(f"class {smallest.idxmin()!r} has {smallest.min()} tracks: a stratified split "
                         f"into {n_splits} folds needs at least {n_splits} per class")
    folds = np.empty(len(tracks), dtype=int)
    groups = split_groups(tracks)
    if len(np.unique(groups)) < len(tracks):
        splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y, groups)
    else:
        parts = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for k, (_, test) in enumerate(parts):
        folds[test] = k
    return folds


def fold_splits(track_ids: np.ndarray, folds: np.ndarray) -> list[Split]:
    """One split per fold ``k`` of ``folds`` (a fold number per track): fold ``k``
    tests, fold ``k + 1`` validates, the others train."""
    track_ids, folds = np.asarray(track_ids), np.asarray(folds)
    k = int(folds.max()) + 1
    if k < 3:
        raise ValueError(f"{k} folds leave nothing to train on: one tests, the next validates; need at least 3")
    return [Split(tuple(track_ids[(folds != f) & (folds != (f + 1) % k)]),
                  tuple(track_ids[folds == (f + 1) % k]), tuple(track_ids[folds == f]))
            for f in range(k)]


def official_split(tracks: pd.DataFrame) -> Split:
    """The split recorded in a track table's ``split`` column (e.g. FMA's official one)."""
    return Split(*(tuple(tracks.track_id[tracks.split == s]) for s in SPLITS))


@dataclass(frozen=True, eq=False)
class SplitPlan:
    """Which tracks train, validate and test: an official split, or folds.

    ``folds`` (index ``track_id``, one column per repeat) holds the fold
    each labelled track tests in; split ``k`` of a repeat tests fold ``k``,
    validates fold ``k + 1`` (with two folds: the training fold) and trains
    on the rest. ``how`` describes the plan in words for the reports.
    With two tracks per class (20 GTZAN clips, say) there is no third fold to
    validate on: the validation set is then the training set, which early
    stopping and calibration see, and the test tracks stay unseen; ``how``
    says so.
    """

    how: str
    official: Split | None = None
    folds: pd.DataFrame | None = None

    def splits(self) -> list[Split]:
        """Every split of the plan: the official one, or each fold of each repeat."""
        if self.official is not None:
            return [self.official]
        ids = self.folds.index.to_numpy()
        out = []
        for r in self.folds.columns:
            f = self.folds[r].to_numpy(int)
            if f.max() >= 2:
                out += fold_splits(ids, f)
            else:  # two folds: nothing is left to validate on
                out += [Split(tuple(ids[f != k]), tuple(ids[f != k]), tuple(ids[f == k])) for k in (0, 1)]
        return out

    @property
    def holdout(self) -> Split:
        """The split every notebook reports on: the official one, or the first fold's."""
        return self.splits()[0]

    def to_dict(self) -> dict:
        return {"how": self.how,
                "official": None if self.official is None else {s: list(getattr(self.official, s))
                                                                for s in ("training", "validation", "test")},
                "folds": None if self.folds is None else
                {str(r): self.folds[r].astype(int).to_dict() for r in self.folds.columns}}

    @classmethod
    def from_dict(cls, d: dict) -> "SplitPlan":
        official = None if d["official"] is None else Split(*(tuple(d["official"][s])
                                                              for s in ("training", "validation", "test")))
        folds = None if d["folds"] is None else pd.DataFrame(
            {int(r): pd.Series(f) for r, f in d["folds"].items()}).rename_axis("track_id")
        return cls(d["how"], official, folds)

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SplitPlan":
        """Read a plan saved by :meth:`save` (notebook 01 writes ``<reports>/split.json``)."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no split plan; run notebook 01_eda first") from None


def plan_splits(tracks: pd.DataFrame, folds: int = 5, repeats: int = 1, seed: int = 0) -> SplitPlan:
    """The split plan of a track table's labelled tracks (see :class:`SplitPlan`).

    Official split when every labelled track has one; else ``repeats`` x
    ``k``-fold stratified with ``k = min(folds, tracks in the smallest class)``,
    grouped by artist (:func:`split_groups`) when every class has two groups
    or more (``k`` 2 when one has only two: a test and a training artist);
    else by track, and ``how`` says the figures are optimistic (a class of
    one artist can only be tested on the artist it trained on). Raises
    ValueError when a class has fewer than two tracks.
    """
    labelled = tracks[tracks.label.notna()].reset_index(drop=True)
    if len(labelled) and labelled.split.notna().all():
        return SplitPlan("the dataset's official split", official=official_split(labelled))
    counts = labelled.label.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise ValueError(f"need two classes with at least 2 labelled tracks each to hold tracks out, "
                         f"got {counts.to_dict()}")
    groups = pd.Series(split_groups(labelled)).groupby(labelled.label.to_numpy()).nunique()
    grouped = groups.min() >= 2 and groups.sum() < len(labelled)
    k = int(min(folds, counts.min(), 2 if grouped and groups.min() < 3 else folds))
    table = repeated_folds(labelled if grouped else labelled.assign(artist=pd.NA).drop(columns="recording", errors="ignore"),
                           k, repeats, seed).set_axis(labelled.track_id).rename_axis("track_id")
    validation = "the next fold" if k > 2 else "the training tracks themselves (only 2 per class)"
    by = ("grouped by artist (no artist on both sides)" if grouped else
          "by track" + (f", NOT grouped by artist: {groups.idxmin()!r} has {groups.min()} artist(s), so its test "
                        "tracks share artists with its training tracks and the figures are optimistic"
                        if groups.sum() < len(labelled) else ""))
    how = (f"stratified {k}-fold {by} (seed {seed}, {repeats} repeat(s)); reported split: test fold 0, "
           f"validation {validation}")
    return SplitPlan(how, folds=table.astype(int))


def split_column(tracks: pd.DataFrame, split: Split) -> pd.Series:
    """``training`` / ``validation`` / ``test`` per track of ``tracks`` (NA if in none);
    a track that both trains and validates counts as training."""
    names = {t: "validation" for t in split.validation} | {t: "training" for t in split.training}
    names |= {t: "test" for t in split.test}
    return tracks.track_id.map(names).astype("str").rename("split")


def cross_validate(splits: Sequence[Split], evaluate: Callable[[Split], Mapping[str, float]],
                   progress: Callable[[int, Mapping[str, float]], None] | None = None) -> pd.DataFrame:
    """The one cross-validation loop: ``evaluate`` each split, one row per split.

    ``evaluate`` trains on ``split.training`` (choosing on ``split.validation``
    whatever it chooses) and returns the test metrics of ``split.test``; its
    rows come back with a ``fold`` column (the split's position). ``progress``
    is called after each split with its position and metrics.
    """
    rows = []
    for k, split in enumerate(splits):
        metrics = dict(evaluate(split))
        rows.append({"fold": k, **metrics})
        if progress is not None:
            progress(k, metrics)
    return pd.DataFrame(rows)


def summarize(rows: pd.DataFrame, by: str | Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1; NaN for one run) of ``metrics`` per ``by``.

    Columns ``<metric>_mean``, ``<metric>_std`` and ``runs`` (rows per group), groups in order of appearance.
    """
    grouped = rows.groupby(by, sort=False)
    table = grouped[list(metrics)].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table["runs"] = grouped.size()
    return table
