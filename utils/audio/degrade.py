"""Real-world degradations of audio, for robustness tests and training-time augmentation.

Users' music is not studio-clean. Each degradation here is a frozen dataclass
called as ``d(y, sr, seed) -> y'``: a pure function of mono float32 samples
``y`` at ``sr`` Hz returning as many samples at the same rate, so a degraded
clip goes through the same front end as a clean one. Random ones draw
everything from ``numpy.random.default_rng(seed)``.

- :class:`Mp3` -- encoded and decoded with LAME (FFmpeg's ``libmp3lame``
  through PyAV) at 32 kbit/s constant bit rate: low-bitrate streaming or old
  file-sharing MP3s. FFmpeg trims the encoder delay and padding, so the
  output is sample-aligned with the input.
- :class:`Telephone` -- resampled to 8 kHz (soxr's anti-alias filter removes
  everything above 4 kHz), band-passed to 300-3400 Hz by a causal
  Butterworth filter, resampled back: the narrowband telephone channel.
- :class:`PinkNoise` -- additive 1/f noise (-3 dB per octave) at a set SNR
  over the whole clip: a noisy room or a laptop microphone's hiss.
- :class:`Reverb` -- convolution with a synthetic room impulse response:
  a direct path plus Gaussian noise under an exponential envelope that
  decays 60 dB in ``rt60`` seconds, at a set direct-to-reverberant ratio.

:data:`DEGRADATIONS` names the four test conditions; :class:`RandomDegradation`
applies a random one of them, for augmentation.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.signal
import soxr

# Sample rates an MPEG-1/2/2.5 layer III stream can carry, in Hz.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


class Degradation(Protocol):
    """Mono samples at ``sr`` Hz in, as many samples at ``sr`` Hz out; random draws from ``seed``."""

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray: ...


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"expected non-empty mono samples of shape (n,), got {y.shape}")
    return y


def encode_mp3(y: np.ndarray, sr: int, bitrate: int = 32000) -> bytes:
    """MP3 bytes of mono samples ``y`` at ``sr`` Hz, constant ``bitrate`` in bit/s (LAME)."""
    import av

    y = _mono(y)
    if sr not in MP3_RATES:
        raise ValueError(f"MP3 cannot carry {sr} Hz; resample to one of {MP3_RATES}")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sr, layout="mono")
        stream.bit_rate = bitrate
        size = stream.codec_context.frame_size or 1152
        for start in range(0, len(y), size):
            frame = av.AudioFrame.from_ndarray(y[None, start:start + size], format="flt", layout="mono")
            frame.sample_rate, frame.pts = sr, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):  # flush the encoder's look-ahead
            container.mux(packet)
    return buf.getvalue()


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate (Hz) of MP3 bytes, encoder delay and padding removed."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate
        to_float = av.AudioResampler(format="flt", layout="mono", rate=sr)
        parts = [out.to_ndarray()[0] for frame in container.decode(stream) for out in to_float.resample(frame)]
    return np.concatenate(parts).astype(np.float32), sr


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad ``y`` at the end to ``n`` samples."""
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


@dataclass(frozen=True)
class Mp3:
    """MP3 round trip at ``bitrate`` bit/s (32 kbit/s: the lowest MPEG-1 rate, plainly audible).

    ``sr`` must be an MP3 rate (:data:`MP3_RATES`); deterministic, ``seed`` is unused.
    """

    bitrate: int = 32000

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        y = _mono(y)
        out, _ = decode_mp3(encode_mp3(y, sr, self.bitrate))
        return _fit_length(out, len(y))


@dataclass(frozen=True)
class Telephone:
    """Narrowband telephone channel: ``rate`` Hz, ``low_hz``-``high_hz`` pass band.

    An ``order``-th order Butterworth band-pass (``order / 2`` poles per
    edge: 24 dB per octave outside the band with the default 8), applied
    causally at ``rate`` Hz; deterministic, ``seed`` is unused.
    """

    low_hz: float = 300.0
    high_hz: float = 3400.0
    rate: int = 8000
    order: int = 8

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        y = _mono(y)
        narrow = soxr.resample(y, sr, self.rate, quality="HQ")
        sos = scipy.signal.butter(self.order // 2, (self.low_hz, self.high_hz), btype="bandpass",
                                  fs=self.rate, output="sos")
        band = scipy.signal.sosfilt(sos, narrow).astype(np.float32)
        return _fit_length(soxr.resample(band, self.rate, sr, quality="HQ"), len(y))


def pink_noise(n: int, sr: int, rng: np.random.Generator, low_hz: float = 20.0) -> np.ndarray:
    """``n`` samples of unit-power Gaussian pink noise (power density ~ 1/f) above ``low_hz`` Hz.

    White noise shaped in the frequency domain by ``1 / sqrt(f)``; bins below
    ``low_hz`` (inaudible, and where 1/f would pile up its power) are zeroed.
    """
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spectrum *= np.where(f >= low_hz, 1 / np.sqrt(np.maximum(f, low_hz)), 0.0)
    noise = np.fft.irfft(spectrum, n)
    return noise / np.sqrt(np.mean(noise**2))


@dataclass(frozen=True)
class PinkNoise:
    """Add pink noise at ``snr_db`` dB below the clip's mean power (20 Hz to Nyquist)."""

    snr_db: float = 10.0

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        y = _mono(y)
        power = np.mean(y.astype(np.float64) ** 2)
        noise = pink_noise(len(y), sr, np.random.default_rng(seed))
        return (y + np.sqrt(power * 10 ** (-self.snr_db / 10)) * noise).astype(np.float32)


def room_impulse_response(sr: int, rt60: float, drr_db: float, rng: np.random.Generator,
                          predelay: float = 0.005) -> np.ndarray:
    """A synthetic room impulse response, ``1.5 rt60`` seconds long at ``sr`` Hz.

    A unit direct path at sample 0, then from ``predelay`` seconds a diffuse
    tail of Gaussian noise whose amplitude falls as ``10 ** (-3 t / rt60)``
    (60 dB of energy in ``rt60`` s), scaled so that direct / tail energy is
    ``drr_db`` dB.
    """
    t = np.arange(round(1.5 * rt60 * sr)) / sr
    rir = rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60)
    rir[t < predelay] = 0.0
    rir *= np.sqrt(10 ** (-drr_db / 10) / np.sum(rir**2))
    rir[0] = 1.0  # the direct path
    return rir


@dataclass(frozen=True)
class Reverb:
    """Convolve with :func:`room_impulse_response` (``rt60`` s, ``drr_db`` dB); keeps the clip's RMS.

    RT60 0.5 s is a living room or classroom; a 0 dB direct-to-reverberant
    ratio puts the microphone at about the room's critical distance.
    """

    rt60: float = 0.5
    drr_db: float = 0.0

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        y = _mono(y)
        rir = room_impulse_response(sr, self.rt60, self.drr_db, np.random.default_rng(seed))
        wet = scipy.signal.fftconvolve(y.astype(np.float64), rir)[:len(y)]
        gain = np.sqrt(np.mean(y.astype(np.float64) ** 2) / max(np.mean(wet**2), 1e-30))
        return (gain * wet).astype(np.float32)


# The robustness conditions of issue 10, by the names reports use.
DEGRADATIONS: dict[str, Degradation] = {
    "mp3_32k": Mp3(32000),
    "telephone": Telephone(300.0, 3400.0, 8000),
    "pink_noise_10db": PinkNoise(10.0),
    "reverb_0.5s": Reverb(0.5),
}


@dataclass(frozen=True)
class RandomDegradation:
    """Training-time augmentation: one of ``names`` (from :data:`DEGRADATIONS`) at random,
    or the clean clip with probability ``p_clean``.

    ``aug(y, sr, seed)`` returns ``(name, samples)``, name ``"clean"`` when
    untouched; the choice and the degradation's own draws come from ``seed``.
    """

    names: tuple[str, ...] = tuple(DEGRADATIONS)
    p_clean: float = 0.0

    def __post_init__(self) -> None:
        unknown = [n for n in self.names if n not in DEGRADATIONS]
        if unknown or not self.names:
            raise ValueError(f"degradations must be among {sorted(DEGRADATIONS)}, got {list(self.names)}")
        if not 0.0 <= self.p_clean < 1.0:
            raise ValueError(f"p_clean must be in [0, 1), got {self.p_clean}")

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> tuple[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        if rng.random() < self.p_clean:
            return "clean", _mono(y)
        name = self.names[rng.integers(len(self.names))]
        return name, DEGRADATIONS[name](y, sr, int(rng.integers(2**31)))
