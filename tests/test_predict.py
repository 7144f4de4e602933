"""Prediction on real audio: streamed windows, track averaging, long files in bounded memory, bad files."""
import shutil
import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY_MODEL_CLIPS
from utils import audio
from utils.audio.budget import budget_windows
from utils.audio.frontend import LogMel, windows
from utils.models.calibration import apply_temperature, log_probs
from utils.models.card import ModelCardError
from utils.models.pooling import mean_per_track
from utils.models.predict import load_predictor


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return load_predictor(tiny_model)


def test_a_clip_gets_track_and_window_probabilities(predictor, fma_mp3s):
    result = predictor.predict_file(fma_mp3s[0])
    assert result.labels == tuple(TINY_MODEL_CLIPS)
    assert result.probabilities.shape == (2,) and result.probabilities.sum() == pytest.approx(1.0)
    assert result.window_probabilities.shape == (20, 2)  # 30 s: 19 windows every 64 frames + one flush with the end
    np.testing.assert_allclose(np.diff(result.window_times[:-1]), 64 * 512 / 22050)
    assert result.genre in result.labels and result.top(1)[0][0] == result.genre
    assert result.segments()[0][0] == 0.0 and result.segments()[-1][1] == pytest.approx(
        result.window_times[-1] + result.window_seconds)


def test_streaming_prediction_equals_the_model_on_whole_track_windows(predictor, fma_wavs):
    fe = predictor.frontend
    result = predictor.predict_file(fma_wavs[3])
    whole = windows(LogMel(fe)(audio.load(fma_wavs[3], fe.sample_rate)), fe)
    np.testing.assert_allclose(result.window_probabilities, predictor.model(whole), atol=1e-5)
    np.testing.assert_allclose(result.probabilities, result.window_probabilities.mean(axis=0), atol=1e-6)


def test_the_tiny_model_tells_its_own_genres_apart(predictor):
    # trained on these very clips for 2 epochs: a check that labels line up with outputs
    for genre, clip in TINY_MODEL_CLIPS.items():
        assert predictor.predict_file(clip).genre == genre


def test_long_file_in_bounded_memory(predictor, fma_wavs, tmp_path):
    clip, sr = sf.read(fma_wavs[0], dtype="int16")
    long_file = tmp_path / "twenty_minutes.wav"
    sf.write(long_file, np.tile(clip, 40), sr, subtype="PCM_16")
    tracemalloc.start()
    result = predictor.predict_file(long_file)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.window_times[-1] > 19 * 60
    decoded_whole = 1200 * sr * 4
    assert peak < decoded_whole / 2, f"peak {peak / 1e6:.0f} MB of numpy/Python allocations"


def test_many_files_in_threads_keep_order_and_report_bad_ones(predictor, fma_wavs, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3" + b"\0" * 100)
    paths = [fma_wavs[0], bad, fma_wavs[1], fma_wavs[2]]
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


@pytest.fixture(scope="module")
def shipped():
    """The shipped musicnn model: 3 s windows that do not overlap, so a stride skips whole windows."""
    return load_predictor(None, jobs=2)


def test_windows_batched_across_tracks_equal_one_by_one_on_the_sample(shipped, sample, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3" + b"\0" * 100)
    paths = audio.find_audio([sample])[::3]  # a spread of the sample's clips
    paths.insert(3, bad)
    alone = {p: shipped.predict_file(p) for p in paths if p != bad}
    for jobs in (1, 2, 3):
        batched = list(shipped.predict_files(paths, jobs=jobs))
        assert [p for p, _ in batched] == paths and isinstance(batched[3][1], audio.AudioError)
        for path, result in batched[:3] + batched[4:]:
            np.testing.assert_array_equal(result.window_times, alone[path].window_times)
            np.testing.assert_allclose(result.window_probabilities, alone[path].window_probabilities, rtol=0,
                                       atol=1e-5)
            np.testing.assert_allclose(result.probabilities, alone[path].probabilities, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def long_song(tmp_path_factory, fma_wavs):
    """A 2.5-minute song: five clips of the sample joined, as a LAME MP3 at 44.1 kHz stereo."""
    folder = tmp_path_factory.mktemp("song")
    wav = folder / "song.wav"
    sf.write(wav, np.concatenate([sf.read(p, dtype="float32")[0] for p in fma_wavs[:10:2]]), 22050)
    mp3 = folder / "song.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "44100", "-ac", "2",
                    "-c:a", "libmp3lame", "-b:a", "192k", str(mp3)], check=True)
    return mp3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt-get install ffmpeg)")
def test_a_budget_judges_a_song_on_spread_windows_that_equal_a_full_decode(long_song):
    every = load_predictor(None, jobs=1, max_windows=None)
    budget = load_predictor(None, jobs=1, max_windows=8)
    a, b = every.predict_file(long_song), budget.predict_file(long_song)
    keep = budget_windows(len(a.window_times), 8)
    assert len(a.window_times) == 51 and len(b.window_times) == 8  # 150 s: 50 windows and a flush one
    np.testing.assert_array_equal(b.window_times, a.window_times[keep])
    # each window decoded on its own, by seeking into the MP3, as the whole decode gave it
    np.testing.assert_allclose(b.window_probabilities, a.window_probabilities[keep], rtol=0, atol=1e-3)
    assert b.to_dict()["windows_analysed"] == 8 and b.to_dict()["window_budget"] == 8
    assert a.to_dict()["window_budget"] is None and a.to_dict()["windows_analysed"] == 51
    segments = b.segments()  # the analysed windows only: none covers audio the model did not hear
    assert sum(e - s for s, e, _, _ in segments) == pytest.approx(8 * b.window_seconds)
    batched = dict(budget.predict_files([long_song], jobs=2))
    np.testing.assert_allclose(batched[long_song].probabilities, b.probabilities, rtol=0, atol=1e-5)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (apt-get install ffmpeg)")
def test_a_budget_reads_an_mp3s_frame_index_once(long_song, monkeypatch):
    from utils.audio import seek

    walks = []
    real = seek._mp3
    monkeypatch.setattr(seek, "_mp3", lambda path: walks.append(path) or real(path))
    assert len(load_predictor(None, jobs=1, max_windows=8).predict_file(long_song).window_times) == 8
    assert len(walks) == 1  # one walk and check serve the length and every excerpt


def test_a_track_within_the_budget_is_judged_on_every_window(fma_mp3s):
    every = load_predictor(None, jobs=1, max_windows=None).predict_file(fma_mp3s[0])
    within = load_predictor(None, jobs=1, max_windows=16).predict_file(fma_mp3s[0])
    np.testing.assert_array_equal(within.window_times, every.window_times)
    np.testing.assert_allclose(within.probabilities, every.probabilities, rtol=0, atol=1e-6)
    excerpt = load_predictor(None, jobs=1, max_windows=2).predict_file(fma_mp3s[0], duration=5.0)
    assert len(excerpt.window_times) == 2  # an excerpt is streamed: one window and a flush window
    with pytest.raises(ValueError, match="max_windows"):
        load_predictor(None, max_windows=0)
    with pytest.raises(ValueError, match="placement"):
        load_predictor(None, placement="everywhere")


def test_a_budget_that_falls_on_silence_listens_to_the_rest(fma_wavs, tmp_path):
    y, sr = sf.read(fma_wavs[0], dtype="float32")
    song = np.zeros(sr * 120, np.float32)
    song[sr * 48:sr * 51] = y[:sr * 3]  # 3 s of music between the spread windows, the rest digital silence
    path = tmp_path / "mostly_silent.wav"
    sf.write(path, song, sr, subtype="PCM_16")
    budget = load_predictor(None, jobs=1, max_windows=4)
    starts = budget.budget_starts(path) * budget.frontend.hop_length / budget.frontend.sample_rate
    assert not any(s <= 48 < s + 3 or s < 51 <= s + 3 for s in starts)  # no chosen window hears the music
    result = budget.predict_file(path)
    assert result.window_audible.any() and len(result.window_times) > 4  # it went on to the rest of the file
    assert np.all(np.diff(result.window_times) > 0)


def test_silent_stretches_carry_no_genre(shipped, fma_wavs, tmp_path):
    # 15 s of digital silence either side of a real clip: a lead-in and a run-out
    clip, sr = sf.read(fma_wavs[0], dtype="int16")
    padded = tmp_path / "lead_in.wav"
    sf.write(padded, np.concatenate([np.zeros(15 * sr, np.int16), clip, np.zeros(15 * sr, np.int16)]), sr,
             subtype="PCM_16")
    alone, result = shipped.predict_file(fma_wavs[0]), shipped.predict_file(padded)
    heard = result.window_audible
    assert alone.window_audible.all() and not heard[:4].any() and not heard[-4:].any() and heard.sum() >= 10
    def track(windows):  # the card's calibration on the mean of the windows
        return apply_temperature(log_probs(windows.mean(axis=0, keepdims=True)), shipped.temperature)[0]

    np.testing.assert_allclose(result.probabilities, track(result.window_probabilities[heard]), atol=1e-6)
    every_window = track(result.window_probabilities)
    assert result.genre == alone.genre
    assert np.abs(result.probabilities - alone.probabilities).max() < np.abs(every_window - alone.probabilities).max()
    segments = result.segments()
    assert segments[0][2] == segments[-1][2] == "silence" and segments[0][:2] == (0.0, pytest.approx(15.0, abs=3))
    batched = dict(shipped.predict_files([padded], jobs=2))[padded]
    np.testing.assert_array_equal(batched.window_audible, heard)
    np.testing.assert_allclose(batched.probabilities, result.probabilities, rtol=0, atol=1e-5)


def test_a_track_with_no_audible_window_is_the_mean_of_all():
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.4, 0.6]])
    track = np.array([0, 0, 1, 1])
    means = mean_per_track(probs, track, 2, heard=np.array([True, False, False, False]))
    np.testing.assert_allclose(means, [[0.9, 0.1], [0.3, 0.7]])
    np.testing.assert_allclose(mean_per_track(probs, track, 2), [[0.7, 0.3], [0.3, 0.7]])


def test_the_shipped_model_knows_the_genre_of_its_gtzan_training_clips(gtzan_wavs):
    """Two clips per genre of ../shared/data/gtzan_mini, training clips of the shipped model: judged as
    `fma-genre predict` judges them, every one gets its genre. A check that training on artists never on
    both sides of a fold did not cost what the model already knew, not an accuracy estimate."""
    from utils.models.predict import DEFAULT_BUDGET

    budget = load_predictor(None, max_windows=DEFAULT_BUDGET)
    answers = {p.parent.name + "/" + p.name: r.genre for p, r in budget.predict_files(gtzan_wavs)}
    assert [k for k, g in answers.items() if not k.startswith(g + "/")] == []
