"""The shipped model card quotes the robustness report it came from, figure for figure.

The card is written by ``scripts/robustness_experiment.py --save-default``; a
rerun of the experiment without re-shipping (or a hand edit of either file)
leaves them apart, and this test says so.
"""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CARD = json.loads((ROOT / "models" / "default.card.json").read_text())["metrics"]["cross_validation"]
REPORT = json.loads((ROOT / "reports" / "robustness.json").read_text())


def test_the_card_names_its_report_and_split():
    assert CARD["report"] == "reports/robustness.json"
    assert CARD["split"] == REPORT["split"]


@pytest.mark.parametrize("row", [r for r in REPORT["summary"] if r["method"] == "chosen by nested validation"],
                         ids=lambda r: r["condition"])
def test_each_condition_of_the_card_equals_the_report(row):
    quoted = CARD["per_condition"][row["condition"]]
    assert quoted["accuracy"] == pytest.approx(row["accuracy_mean"], abs=1e-12)
    assert quoted["accuracy_std"] == pytest.approx(row["accuracy_std"], abs=1e-12)


def test_leave_one_family_out_and_targets_equal_the_report():
    assert CARD["leave_one_family_out"] == pytest.approx(
        {r["family"]: r["accuracy_mean"] for r in REPORT["lofo_summary"]}, abs=1e-12)
    assert CARD["checks"] == REPORT["checks"]
    assert set(CARD["per_condition"]) == {r["condition"] for r in REPORT["summary"]}
