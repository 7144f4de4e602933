"""Prediction on real audio: streamed windows, track averaging, long files in bounded memory, bad files."""
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from utils import audio
from utils.audio.frontend import LogMel, windows
from utils.models.card import ModelCardError
from utils.models.predict import load_predictor


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_predictor(tiny_model)


def test_a_clip_gets_track_and_window_probabilities(predictor, fma_mp3s):
    result = predictor.predict_file(fma_mp3s[0])
    assert result.labels == ("classical", "metal")
    assert result.probabilities.shape == (2,) and result.probabilities.sum() == pytest.approx(1.0)
    assert result.window_probabilities.shape == (20, 2)  # 30 s: 19 windows every 64 frames + one flush with the end
    np.testing.assert_allclose(np.diff(result.window_times[:-1]), 64 * 512 / 22050)
    assert result.genre in result.labels and result.top(1)[0][0] == result.genre
    assert result.segments()[0][0] == 0.0 and result.segments()[-1][1] == pytest.approx(
        result.window_times[-1] + result.window_seconds)


def test_streaming_prediction_equals_the_model_on_whole_track_windows(predictor, gtzan_wavs):
    fe = predictor.frontend
    result = predictor.predict_file(gtzan_wavs[3])
    whole = windows(LogMel(fe)(audio.load(gtzan_wavs[3], fe.sample_rate)), fe)
    np.testing.assert_allclose(result.window_probabilities, predictor.model(whole), atol=1e-5)
    np.testing.assert_allclose(result.probabilities, result.window_probabilities.mean(axis=0), atol=1e-6)


def test_the_tiny_model_tells_its_own_genres_apart(predictor, sample):
    # trained on these very clips for 2 epochs: a check that labels line up with outputs
    for genre in ("classical", "metal"):
        assert predictor.predict_file(sample / "gtzan" / genre / f"{genre}.00000.wav").genre == genre


def test_long_file_in_bounded_memory(predictor, gtzan_wavs, tmp_path):
    clip, sr = sf.read(gtzan_wavs[0], dtype="int16")
    long_file = tmp_path / "twenty_minutes.wav"
    sf.write(long_file, np.tile(clip, 40), sr, subtype="PCM_16")
    tracemalloc.start()
    result = predictor.predict_file(long_file)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.window_times[-1] > 19 * 60
    decoded_whole = 1200 * sr * 4
    assert peak < decoded_whole / 2, f"peak {peak / 1e6:.0f} MB of numpy/Python allocations"


def test_many_files_in_threads_keep_order_and_report_bad_ones(predictor, gtzan_wavs, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3" + b"\0" * 100)
    paths = [gtzan_wavs[0], bad, gtzan_wavs[1], gtzan_wavs[2]]
    one = list(predictor.predict_files(paths, jobs=1))
    two = list(predictor.predict_files(paths, jobs=2))
    assert [p for p, _ in two] == paths
    assert isinstance(two[1][1], audio.AudioError) and str(bad) in str(two[1][1])
    for (_, a), (_, b) in zip(one[::2], two[::2]):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def test_excerpt_times_start_at_the_offset(predictor, fma_mp3s):
    result = predictor.predict_file(fma_mp3s[1], offset=10.0, duration=10.0)
    assert result.window_times[0] == 10.0 and len(result.window_times) == 6


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelCardError, match="no such model file"):
        load_predictor(tmp_path / "none.keras")
