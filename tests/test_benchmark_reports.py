"""reports/benchmarks_predict.{json,md} describe the shipped model and quote the current robustness report:
a retrained model, a new robustness run or another default window budget without a new benchmark run fails here."""
import importlib.util
import json
from pathlib import Path

from utils.models.runtime import source_hash

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("benchmark_predict", ROOT / "benchmarks" / "predict.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
REPORT = json.loads((ROOT / "reports" / "benchmarks_predict.json").read_text())


def test_benchmark_measured_the_shipped_model():
    assert REPORT["model_sha256"] == source_hash(ROOT / "models" / "default.keras")


def test_the_budgets_accuracy_is_the_robustness_reports():
    from benchmarks.full_length import budget_accuracy

    assert REPORT["songs"]["cross_validated"] == budget_accuracy()


def test_the_default_budget_is_the_one_measured():
    from utils.models.predict import DEFAULT_BUDGET

    assert REPORT["songs"]["default_budget"] == DEFAULT_BUDGET


def test_markdown_is_drawn_from_the_json():
    assert bench.markdown(REPORT) == (ROOT / "reports" / "benchmarks_predict.md").read_text()
