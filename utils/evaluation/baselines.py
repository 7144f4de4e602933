"""Scikit-learn baselines on hand-crafted features, judged by repeated stratified k-fold.

The four classifiers of the FMA paper's baselines (Defferrard et al., ISMIR
2017), each a :class:`~sklearn.pipeline.Pipeline` that standardises the
features first: logistic regression, k-nearest neighbours, an RBF SVM and a
one-hidden-layer MLP. :func:`cv_folds` draws the seeded fold assignment once,
so the CNNs can be trained and judged on exactly the same folds, and
:func:`repeated_cv` accepts any other assignment (for example folds that
keep an artist's tracks together).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from utils.data.splits import summarize


def make_baselines(seed: int = 0, n_neighbors: int = 5) -> dict[str, Pipeline]:
    """The baseline pipelines by name: ``logreg``, ``knn``, ``svm``, ``mlp``.

    scikit-learn defaults as in the FMA paper, except more iterations so the
    solvers converge on standardised features. ``n_neighbors`` must not
    exceed the smallest training fold (FMA used 200 on fma_medium's 20,000
    training tracks; 5 suits tens of clips). ``seed`` fixes the MLP's
    initialisation.
    """
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=n_neighbors)),
        "svm": make_pipeline(StandardScaler(), SVC(kernel="rbf")),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,), max_iter=2000,
                                                             random_state=seed)),
    }


def repeated_cv(models: Mapping[str, ClassifierMixin], X: np.ndarray, y: np.ndarray,
                folds: np.ndarray) -> pd.DataFrame:
    """Fit and test every model on every fold; one row per (model, repeat, fold).

    Parameters
    ----------
    models : name -> unfitted scikit-learn classifier (cloned for each fold)
    X : features, ``(n_samples, n_features)``
    y : labels, ``(n_samples,)``
    folds : fold of each sample, ``(n_samples,)`` or ``(n_repeats, n_samples)``
        (from :func:`cv_folds` or precomputed); in each repeat every fold is
        the test set once and the others are the training set.

    Returns
    -------
    DataFrame with columns model, repeat, fold, n_train, n_test, accuracy,
    macro_f1 (over the classes in the test fold or its predictions).
    """
    X, y = np.asarray(X), np.asarray(y)
    folds = np.atleast_2d(np.asarray(folds))
    if folds.shape[1] != len(y) or len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows, y {len(y)} labels and folds {folds.shape[1]} columns")
    rows = []
    for repeat, assignment in enumerate(folds):
        for fold in np.unique(assignment):
            test = assignment == fold
            if len(np.unique(y[~test])) < 2:
                raise ValueError(f"repeat {repeat}, fold {fold}: training set has fewer than 2 classes")
            for name, model in models.items():
                y_pred = clone(model).fit(X[~test], y[~test]).predict(X[test])
                rows.append({"model": name, "repeat": repeat, "fold": int(fold),
                             "n_train": int((~test).sum()), "n_test": int(test.sum()),
                             "accuracy": accuracy_score(y[test], y_pred),
                             "macro_f1": f1_score(y[test], y_pred, average="macro", zero_division=0)})
    return pd.DataFrame(rows)


def summarize_cv(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (over all folds of all repeats, ddof 1) per model."""
    return summarize(per_fold, "model", ("accuracy", "macro_f1")).rename(columns={"runs": "n_folds"})


def result_rows(summary: pd.DataFrame, dataset: str, split: str) -> list[dict]:
    """Rows for :func:`utils.evaluation.reports.results_table` from a :func:`summarize_cv` table."""
    return [{"model": f"{name} (hand-crafted features)", "dataset": dataset, "split": split,
             "accuracy": (row.accuracy_mean, row.accuracy_std),
             "macro_f1": (row.macro_f1_mean, row.macro_f1_std)} for name, row in summary.iterrows()]
