"""Level and band normalisation of log-Mel windows, and which windows are audible.

The second concern of the front end (:mod:`utils.audio.frontend` computes the
spectrogram and cuts it into windows): every window brought to one level
(``FrontEnd.level="window"``), so a file's playback level, mastering loudness or
downmix gain cannot change its genre, and each Mel band's mean to one reference
profile (``FrontEnd.band_level="window"``), so an equaliser, a telephone line or a
small speaker moves the window far less. Windows are ``(..., frames, mels)`` in the
front end's ``log`` units; every function is pure and reads its settings from a
:class:`utils.audio.frontend.FrontEnd` (:class:`LevelSettings`).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

AMIN = 1e-10  # power floor before the log: -100 dB
AMIN_DB = float(10 * np.log10(AMIN))


class LevelSettings(Protocol):
    """What these functions read of a :class:`utils.audio.frontend.FrontEnd` (units there)."""

    log: str
    level: str
    level_db: float
    level_floor_db: float
    band_level: str
    band_reference: tuple[float, ...]
    band_tolerance: float
    band_mean: str


def _to_power(x: np.ndarray, log: str) -> np.ndarray:
    """Mel power from log values (float64): the inverse of the front end's log."""
    return 10.0 ** (x / 10.0) if log == "db" else np.expm1(x * np.log(10.0)) / 10000.0


def _from_power(p: np.ndarray, log: str) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(p, AMIN)) if log == "db" else np.log1p(10000.0 * p) / np.log(10.0)


def _mean_db(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """Mean Mel power of each window ``(..., frames, mels)`` in dB."""
    return 10 * np.log10(np.maximum(_to_power(np.asarray(w, np.float64), fe.log).mean(axis=(-2, -1)), 1e-30))


def level_gain_db(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """The gain in dB that :func:`normalize_level` applies to each of the windows ``w (..., frames, mels)``."""
    return fe.level_db - np.maximum(_mean_db(w, fe), fe.level_floor_db)


def audible(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """Whether each window ``(..., frames, mels)`` as the front end cut it holds sound: bool ``(...)``.

    A window is silent when its mean Mel power, before level normalisation, was
    more than 1 dB under ``fe.level_floor_db`` (-60 dB by default): a silent
    lead-in, a gap between movements, the run-out before a hidden track. With
    ``level="window"`` that is read from the normalised window itself, which
    then sits that far under ``fe.level_db`` (band normalisation leaves it so).
    A silent window carries no genre, so a track's probabilities leave it out
    (:class:`utils.models.predict.Predictor`).

    Examples
    --------
    >>> from utils.audio.frontend import FrontEnd
    >>> fe = FrontEnd(level="window")
    >>> quiet = np.full((1, 187, 96), -50.0, np.float32)  # a -50 dB passage (log="db")
    >>> silence = np.full((1, 187, 96), fe.floor, np.float32)
    >>> audible(normalize_level(np.concatenate([quiet, silence]), fe), fe).tolist()
    [True, False]
    """
    if getattr(fe, "columns", 0):  # a picture's levels are not dB, and a silent file draws none
        return np.ones(np.shape(w)[:-2], bool)
    threshold = fe.level_db if fe.level == "window" else fe.level_floor_db
    return _mean_db(w, fe) > threshold - 1.0


def normalize_level(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """Windows ``(..., frames, mels)`` at the level ``fe.level`` asks for (float32).

    ``"none"`` returns ``w`` unchanged. ``"window"`` scales each window's Mel
    power so that its mean is ``fe.level_db`` dB: the same as a gain on that
    window's audio (the STFT is linear), so a quieter or louder copy of a clip
    gives the same windows (to float rounding), whatever the file's level, with
    no look-ahead: a stream is normalised window by window. A window quieter
    than ``fe.level_floor_db`` gets the gain of one at the floor, so silence
    stays silent and a fade-out is not blown up to full level.
    """
    if fe.level == "none":
        return w
    x = np.asarray(w, np.float64)
    gain = 10.0 ** (level_gain_db(x, fe) / 10.0)
    x = _from_power(_to_power(x, fe.log) * gain[..., None, None], fe.log)
    return (normalize_bands(x, fe) if fe.band_level == "window" else x).astype(np.float32)


def normalize_bands(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """Level-normalised windows ``(..., frames, mels)`` with each band's mean in dB over an audible window
    brought to within ``fe.band_tolerance`` dB of ``fe.band_reference`` (scaled to ``fe.level_db``);
    silent windows are left as they are.

    A fixed filter (an equaliser, a telephone band, a small speaker) adds a
    constant to each band of a Mel spectrogram in dB, so moving each band's
    mean over the window to a reference removes it, as cepstral mean
    normalisation does for speech; the reference then gives the network the
    spectral shape it knows. The bands are moved in dB whatever ``fe.log``
    (``"log10_1p"`` compresses quiet bands, where a gain would not add a
    constant), so a band a filter only attenuated comes back; one it removed
    to under -100 dB stays missing. Audible windows stay audible: with no
    tolerance, the mean power of a window is at least that of its band means
    (the power is convex in dB), which is ``fe.level_db``; with one, a window
    under ``fe.level_db`` is raised to it.

    Examples
    --------
    >>> from utils.audio.frontend import FrontEnd
    >>> fe = FrontEnd(n_mels=4, level="window", band_level="window", band_reference=(-10, -20, -30, -40))
    >>> w = np.random.default_rng(0).normal(-20, 3, (1, 128, 4))  # a window, in dB
    >>> eq = w + np.array([6.0, 0.0, -12.0, 3.0])  # the same window through a fixed equaliser
    >>> bool(np.allclose(normalize_level(w, fe), normalize_level(eq, fe), atol=1e-4))
    True
    """
    x = np.asarray(w, np.float64)
    d = band_offsets(x, fe)
    moved = np.maximum(_db(x, fe) + np.sign(d) * np.maximum(np.abs(d) - fe.band_tolerance, 0.0), AMIN_DB)
    p = _to_power(moved, "db")
    p *= 10.0 ** (np.maximum(fe.level_db - 10 * np.log10(p.mean(axis=(-2, -1))), 0.0) / 10.0)[..., None, None]
    return np.where(audible(x, fe)[..., None, None], _from_power(p, fe.log), x)


def band_offsets(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """How far, in dB, each band's mean (``fe.band_mean``) over each level-normalised window
    ``(..., frames, mels)`` lies under ``fe.band_reference`` scaled to ``fe.level_db``: ``(..., 1, mels)``."""
    ref = _to_power(np.asarray(fe.band_reference, np.float64), fe.log)
    ref_db = _from_power(ref, "db") + fe.level_db - 10 * np.log10(ref.mean())
    if fe.band_mean == "power":
        return ref_db - _from_power(_to_power(np.asarray(w, np.float64), fe.log).mean(axis=-2, keepdims=True), "db")
    return ref_db - _db(w, fe).mean(axis=-2, keepdims=True)


def _db(w: np.ndarray, fe: LevelSettings) -> np.ndarray:
    """Log values in the front end's ``log`` units -> dB (float64, floor -100 dB)."""
    return _from_power(_to_power(np.asarray(w, np.float64), fe.log), "db")
