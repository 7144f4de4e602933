"""The robustness report (reports/robustness.{json,md}, figures/robustness.png): the Markdown and the figure are
what utils.evaluation.robustness draws from the JSON, and the targets are read the way issue 13 states them."""
import json
from pathlib import Path

import pytest

from utils.evaluation.robustness import CHOSEN, checks, figure, markdown, rerender, stride_summary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = json.loads((ROOT / "reports" / "robustness.json").read_text())


def test_markdown_and_figure_are_drawn_from_the_json(tmp_path):
    results = rerender(RESULTS)
    assert results["checks"] == RESULTS["checks"] and results["window_stride"] == RESULTS["window_stride"]
    assert markdown(results) == (ROOT / "reports" / "robustness.md").read_text()
    figure(results, tmp_path / "robustness.png")
    assert (tmp_path / "robustness.png").read_bytes() == (ROOT / "reports" / "figures" / "robustness.png").read_bytes()


def summary(acc: dict[str, float], method: str = CHOSEN) -> list[dict]:
    return [{"method": method, "condition": c, "accuracy_mean": a, "accuracy_std": 0.0, "n_folds": 15}
            for c, a in acc.items()]


def test_targets_follow_the_issue():
    held = ["sox_gain_-20dB", "sox_gain_+6dB_clipped", "ffmpeg_opus_12k"]
    acc = {"clean": 0.90, "sox_gain_-20dB": 0.875, "sox_gain_+6dB_clipped": 0.869, "ffmpeg_opus_12k": 0.95}
    lofo = [{"family": "eq", "accuracy_mean": 0.85}, {"family": "room", "accuracy_mean": 0.95}]
    c = checks(summary(acc), lofo, held)
    assert c["clean_accuracy"]["ok"] and c["minus_20dB_gap"]["ok"] and not c["plus_6dB_clipped_gap"]["ok"]
    assert c["lofo_worst_family"] == {"value": 0.85, "at_least": 0.85, "ok": True}
    assert c["held_out_overall"]["value"] == pytest.approx((0.875 + 0.869 + 0.95) / 3)
    assert not c["held_out_overall"]["ok"] and c["held_out_worst"]["value"] == 0.869


def test_fewer_windows_within_one_point_needs_every_figure():
    held = ["a", "b"]
    exact = summary({"clean": 0.90, "a": 0.80, "b": 0.70})
    sparse = summary({"clean": 0.895, "a": 0.80, "b": 0.685}, f"{CHOSEN}, every 2 windows")
    s = stride_summary(exact + sparse, held)
    assert s["stride_2"]["held_out_worst"] == 0.685 and not s["stride_2"]["within_1_point"]
    sparse[2]["accuracy_mean"] = 0.695
    assert stride_summary(exact + sparse, held)["stride_2"]["within_1_point"]
