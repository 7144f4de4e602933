"""Metrics (known answers and scikit-learn agreement), figures, report files and the results table."""
import json

import matplotlib.image
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, top_k_accuracy_score

from utils.models.calibration import fit_temperature, log_probs
from utils.atomic import write_atomic, write_json
from utils.evaluation.metrics import classification_metrics
from utils.evaluation.plots import read_history
from utils.evaluation.reports import PUBLISHED, results_table, to_markdown, write_report, write_results_table

GENRES = ["blues", "classical", "metal", "pop"]


def noisy_predictions(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(GENRES), n)
    logits = rng.normal(0, 1, (n, len(GENRES)))
    logits[np.arange(n), y] += 1.5
    probs = np.exp(3 * logits)  # over-confident on purpose
    return y, probs / probs.sum(axis=1, keepdims=True)


def test_perfect_classifier_scores_one():
    y = np.array([0, 1, 2, 3, 3, 2, 1, 0, 0])
    m = classification_metrics(y, np.eye(4)[y], GENRES)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "top_2_accuracy"):
        assert m[key] == 1.0
    assert m["log_loss"] == 0.0 and m["ece"] == 0.0
    assert np.array_equal(m["confusion_matrix"], np.diag([3, 2, 2, 2]))
    assert np.array_equal(m["confusion_matrix_normalized"], np.eye(4))
    assert m["per_class"]["blues"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}


def test_uniform_predictor_log_loss_is_ln_c():
    y = np.array([0, 1, 2, 3, 1, 2])
    m = classification_metrics(y, np.full((6, 4), 0.25), GENRES)
    assert m["log_loss"] == pytest.approx(np.log(4))


def test_metrics_agree_with_scikit_learn():
    y, probs = noisy_predictions()
    m = classification_metrics(y, probs, GENRES)
    y_pred = probs.argmax(axis=1)
    assert m["n_samples"] == 400 and m["class_names"] == GENRES
    assert m["accuracy"] == pytest.approx(np.mean(y_pred == y))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, y_pred, average="macro"))
    assert m["top_2_accuracy"] == pytest.approx(top_k_accuracy_score(y, probs, k=2))
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(probs[np.arange(400), y])))
    counts = np.array(m["confusion_matrix"])
    assert counts.sum() == 400 and counts.sum(axis=1).tolist() == np.bincount(y, minlength=4).tolist()
    np.testing.assert_allclose(np.array(m["confusion_matrix_normalized"]).sum(axis=1), 1.0)
    recalls = [v["recall"] for v in m["per_class"].values()]
    assert recalls == pytest.approx(np.diag(m["confusion_matrix_normalized"]))


def test_hand_computed_example_and_binary_probabilities():
    # true:      0 0 0 1 1 ; predicted (p > 0.5): 0 0 1 1 0
    y = np.array([0, 0, 0, 1, 1])
    p_positive = np.array([0.1, 0.2, 0.7, 0.9, 0.4])
    m = classification_metrics(y, p_positive, ["rock", "hiphop"])
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["per_class"]["rock"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["hiphop"]["f1"] == pytest.approx(0.5)
    assert m["top_2_accuracy"] is None  # always 1 with two classes
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.3, 0.9, 0.4])))


def test_class_names_must_match_columns():
    with pytest.raises(ValueError, match="3 class names for 4"):
        classification_metrics(np.array([0]), np.full((1, 4), 0.25), GENRES[:3])


def test_write_report_files(tmp_path):
    y_val, p_val = noisy_predictions(seed=1)
    y, probs = noisy_predictions(seed=2)
    t = fit_temperature(log_probs(p_val), y_val)
    history = tmp_path / "history.csv"  # the columns Keras' CSVLogger writes
    history.write_text("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
                       "0,0.40,0.001,1.60,0.38,1.70\n1,0.55,0.001,1.20,0.50,1.40\n"
                       "2,0.63,0.001,1.00,0.52,1.35\n")
    paths = write_report(tmp_path / "reports", "cnn_gtzan", y, probs, GENRES, temperature=t,
                         history_csv=history)
    figures = tmp_path / "reports" / "figures"
    assert paths["metrics"] == tmp_path / "reports" / "cnn_gtzan_metrics.json"
    assert sorted(p.name for p in figures.iterdir()) == [
        f"cnn_gtzan_{kind}.png" for kind in
        ("confusion", "confusion_normalized", "learning_curves", "per_class_f1", "reliability")]
    for kind, path in paths.items():
        if kind != "metrics":
            assert matplotlib.image.imread(path).shape[2] in (3, 4)  # a readable PNG image
    saved = json.loads(paths["metrics"].read_text())
    assert saved["accuracy"] == pytest.approx(classification_metrics(y, probs, GENRES)["accuracy"])
    calibration = saved["calibration"]
    assert calibration["temperature"] == pytest.approx(t) and t > 1  # the predictions were over-confident
    assert calibration["ece_after"] < calibration["ece_before"]
    assert calibration["log_loss_after"] < calibration["log_loss_before"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_unreadable_history_names_the_file_and_writes_nothing(tmp_path):
    bad = tmp_path / "log.csv"
    bad.write_text("loss\n1.0\n")
    with pytest.raises(ValueError, match="log.csv: not a training log"):
        read_history(bad)
    with pytest.raises(ValueError, match="missing.csv: cannot read"):
        read_history(tmp_path / "missing.csv")
    y, probs = noisy_predictions(n=20)
    with pytest.raises(ValueError, match="log.csv"):
        write_report(tmp_path / "reports", "cnn", y, probs, GENRES, history_csv=bad)
    assert not (tmp_path / "reports").exists()  # no partial report


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = write_json(tmp_path / "m.json", {"accuracy": np.float32(0.5), "cm": np.eye(2, dtype=int)})
    assert json.loads(target.read_text()) == {"accuracy": 0.5, "cm": [[1, 0], [0, 1]]}

    def crash(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, crash)
    assert json.loads(target.read_text())["accuracy"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_results_table_marks_published_figures(tmp_path):
    ours = [{"model": "cnn", "dataset": "GTZAN sample", "split": "stratified 2-fold x 3",
             "accuracy": (0.8123, 0.0456), "macro_f1": 0.7, "log_loss": 0.912}]
    table = results_table(ours)
    assert table.loc[0].tolist() == ["ours", "cnn", "GTZAN sample", "stratified 2-fold x 3",
                                     "81.2 ± 4.6 %", "70.0 %", "0.912"]
    published = table[table.source.str.startswith("published: ")]
    assert len(published) == len(PUBLISHED) == 3
    assert "63.4 %" in published.accuracy.tolist() and "1.310" in published.log_loss.tolist()
    assert "fma_medium" in published.dataset.iloc[0]
    markdown = write_results_table(table, tmp_path / "results.md").read_text()
    assert markdown == to_markdown(table) and markdown.count("\n") == 2 + len(table)


def test_condition_accuracy_figure_draws_each_model_and_marks_trained_conditions(tmp_path):
    from utils.evaluation.plots import plot_condition_accuracy, save_figure

    accuracy = {"robust": {"clean": 0.9, "telephone": 0.7, "eq": 0.8}, "plain": {"clean": 0.92, "telephone": 0.4}}
    fig = plot_condition_accuracy(accuracy, trained=["clean", "eq"])
    ax = fig.axes[0]
    widths = sorted(round(b.get_width(), 2) for b in ax.patches if b.get_height() > 0 and b.get_width() > 0)
    assert widths == [0.4, 0.7, 0.8, 0.9, 0.92]  # every measured pair once; "plain" has no eq bar
    assert [t.get_text() for t in ax.get_yticklabels()] == ["clean (trained)", "telephone", "eq (trained)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["robust", "plain"]
    assert save_figure(fig, tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
