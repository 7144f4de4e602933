"""Degradations: known answers on generated signals (tones, an impulse), sizes and SNR on real clips."""
import numpy as np
import pytest
import scipy.signal

from utils import audio
from utils.audio.degrade import (DEGRADATIONS, Mp3, PinkNoise, RandomDegradation, Reverb, Telephone,
                           encode_mp3)

SR = 22050  # GTZAN's rate, the sample WAVs'


@pytest.fixture(scope="module")
def clip(fma_wavs) -> np.ndarray:
    """10 s of a real clip (FMA 000002, Hip-Hop) at 22,050 Hz."""
    return audio.load(fma_wavs[0], SR, offset=5.0, duration=10.0)


def tone(freq: float, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def gain_db(y_in: np.ndarray, y_out: np.ndarray, sr: int = SR) -> float:
    """Level change in dB, measured on the middle second (filter transients excluded)."""
    mid = slice(sr // 2, 3 * sr // 2)
    return 10 * np.log10(np.mean(y_out[mid].astype(np.float64) ** 2) / np.mean(y_in[mid] ** 2.0))


def test_telephone_keeps_1khz_and_removes_100hz_and_5khz():
    phone = Telephone()
    gains = {f: gain_db(tone(f), phone(tone(f), SR)) for f in (100, 1000, 5000)}
    assert abs(gains[1000]) < 0.5, gains
    assert gains[100] < -30, gains   # 1.6 octaves below 300 Hz at 24 dB per octave
    assert gains[5000] < -60, gains  # above the 4 kHz Nyquist of the 8 kHz channel


def test_pink_noise_snr_and_slope(clip):
    noisy = PinkNoise(10.0)(clip, SR, seed=3)
    noise = noisy.astype(np.float64) - clip
    snr = 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(snr - 10.0) < 0.5
    f, psd = scipy.signal.welch(noise, SR, nperseg=8192)
    band = (f >= 50) & (f <= 8000)
    slope = np.polyfit(np.log2(f[band]), 10 * np.log10(psd[band]), 1)[0]  # dB per octave
    assert slope == pytest.approx(-3.01, abs=0.3)
    assert np.array_equal(noisy, PinkNoise(10.0)(clip, SR, seed=3))
    assert not np.array_equal(noisy, PinkNoise(10.0)(clip, SR, seed=4))


def test_mp3_32k_bitrate_length_and_rate(clip):
    data = encode_mp3(clip, SR, 32000)
    assert len(data) * 8 / (len(clip) / SR) == pytest.approx(32000, rel=0.05)
    out = Mp3(32000)(clip, SR)
    assert out.shape == clip.shape and out.dtype == np.float32
    # sample-aligned (FFmpeg trims LAME's delay): the round trip still follows the waveform
    assert np.corrcoef(out, clip)[0, 1] > 0.9
    lag = np.argmax(scipy.signal.correlate(out[:SR], clip[:SR], mode="full", method="fft")) - (SR - 1)
    assert lag == 0
    with pytest.raises(ValueError, match="MP3 cannot carry"):
        Mp3()(clip, 20000)


def schroeder_rt60(h: np.ndarray, sr: int) -> float:
    """RT60 from the backward-integrated energy decay, fitted from -5 to -25 dB (T20 x 3)."""
    edc = np.cumsum((h.astype(np.float64) ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    fit = (edc_db <= -5) & (edc_db >= -25)
    slope = np.polyfit(np.arange(len(h))[fit] / sr, edc_db[fit], 1)[0]  # dB per second
    return -60 / slope


def test_reverb_decays_by_60_db_in_rt60():
    impulse = np.zeros(SR, np.float32)
    impulse[0] = 1.0
    h = Reverb(rt60=0.5, drr_db=0.0)(impulse, SR, seed=1)
    assert schroeder_rt60(h, SR) == pytest.approx(0.5, rel=0.1)
    direct, reverberant = h[0] ** 2, np.sum(h[1:].astype(np.float64) ** 2)
    assert 10 * np.log10(direct / reverberant) == pytest.approx(0.0, abs=0.1)


def test_reverb_keeps_level_of_real_clip(clip):
    wet = Reverb()(clip, SR, seed=0)
    assert wet.shape == clip.shape
    assert np.sqrt(np.mean(wet**2.0)) == pytest.approx(np.sqrt(np.mean(clip**2.0)), rel=1e-3)


def test_every_degradation_keeps_length_rate_and_is_seeded(clip):
    for name, degrade in DEGRADATIONS.items():
        out = degrade(clip, SR, seed=7)
        assert out.shape == clip.shape and out.dtype == np.float32 and np.isfinite(out).all(), name
        assert np.array_equal(out, degrade(clip, SR, seed=7)), name
        assert not np.allclose(out, clip, atol=1e-3), name


def test_random_degradation_draws_every_kind_from_seed(clip):
    aug = RandomDegradation(p_clean=0.2)
    short = clip[: 2 * SR]
    drawn = [aug(short, SR, seed=s)[0] for s in range(30)]
    assert set(drawn) == set(DEGRADATIONS) | {"clean"}
    name, y = aug(short, SR, seed=5)
    assert aug(short, SR, seed=5)[0] == name and np.array_equal(aug(short, SR, seed=5)[1], y)
    with pytest.raises(ValueError, match="degradations must be among"):
        RandomDegradation(names=("vinyl",))


def test_degradation_refuses_non_mono():
    with pytest.raises(ValueError, match="mono"):
        PinkNoise()(np.zeros((2, 100), np.float32), SR)
