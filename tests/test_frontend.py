"""The log-Mel front end: agreement with librosa on real audio, known answers, windows, batches."""
import json

import librosa
import numpy as np
import pytest
import soundfile as sf

from utils import audio
from utils.audio.frontend import (MUSICNN, FrontEnd, LogMel, fix_frames, logmel_files, stream_windows,
                                  window_starts, windows)
from utils.audio.levels import normalize_level
from utils.audio.mel import mel_filterbank


def librosa_logmel(y: np.ndarray, fe: FrontEnd) -> np.ndarray:
    S = librosa.feature.melspectrogram(y=y, sr=fe.sample_rate, n_fft=fe.n_fft, hop_length=fe.hop_length,
                                       n_mels=fe.n_mels, fmin=fe.fmin, fmax=fe.fmax)
    if fe.log == "db":
        return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None).T
    return np.log10(10000 * S + 1).T


@pytest.mark.parametrize("fe", [FrontEnd(), MUSICNN, FrontEnd(n_fft=1024, hop_length=256, n_mels=64, fmin=30, fmax=8000)],
                         ids=["default", "musicnn", "custom"])
def test_matches_librosa_on_the_real_sample(fe, fma_wavs, fma_mp3s):
    """Same samples in, so this compares the spectrogram arithmetic alone. Tolerance:
    every bin within 0.05 dB (the largest gaps, ~0.02 dB, sit near -85 dB where float32
    rounding of tiny powers shows), and the mean gap below 1e-4 dB."""
    lm = LogMel(fe)
    for path in fma_wavs[::4] + fma_mp3s[::4]:
        y = audio.load(path, fe.sample_rate)
        ours, theirs = lm(y), librosa_logmel(y, fe)
        assert ours.shape == theirs.shape == (1 + y.size // fe.hop_length, fe.n_mels)
        gap = np.abs(ours - theirs)
        assert gap.max() < 0.05 and gap.mean() < 1e-4, (path, gap.max(), gap.mean())


def test_end_to_end_wav_equals_the_naive_librosa_pipeline(fma_wavs):
    fe = FrontEnd()
    ours = LogMel(fe)(audio.load(fma_wavs[0], fe.sample_rate))
    y, _ = librosa.load(fma_wavs[0], sr=fe.sample_rate)
    np.testing.assert_allclose(ours, librosa_logmel(y, fe), atol=0.05)


def test_pure_tone_peaks_in_its_mel_band():
    fe = FrontEnd()
    t = np.arange(fe.sample_rate * 2) / fe.sample_rate
    for freq in (220.0, 1000.0, 5000.0):
        S = LogMel(fe)(0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32))
        centres = librosa.mel_frequencies(fe.n_mels + 2, fmin=fe.fmin, fmax=fe.sample_rate / 2)[1:-1]
        assert S[10:-10].mean(axis=0).argmax() == np.abs(centres - freq).argmin()


def test_silence_sits_at_the_floor():
    fe = FrontEnd()
    S = LogMel(fe)(np.zeros(fe.sample_rate, np.float32))
    assert np.all(S == fe.floor) and fe.floor == pytest.approx(-100.0)


def test_streamed_blocks_equal_the_whole(fma_mp3s):
    fe = FrontEnd()
    lm = LogMel(fe)
    y = audio.load(fma_mp3s[0], fe.sample_rate)
    for sizes in ([y.size], [100, 5000, 300000], [fe.n_fft - 1] * 3 + [y.size]):
        cuts = np.cumsum(sizes)[:-1]
        streamed = np.concatenate(list(lm.stream(np.split(y, cuts[cuts < y.size]))))
        np.testing.assert_array_equal(streamed, lm(y))


def test_windows_cover_the_track_with_overlap():
    fe = FrontEnd()
    S = np.arange(300 * fe.n_mels, dtype=np.float32).reshape(300, fe.n_mels)
    w = windows(S, fe)
    starts = window_starts(300, fe)
    assert list(starts) == [0, 64, 128, 172]  # every 64 frames, and one flush with the end
    assert w.shape == (4, 128, fe.n_mels)
    np.testing.assert_array_equal(w[1], S[64:192])
    np.testing.assert_array_equal(w[-1], S[-128:])


def test_short_tracks_are_repeated_or_refused():
    fe = FrontEnd()
    S = np.random.default_rng(0).uniform(0.0, 1.0, (100, fe.n_mels)).astype(np.float32)
    w = windows(S, fe)
    expected = normalize_level(np.concatenate([S, S[:28]])[None], fe)
    assert w.shape == (1, 128, fe.n_mels) and np.array_equal(w, expected)
    with pytest.raises(audio.TooShortError, match="clip.wav: too short: 0.70 s of audio, at least 1.49 s"):
        windows(S[:30], fe, source="clip.wav")


def test_fix_frames_crops_and_repeats():
    S = np.arange(30, dtype=np.float32).reshape(10, 3)
    assert np.array_equal(fix_frames(S, 4), S[:4])
    filled = fix_frames(S, 25)
    assert filled.shape == (25, 3) and filled.dtype == S.dtype
    assert np.array_equal(filled[:10], S) and np.array_equal(filled[10:20], S) and np.array_equal(filled[20:], S[:5])


def test_frontend_is_validated_and_round_trips(tmp_path):
    fe = FrontEnd(n_mels=96)
    fe.to_json(tmp_path / "fe.json")
    assert FrontEnd.from_json(tmp_path / "fe.json") == fe
    assert json.loads((tmp_path / "fe.json").read_text())["n_mels"] == 96
    with pytest.raises(ValueError, match="unknown front-end parameters"):
        FrontEnd.from_dict({**fe.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="log must be"):
        FrontEnd(log="ln")
    with pytest.raises(ValueError, match="fmax"):
        FrontEnd(fmax=20000)


def test_batch_yields_errors_and_goes_on(tmp_path, fma_wavs):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    paths = [fma_wavs[0], bad, fma_wavs[1]]
    lm = LogMel(FrontEnd())
    ahead = list(logmel_files(paths, lm, prefetch=2))
    inline = list(logmel_files(paths, lm, prefetch=0))
    assert [p for p, _ in ahead] == paths
    assert isinstance(ahead[1][1], audio.NotAudioError) and "bad.wav" in str(ahead[1][1])
    for (_, a), (_, b) in zip(ahead[::2], inline[::2]):
        np.testing.assert_array_equal(a, b)


def test_float_wav_above_full_scale_is_kept(tmp_path, fma_wavs):
    # louder than 0 dBFS is unusual but finite: decoded as is, not an error
    y, sr = sf.read(fma_wavs[0], dtype="float32")
    loud = tmp_path / "loud.wav"
    sf.write(loud, 4 * y, sr, subtype="FLOAT")
    assert np.abs(audio.load(loud, sr)).max() > 1.0


@pytest.mark.parametrize("n_frames", [70, 128, 300, 1293])
def test_streamed_windows_equal_windows_of_the_whole(n_frames):
    fe = FrontEnd()
    S = np.random.default_rng(0).normal(size=(n_frames, fe.n_mels)).astype(np.float32)
    whole = windows(S, fe)
    for block in (1, 50, 128, 1000):
        got = list(stream_windows((S[i:i + block] for i in range(0, n_frames, block)), fe))
        assert [s for s, _ in got] == list(window_starts(n_frames, fe))
        np.testing.assert_array_equal(np.stack([w for _, w in got]), whole)


def test_streamed_windows_refuse_a_too_short_track():
    fe = FrontEnd()
    with pytest.raises(audio.TooShortError, match="x.mp3: too short"):
        list(stream_windows([np.zeros((10, fe.n_mels), np.float32)], fe, source="x.mp3"))


@pytest.mark.parametrize("fe", [FrontEnd(), MUSICNN, FrontEnd(fmin=30.0, fmax=8000.0, n_mels=64),
                                FrontEnd(sample_rate=44100, n_fft=4096, n_mels=40, fmin=1500.0)])
def test_mel_filterbank_is_librosas_to_the_bit(fe):
    ours = mel_filterbank(fe.sample_rate, fe.n_fft, fe.n_mels, fe.fmin, fe.fmax)
    theirs = librosa.filters.mel(sr=fe.sample_rate, n_fft=fe.n_fft, n_mels=fe.n_mels, fmin=fe.fmin, fmax=fe.fmax)
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, theirs.T)
