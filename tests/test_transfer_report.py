"""scripts/transfer_report.py (transfer_experiment.py's report): the committed Markdown is what
its JSON renders to, and row (a) is the best from-scratch CNN of scripts/cv_experiment.py's committed results."""
import importlib.util
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("transfer_report", ROOT / "scripts" / "transfer_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def test_row_a_is_the_best_cnn_of_the_cv_experiment():
    """Row (a) against figures computed here from the per-fold scores, not from the summary the code reads."""
    row = report.from_scratch_row(ROOT / "reports" / "cv_gtzan.json")
    per_fold = json.loads((ROOT / "reports" / "cv_gtzan.json").read_text())["tasks"]["multiclass"]["cnn"]["per_fold"]
    scores: dict[str, dict[str, list[float]]] = {}
    for fold in per_fold:
        for metric in ("accuracy", "macro_f1", "log_loss"):
            scores.setdefault(fold["model"], {}).setdefault(metric, []).append(fold[metric])
    best = max(scores, key=lambda model: statistics.fmean(scores[model]["accuracy"]))
    for metric in ("accuracy", "macro_f1", "log_loss"):
        values = scores[best][metric]
        assert row[metric] == pytest.approx((statistics.fmean(values), statistics.stdev(values)), abs=1e-12)
    assert best in row["model"] and row["split"].startswith(f"5-fold x {len(values) // 5}")
    assert report.from_scratch_row(ROOT / "reports" / "missing.json") is None


def test_committed_markdown_is_rendered_from_the_committed_json():
    results = json.loads((ROOT / "reports" / "transfer_results.json").read_text())
    assert report.markdown(results) == (ROOT / "reports" / "transfer_results.md").read_text()
    assert "pending" not in report.markdown(results)
    without = report.markdown(results | {"from_scratch_cnn": None})
    assert "(a) the from-scratch CNN is missing" in without
