"""Slaney's Mel scale and Mel filterbank, written out in NumPy.

Equal to librosa's ``filters.mel`` (Slaney scale, area normalisation) to the
last bit (``tests/test_frontend.py``), because importing ``librosa.filters``
pulls in ``scipy.signal`` and costs a one-file prediction over a second of
start-up. :class:`utils.audio.frontend.LogMel` applies the filterbank as the sparse matrix it
is (:func:`sparse_bands`, :func:`mel_power`: about 2,000 non-zero weights of 131,200 for 128 Mels).
"""
from __future__ import annotations

import numba
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


def sparse_bands(filterbank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse form of a (n_bins, n_mels) filterbank: each filter's first bin,
    width in bins, and weights (n_mels, max width), zero-padded."""
    fb = filterbank.T
    nonzero = [np.flatnonzero(row) for row in fb]
    first = np.array([nz[0] if nz.size else 0 for nz in nonzero], np.int64)
    width = np.array([nz[-1] + 1 - nz[0] if nz.size else 0 for nz in nonzero], np.int64)
    weights = np.zeros((fb.shape[0], max(1, width.max())), np.float32)
    for m, (f, w) in enumerate(zip(first, width)):
        weights[m, :w] = fb[m, f:f + w]
    return first, width, weights


@numba.njit(cache=True, nogil=True)
def mel_power(spec, first, width, weights, out):  # pragma: no cover - compiled
    """out[t, m] = sum_j weights[m, j] * |spec[t, first[m] + j]|^2, for complex64 ``spec``."""
    power = np.empty(spec.shape[1], np.float32)
    for t in range(spec.shape[0]):
        for j in range(spec.shape[1]):
            c = spec[t, j]
            power[j] = c.real * c.real + c.imag * c.imag
        for m in range(first.shape[0]):
            acc = np.float32(0.0)
            f = first[m]
            for j in range(width[m]):
                acc += weights[m, j] * power[f + j]
            out[t, m] = acc
