"""``fma-genre baselines``: the scikit-learn baselines cross-validated on a features CSV."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from utils.apps.cli.arguments import positive_int
from utils.data.splits import cv_folds
from utils.evaluation.baselines import make_baselines, repeated_cv, summarize_cv
from utils.evaluation.features import load_features
from utils.atomic import write_json
from utils.errors import FmaGenreError


def add(sub: argparse._SubParsersAction) -> None:
    """Register the ``baselines`` subcommand."""
    p = sub.add_parser(
        "baselines", help="cross-validate the scikit-learn baselines on a features CSV",
        description="Repeated stratified k-fold of logistic regression, k-NN, RBF SVM and MLP "
                    "(standardised features) on a CSV from `fma-genre features`, grouped by artist "
                    "(GTZAN clips: Sturm's index; any files: --artists), so no artist is on both "
                    "sides of a fold; prints mean ± std accuracy and macro-F1 over all folds.")
    p.add_argument("features", type=Path, help="features CSV (from `fma-genre features`)")
    p.add_argument("--labels", type=Path,
                   help="CSV: first column matches the features' index, second is the label "
                        "(default: each file's folder name, the GTZAN layout)")
    p.add_argument("--artists", type=Path,
                   help="CSV: first column matches the features' index, second is the artist (default: GTZAN "
                        "clips by Sturm's index, data/gtzan_artists.txt; other files ungrouped)")
    p.add_argument("--classes", nargs="+", help="keep only these labels (e.g. classical metal)")
    p.add_argument("--folds", type=positive_int, default=5, help="k of stratified k-fold (default 5)")
    p.add_argument("--repeats", type=positive_int, default=10,
                   help="repeats with reshuffled folds (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the MLP (default 0)")
    p.add_argument("--neighbors", type=positive_int, default=5, help="k of k-NN (default 5)")
    p.add_argument("--out", type=Path, help="also write summary and per-fold scores as JSON")
    p.set_defaults(run=run)


def _labels_for(table: pd.DataFrame, labels_csv: Path | None) -> pd.Series:
    if labels_csv is None:  # GTZAN layout: <genre>/<file>
        return pd.Series([Path(p).parent.name for p in table.index], index=table.index)
    labels = pd.read_csv(labels_csv, index_col=0).iloc[:, 0]
    labels.index = labels.index.astype(str)
    return labels.reindex(table.index.astype(str)).set_axis(table.index)


def _groups_for(table: pd.DataFrame, artists_csv: Path | None) -> tuple[np.ndarray | None, str]:
    """Each row's artist group (:func:`utils.data.splits.split_groups`) and how it was found; None: ungrouped."""
    from utils.data.datasets import gtzan_index
    from utils.data.splits import split_groups

    if artists_csv is not None:
        artists = pd.read_csv(artists_csv, index_col=0).iloc[:, 0]
        artists.index = artists.index.astype(str)
        who = pd.DataFrame({"artist": artists.reindex(table.index.astype(str)).to_numpy()})
        return split_groups(who), f"grouped by artist ({artists_csv})"
    index = gtzan_index()
    stems = [Path(p).stem for p in table.index]
    if not any(s in index for s in stems):
        return None, "not grouped by artist (no --artists, and not GTZAN clips)"
    who = pd.DataFrame([index.get(s, (None, None)) for s in stems], columns=["artist", "recording"])
    return split_groups(who), "grouped by artist (Sturm's GTZAN index)"


def run(args: argparse.Namespace) -> int:
    table = load_features(args.features)
    labels = _labels_for(table, args.labels)
    keep = labels.notna() & (labels.isin(args.classes) if args.classes else True)
    table, labels = table[keep], labels[keep]
    classes = sorted(labels.unique())
    if len(classes) < 2:
        raise FmaGenreError(args.features, f"fewer than 2 classes among {len(table)} labelled rows")
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    groups, grouped = _groups_for(table, args.artists)
    folds = cv_folds(y, args.folds, args.repeats, args.seed, groups=groups)
    per_fold = repeated_cv(make_baselines(args.seed, args.neighbors), table.to_numpy(), y, folds)
    summary = summarize_cv(per_fold)
    split = f"stratified {args.folds}-fold x {args.repeats} repeats, {grouped}, seed {args.seed}"
    print(f"{len(y)} samples, {len(classes)} classes ({', '.join(classes)}), {split}")
    for name, row in summary.iterrows():
        print(f"{name:>7}: accuracy {row.accuracy_mean:.3f} ± {row.accuracy_std:.3f}   "
              f"macro-F1 {row.macro_f1_mean:.3f} ± {row.macro_f1_std:.3f}")
    if args.out:
        write_json(args.out, {"features": str(args.features), "classes": classes, "n_samples": len(y),
                              "split": split, "summary": summary.reset_index().to_dict("records"),
                              "per_fold": per_fold.to_dict("records")})
    return 0
