"""scripts/cv_experiment.py on the 20 real sample GTZAN clips: a tiny run (3 folds, 1 epoch, the cnn)
that checks the folds, the JSON and Markdown structure and that every number is in range."""
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils.data.datasets import gtzan
from utils.data.splits import fold_splits, folds_by_class

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cv = load_script("cv_experiment")


@pytest.fixture(scope="module")
def tracks(gtzan_sample):
    return gtzan(gtzan_sample)


def by_clip(tracks):
    """The sample without its artists: folds by clip (the sample's blues is one artist)."""
    return tracks.assign(artist=pd.NA).drop(columns="recording")


def test_folds_are_stratified_when_every_genre_fills_them(tracks):
    tracks = by_clip(tracks)
    folds, stratified = folds_by_class(tracks, 2, 3, seed=0)
    assert stratified and folds.shape == (3, len(tracks))
    for repeat in folds:  # 2 clips per genre, 2 folds: one clip of each genre per fold
        per_genre = tracks.assign(fold=repeat).groupby("label").fold.nunique()
        assert (per_genre == 2).all()


def test_folds_keep_an_artist_together_dealt_round_robin_when_too_few(tracks):
    from utils.data.splits import split_groups

    folds, stratified = folds_by_class(tracks, 2, 3, seed=0)  # the sample's blues, jazz, ... are one artist each
    assert not stratified
    groups = split_groups(tracks)
    for repeat in folds:
        assert (pd.Series(repeat).groupby(groups).nunique() == 1).all()  # no artist in two folds
        assert sorted(np.unique(repeat)) == [0, 1]


def test_too_few_clips_give_round_robin_folds_and_a_named_problem(tracks):
    tracks = by_clip(tracks)
    folds, stratified = folds_by_class(tracks, 3, 2, seed=0)
    assert not stratified
    for repeat in folds:
        assert (tracks.assign(fold=repeat).groupby("label").fold.nunique() == 2).all()
        assert np.ptp(np.bincount(repeat)) <= 1  # folds of equal size, to one clip
    assert not (folds[0] == folds[1]).all()  # each repeat reshuffles
    binary = tracks[tracks.label.isin(["classical", "metal"])].reset_index(drop=True)
    b_folds, _ = folds_by_class(binary, 3, 1, seed=0)
    problem = cv.split_problem(fold_splits(binary.track_id.to_numpy(), b_folds[0]),
                               binary.set_index("track_id").label)
    assert problem and "split" in problem


def test_fold_splits_rotate_test_and_validation_folds():
    ids, folds = np.arange(9), np.arange(9) % 3
    splits = fold_splits(ids, folds)
    assert [set(s.test) for s in splits] == [{0, 3, 6}, {1, 4, 7}, {2, 5, 8}]
    assert [set(s.validation) for s in splits] == [{1, 4, 7}, {2, 5, 8}, {0, 3, 6}]
    for s in splits:  # every clip in exactly one part
        assert sorted(s.training + s.validation + s.test) == list(ids)
    with pytest.raises(ValueError, match="at least 3"):
        fold_splits(ids, np.arange(9) % 2)


def test_folds_below_three_are_refused():
    with pytest.raises(SystemExit):
        cv.parse_args(["--folds", "2"])


def in_unit(x) -> bool:
    return 0.0 <= x <= 1.0


@pytest.mark.slow
def test_tiny_run_on_the_sample_writes_a_consistent_report_and_resumes(tmp_path, gtzan_sample, monkeypatch):
    argv = ["--gtzan", str(gtzan_sample), "--out", str(tmp_path / "reports"), "--work",
            str(tmp_path / "work"), "--folds", "3", "--epochs", "1", "--models", "cnn", "--ablate-augment",
            "--baseline-repeats", "2"]
    assert cv.main(argv) == 0
    saved = json.loads((tmp_path / "reports" / "cv_gtzan.json").read_text())
    assert Path(saved["data"]["root"]) == gtzan_sample
    assert "skipped" in saved["tasks"]["binary"]  # 2 clips per genre cannot fill 3 binary folds
    multi = saved["tasks"]["multiclass"]
    assert not multi["stratified"] and len(multi["classes"]) == 10 and multi["n_tracks"] == 20
    assert all(len(f) == 2 and set(f) <= {0, 1, 2} for f in multi["folds"].values())
    cnn = multi["cnn"]
    assert len(cnn["per_fold"]) == 3 and cnn["runs"]["cnn"]["epochs"] == [1, 1, 1]
    assert cnn["runs"]["cnn"]["seconds"] > 0
    for row in cnn["per_fold"]:
        assert all(in_unit(row[m]) for m in ("accuracy", "macro_f1", "balanced_accuracy", "window_accuracy"))
        assert math.isfinite(row["log_loss"]) and row["log_loss"] > 0
    base = multi["baselines"]
    assert set(base["same_splits"]) == {"logreg", "knn", "svm", "mlp"}
    assert all(s["n_folds"] == 3 for s in base["same_splits"].values())
    assert all(s["n_folds"] == 6 for s in base["all_repeats"].values())
    for s in [*base["all_repeats"].values(), *cnn["summary"].values()]:
        assert in_unit(s["accuracy_mean"]) and s["accuracy_std"] >= 0 and in_unit(s["macro_f1_mean"])
    # the baselines' first repeat is the CNN's split: same test tracks per fold
    assert {r["n_test"] for r in base["per_fold"] if r["repeat"] == 0} <= {6, 7}
    # the choice of model reads validation scores only: per split, and how many variants were tried
    assert all(in_unit(r["val_accuracy"]) and r["val_log_loss"] > 0 for r in cnn["per_fold"])
    assert all(in_unit(r["val_accuracy"]) for r in base["per_fold"])
    sel = multi["selection"]
    assert sel["variants_tried"] == {"cnn": 1, "baseline": 4} and sel["cnn"]["chosen"] == ["cnn"] * 3
    assert len(sel["baseline"]["chosen"]) == 3 and set(sel["baseline"]["chosen"]) <= set(base["same_splits"])
    assert sel["cnn"]["summary"]["accuracy_mean"] == pytest.approx(cnn["summary"]["cnn"]["accuracy_mean"])
    assert saved["provenance"]["command"].startswith("python ") and saved["provenance"]["date"]
    report = (tmp_path / "reports" / "cv_gtzan.md").read_text()
    assert "NOT stratified" in report and "published:" in report and "binary: skipped" in report
    assert report == cv.markdown(saved) and "Million Song Dataset" in report
    summary = (tmp_path / "reports" / "cv_gtzan_summary.md").read_text()
    assert summary == cv.summary_markdown(saved) and "CNN selected by validation** (of 1 variants)" in summary
    assert (tmp_path / "reports" / "figures" / "cv_gtzan_multiclass.png").stat().st_size > 10_000
    # a second run finds every fold finished: same numbers, the time measured when it trained
    assert cv.main(argv) == 0
    again = json.loads((tmp_path / "reports" / "cv_gtzan.json").read_text())["tasks"]["multiclass"]["cnn"]
    assert [r["accuracy"] for r in again["per_fold"]] == [r["accuracy"] for r in cnn["per_fold"]]
    assert again["runs"]["cnn"]["seconds"] == cnn["runs"]["cnn"]["seconds"]
    # changed code: fold runs are keyed by a hash of the code, so none of the old ones is reused
    runs = tmp_path / "work" / gtzan_sample.name / "runs" / "multiclass"
    assert len(list(runs.glob("cnn-*-r0-fold0"))) == 1
    monkeypatch.setattr(cv, "code_hash", lambda paths: "other code")
    assert cv.main(argv) == 0
    assert len(list(runs.glob("cnn-*-r0-fold0"))) == 2


def test_a_folder_that_is_not_gtzan_is_a_clear_error(tmp_path, sample, capsys):
    argv = ["--gtzan", str(sample / "fma" / "audio"), "--out", str(tmp_path / "reports"), "--work", str(tmp_path)]
    assert cv.main(argv) == 1
    assert "not in the GTZAN layout" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_an_absent_gtzan_folder_is_one_line(tmp_path, capsys):
    argv = ["--gtzan", str(tmp_path / "absent"), "--out", str(tmp_path / "reports"), "--work", str(tmp_path)]
    assert cv.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cv_experiment: ") and "absent" in err[0], err
    assert not (tmp_path / "reports").exists()


def test_selection_reads_validation_scores_only():
    """Per split the variant with the best validation score is chosen, whatever its test score."""
    import pandas as pd

    per_fold = pd.DataFrame([
        {"model": "a", "repeat": 0, "fold": 0, "val_log_loss": 0.9, "accuracy": 1.0},
        {"model": "b", "repeat": 0, "fold": 0, "val_log_loss": 0.5, "accuracy": 0.2},
        {"model": "a", "repeat": 0, "fold": 1, "val_log_loss": 0.4, "accuracy": 0.3},
        {"model": "b", "repeat": 0, "fold": 1, "val_log_loss": 0.4, "accuracy": 0.9},  # a tie: the first listed
    ])
    chosen = cv.select_by_validation(per_fold, "val_log_loss", lower_is_better=True)
    assert chosen.selected.tolist() == ["b", "a"] and chosen.accuracy.tolist() == [0.2, 0.3]
    best_val_acc = cv.select_by_validation(per_fold.assign(val_accuracy=[0.1, 0.2, 0.3, 0.3]), "val_accuracy",
                                           lower_is_better=False)
    assert best_val_acc.selected.tolist() == ["b", "a"]
