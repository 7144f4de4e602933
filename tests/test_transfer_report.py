"""scripts/transfer_report.py (transfer_experiment.py's report): the committed Markdown is what
its JSON renders to, and row (a) is the best from-scratch CNN of scripts/cv_experiment.py's committed results."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("transfer_report", ROOT / "scripts" / "transfer_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def test_row_a_is_the_best_cnn_of_the_cv_experiment():
    row = report.from_scratch_row(ROOT / "reports" / "cv_gtzan.json")
    summary = json.loads((ROOT / "reports" / "cv_gtzan.json").read_text())["tasks"]["multiclass"]["cnn"]["summary"]
    best = max(s["accuracy_mean"] for s in summary.values())
    assert row["accuracy"][0] == best and row["split"].startswith("5-fold x 1")
    assert report.from_scratch_row(ROOT / "reports" / "missing.json") is None


def test_committed_markdown_is_rendered_from_the_committed_json():
    results = json.loads((ROOT / "reports" / "transfer_results.json").read_text())
    assert report.markdown(results) == (ROOT / "reports" / "transfer_results.md").read_text()
    assert "pending" not in report.markdown(results)
    without = report.markdown(results | {"from_scratch_cnn": None})
    assert "(a) the from-scratch CNN is missing" in without
