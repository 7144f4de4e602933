"""Slaney's Mel scale and Mel filterbank, written out in NumPy.

Equal to librosa's ``filters.mel`` (Slaney scale, area normalisation) to the
last bit (``tests/test_frontend.py``), because importing ``librosa.filters``
pulls in ``scipy.signal`` and costs a one-file prediction over a second of
start-up. :class:`utils.audio.frontend.LogMel` applies the filterbank.
"""
from __future__ import annotations

import numpy as np


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Mel filterbank, shape ``(1 + n_fft // 2, n_mels)``, float32: librosa's
    ``filters.mel`` (Slaney scale, area normalisation), transposed.

    ``sample_rate`` in Hz, ``n_fft`` in samples, band edges ``fmin``, ``fmax`` in Hz
    (None: ``sample_rate / 2``).

    Examples
    --------
    >>> mel_filterbank(16000, 512, 96).shape
    (257, 96)
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    gaps = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    weights = np.zeros((n_mels, fft_hz.size), np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / gaps[i], ramps[i + 2] / gaps[i + 1]))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, np.newaxis]
    return np.ascontiguousarray(weights.T)


# Slaney's Mel scale (librosa's default): linear below 1 kHz, logarithmic above
_MEL_HZ_PER_MEL = 200.0 / 3
_MEL_LOG_HZ = 1000.0
_MEL_LOG_MEL = _MEL_LOG_HZ / _MEL_HZ_PER_MEL
_MEL_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz >= _MEL_LOG_HZ:
        return _MEL_LOG_MEL + np.log(hz / _MEL_LOG_HZ) / _MEL_LOG_STEP
    return hz / _MEL_HZ_PER_MEL


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = _MEL_HZ_PER_MEL * mels
    log = mels >= _MEL_LOG_MEL
    hz[log] = _MEL_LOG_HZ * np.exp(_MEL_LOG_STEP * (mels[log] - _MEL_LOG_MEL))
    return hz
