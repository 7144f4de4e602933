"""The shipped fma-small model: its card, its report, and prediction on real audio of any length."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SAMPLE
from utils.audio.frontend import FMA_SMALL
from utils.data.pictures import GENRES
from utils.models.card import load_card
from utils.models.predict import load_predictor, model_path

MODEL = model_path("fma-small")
AUDIO = SAMPLE / "fma" / "audio"


@pytest.fixture(scope="module")
def predictor():
    return load_predictor("fma-small")


def test_the_card_says_what_the_model_is_and_how_it_was_chosen():
    card = load_card(MODEL)
    assert card.labels == GENRES and card.frontend == FMA_SMALL and card.architecture == "cnn1d"
    assert "test split was not read" in card.training["selection"] and card.training["members"]
    selection = json.loads((ROOT / "reports" / "fma_small_selection.json").read_text())
    assert card.metrics["validation"] == pytest.approx(selection["ensemble"]["validation"])
    assert card.temperature == pytest.approx(selection["ensemble"]["temperature"])
    assert sorted(card.training["variants_tried"]) == sorted(selection["variants"])


def test_the_report_quotes_the_model_as_evaluate_scores_it():
    report = json.loads((ROOT / "reports" / "fma_small.json").read_text())
    card = load_card(MODEL)
    # the report scores the shipped model through evaluate_folder; the card's figures come from the training
    # script's own pass over the same pictures: one model, one split, the same accuracy
    assert report["model"]["validation"]["accuracy"] == pytest.approx(card.metrics["validation"]["accuracy"],
                                                                      abs=0.5 / 800)
    assert report["data"]["test"].startswith("sealed")


def test_predict_with_fma_small_on_the_sample_clips(tmp_path):
    out = subprocess.run([sys.executable, "-m", "utils.apps.cli", "predict", str(AUDIO), "--model", "fma-small",
                          "--format", "json", "--output", str(tmp_path / "p.json")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "p.json").read_text())
    rows = rows["tracks"] if isinstance(rows, dict) else rows
    assert len(rows) == 10
    for row in rows:
        assert row["genre"] in GENRES and row["windows_analysed"] == 1
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_a_full_length_song_is_judged_on_its_middle_30_seconds_alone(predictor, tmp_path, monkeypatch):
    """Only the excerpt is decoded: libsndfile is asked for 30 s, from the middle, whatever the length."""
    import soundfile

    song = tmp_path / "song.mp3"
    clips = sorted(AUDIO.rglob("*.mp3"))[:6]
    subprocess.run(["ffmpeg", "-v", "error", *sum((["-i", str(c)] for c in clips), []), "-filter_complex",
                    f"concat=n={len(clips)}:v=0:a=1", "-c:a", "libmp3lame", "-b:a", "192k", str(song)], check=True)
    asked: list[int] = []
    read = soundfile.SoundFile.read

    def counting(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return read(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", counting)
    result = predictor.predict_file(song)
    assert asked == [30 * 44100]
    middle = soundfile.info(str(song)).duration // 2 - 15  # FMA's excerpt of a 3 min song: from about 75 s
    assert len(result.window_times) == 1 and result.window_times[0] == pytest.approx(middle, abs=0.02)
    assert result.genre in GENRES and np.isclose(result.probabilities.sum(), 1.0)
    assert result.segments()[0][1] - result.segments()[0][0] == pytest.approx(30.0)
