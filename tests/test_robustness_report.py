"""The robustness report (reports/robustness.{json,md}, its headline and figures): the Markdown and the figures are
what utils.evaluation.robustness draws from the JSON, its folds never put an artist on both sides, and its
targets are read the way the artist issue states them."""
import json
from pathlib import Path

import numpy as np
import pytest

from utils.evaluation.nested import CHOSEN, OLD, VARIANTS
from utils.evaluation.robustness import budget_summary, checks, figures, headline_markdown, markdown, rerender

ROOT = Path(__file__).resolve().parents[1]
RESULTS = json.loads((ROOT / "reports" / "robustness.json").read_text())


def test_markdown_and_figures_are_drawn_from_the_json(tmp_path):
    results = rerender(RESULTS)
    assert results["checks"] == RESULTS["checks"] and results["windows_analysed"] == RESULTS["windows_analysed"]
    assert markdown(results) == (ROOT / "reports" / "robustness.md").read_text()
    assert headline_markdown(results) == (ROOT / "reports" / "robustness_headline.md").read_text()
    figures(results, tmp_path)
    for name in ("robustness.png", "robustness_curve.png"):
        assert (tmp_path / name).read_bytes() == (ROOT / "reports" / "figures" / name).read_bytes()


def test_the_committed_run_kept_every_artist_on_one_side_of_every_fold():
    folds, groups = np.asarray(RESULTS["folds"]), np.asarray(RESULTS["groups"])
    assert folds.shape == (3, RESULTS["n_clips"]) and RESULTS["n_clips"] == 99 and "grouped by artist" in RESULTS["split"]
    for repeat in folds:
        for g in np.unique(groups):
            assert len(set(repeat[groups == g])) == 1
    assert RESULTS["n_variants_tried"] == len(VARIANTS) and set(RESULTS["variants"]) == set(VARIANTS)
    assert len(RESULTS["choices"]) == 15 and RESULTS["shipped_variant"] in VARIANTS


def summary(acc: dict[str, float], method: str = CHOSEN) -> list[dict]:
    return [{"method": method, "condition": c, "accuracy_mean": a, "accuracy_std": 0.0, "n_folds": 15}
            for c, a in acc.items()]


def test_targets_follow_the_issue():
    held = ["sox_gain_-20dB", "sox_gain_+6dB_clipped", "ffmpeg_opus_12k"]
    acc = {"clean": 0.80, "sox_gain_-20dB": 0.78, "sox_gain_+6dB_clipped": 0.76, "ffmpeg_opus_12k": 0.79}
    c = checks(summary(acc) + summary({"clean": 0.74}, OLD), held)
    assert c["beats_old_recipe"]["ok"] and c["beats_old_recipe"]["value"] == pytest.approx(0.06)
    assert c["aim_clean_accuracy"]["ok"] and c["minus_20dB_gap"]["ok"] and not c["plus_6dB_clipped_gap"]["ok"]
    assert c["held_out_overall_gap"]["value"] == pytest.approx(0.80 - (0.78 + 0.76 + 0.79) / 3)
    assert c["held_out_overall_gap"]["ok"] and c["held_out_worst_gap"]["worst"] == "sox_gain_+6dB_clipped"
    assert not checks(summary(acc) + summary({"clean": 0.76}, OLD), held)["beats_old_recipe"]["ok"]


def test_fewer_windows_within_one_point_needs_every_figure():
    held = ["a", "b"]
    rows = summary({"clean": 0.90, "a": 0.80, "b": 0.70})
    for name in ("every 2 windows", *(f"{n} windows, {p}" for n in (3, 5, 8) for p in ("spread", "middle"))):
        rows += summary({"clean": 0.895, "a": 0.80, "b": 0.685}, f"{CHOSEN}, {name}")
    s = budget_summary(rows, held)
    assert s["8 windows, spread"]["held_out_worst"] == 0.685 and not s["8 windows, spread"]["within_1_point"]
    rows[-1]["accuracy_mean"] = 0.695  # the "8 windows, middle" row of condition b
    assert budget_summary(rows, held)["8 windows, middle"]["within_1_point"]
