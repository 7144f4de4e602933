"""Baselines and repeated stratified k-fold on 20 real GTZAN clips (2 per genre of ../shared/data/gtzan_mini)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils import audio
from utils.data.splits import cv_folds
from utils.evaluation.baselines import make_baselines, repeated_cv, result_rows, summarize_cv
from utils.evaluation.reports import results_table
from utils.evaluation.features import feature_vector, features_table, save_features
from utils.apps.cli import main

SR, SEGMENT_S, N_SEGMENTS = 22050, 3, 10


@pytest.fixture(scope="module")
def clip_features(gtzan_wavs) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """One feature vector per 30 s GTZAN clip (2 per genre), integer genre labels and genre names."""
    table, failures = features_table(gtzan_wavs, progress=False)
    assert not failures
    genres = sorted({p.parent.name for p in gtzan_wavs})
    return table, np.array([genres.index(Path(p).parent.name) for p in table.index]), genres


@pytest.fixture(scope="module")
def segment_features(gtzan_wavs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classical vs metal (4 clips): features of ten 3 s segments per clip, label 1 = metal, clip index."""
    clips = [p for p in gtzan_wavs if p.parent.name in ("classical", "metal")]
    rows, labels, clip_ids = [], [], []
    for i, path in enumerate(clips):
        y = audio.load(path, SR)
        for k in range(N_SEGMENTS):
            rows.append(feature_vector(y[k * SEGMENT_S * SR:(k + 1) * SEGMENT_S * SR]))
            labels.append(int(path.parent.name == "metal"))
            clip_ids.append(i)
    return pd.DataFrame(rows).to_numpy(), np.array(labels), np.array(clip_ids)


def test_cv_folds_are_stratified_and_seeded():
    y = np.repeat(np.arange(10), 7)  # gtzan_mini's shape: 7 clips per genre
    folds = cv_folds(y, n_splits=5, n_repeats=3, seed=0)
    assert folds.shape == (3, 70) and set(np.unique(folds)) == set(range(5))
    for repeat in folds:
        for fold in range(5):
            per_class = np.bincount(y[repeat == fold], minlength=10)
            assert per_class.min() >= 1 and per_class.max() <= 2  # 7 / 5 rounded either way
    np.testing.assert_array_equal(folds, cv_folds(y, 5, 3, seed=0))
    assert not np.array_equal(folds, cv_folds(y, 5, 3, seed=1))
    assert not np.array_equal(folds[0], folds[1])  # each repeat reshuffles


def test_ten_genres_on_real_clips_consistent_shapes(clip_features):
    table, y, genres = clip_features
    assert table.shape == (20, 308) and len(genres) == 10
    folds = cv_folds(y, n_splits=2, n_repeats=2, seed=0)
    per_fold = repeated_cv(make_baselines(seed=0), table.to_numpy(), y, folds)
    assert len(per_fold) == 4 * 2 * 2
    assert per_fold.groupby(["model", "repeat"]).n_test.sum().eq(20).all()  # each clip tested once a repeat
    assert per_fold.n_train.add(per_fold.n_test).eq(20).all()
    assert per_fold[["accuracy", "macro_f1"]].stack().between(0, 1).all()
    summary = summarize_cv(per_fold)
    assert summary.index.tolist() == ["logreg", "knn", "svm", "mlp"]
    assert summary.n_folds.tolist() == [4] * 4
    for metric in ("accuracy", "macro_f1"):
        expected = per_fold.groupby("model")[metric].agg(["mean", "std"])
        np.testing.assert_allclose(summary[f"{metric}_mean"], expected.loc[summary.index, "mean"])
        np.testing.assert_allclose(summary[f"{metric}_std"], expected.loc[summary.index, "std"])
    mlp = {"mlp": make_baselines(seed=0)["mlp"]}  # the one baseline with random initialisation
    again = repeated_cv(mlp, table.to_numpy(), y, folds[:1])
    pd.testing.assert_frame_equal(again, per_fold[(per_fold.model == "mlp") & (per_fold.repeat == 0)]
                                  .reset_index(drop=True))  # seeded: the same numbers twice


def test_classical_vs_metal_separates(segment_features):
    X, y, clip_ids = segment_features
    # folds drawn over the 4 clips and given to their segments, so no clip is in train and test at once
    clip_labels = np.array([y[clip_ids == c][0] for c in range(4)])
    folds = cv_folds(clip_labels, n_splits=2, n_repeats=5, seed=0)[:, clip_ids]
    per_fold = repeated_cv(make_baselines(seed=0), X, y, folds)
    assert per_fold.n_test.eq(20).all() and per_fold.n_train.eq(20).all()
    worst = per_fold.groupby("model").accuracy.min()
    mean = per_fold.groupby("model").accuracy.mean()
    # measured (seed 0): logreg, knn and mlp 1.0 on all 10 folds; svm mean 0.835
    assert worst.max() == 1.0  # some baseline is right on every segment of every held-out clip
    assert (mean > 0.5).all()  # and every baseline beats chance


def test_precomputed_folds_and_errors(clip_features):
    table, y, _ = clip_features
    one_repeat = cv_folds(y, 2, 1, seed=3)[0]  # 1-D: a single assignment
    per_fold = repeated_cv({"logreg": make_baselines()["logreg"]}, table.to_numpy(), y, one_repeat)
    assert per_fold.repeat.eq(0).all() and sorted(per_fold.fold) == [0, 1]
    with pytest.raises(ValueError, match="fewer than 2 classes"):
        repeated_cv(make_baselines(), table.to_numpy(), y, np.where(y == 0, 0, 1))
    with pytest.raises(ValueError, match="folds 19 columns"):
        repeated_cv(make_baselines(), table.to_numpy(), y, one_repeat[:19])


def test_summary_feeds_the_results_table(clip_features):
    table, y, _ = clip_features
    summary = summarize_cv(repeated_cv(make_baselines(), table.to_numpy(), y, cv_folds(y, 2, 1, 0)))
    rows = result_rows(summary, "GTZAN sample (20 clips)", "stratified 2-fold x 1")
    results = results_table(rows)
    ours = results[results.source == "ours"]
    assert ours.model.tolist() == [f"{m} (hand-crafted features)" for m in ("logreg", "knn", "svm", "mlp")]
    assert ours.accuracy.str.contains("±").all()


def test_cli(clip_features, tmp_path, capsys):
    table, _, _ = clip_features
    features_csv = save_features(table, tmp_path / "features.csv")
    out = tmp_path / "baselines.json"
    assert main(["baselines", str(features_csv), "--classes", "classical", "metal", "pop",
                 "--folds", "2", "--repeats", "2", "--neighbors", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("6 samples, 3 classes (classical, metal, pop), stratified 2-fold x 2 repeats, grouped by artist "
            "(Sturm's GTZAN index), seed 0") in printed
    saved = json.loads(out.read_text())
    assert saved["classes"] == ["classical", "metal", "pop"] and len(saved["per_fold"]) == 4 * 2 * 2
    assert [row["model"] for row in saved["summary"]] == ["logreg", "knn", "svm", "mlp"]
    assert main(["baselines", str(features_csv), "--folds", "3"]) == 1  # 2 clips per genre
    assert "n_splits=3 cannot be greater than the number of members in each class" in capsys.readouterr().err
    assert main(["baselines", str(tmp_path / "missing.csv")]) == 1 and "missing.csv: cannot read features CSV" in capsys.readouterr().err
