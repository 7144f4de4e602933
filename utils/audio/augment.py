"""Training-time augmentation for generality: random chains of effects from pedalboard.

Each call of :class:`RandomChain` draws one to three *families* of effects
(:data:`FAMILIES`), one member of each with random parameters, applies them in
signal-chain order (filters and EQ, dynamics, distortion, room, noise, codec),
then a random gain. No evaluation condition is a copy of a training chain:
parameters are continuous and drawn per copy, and the robustness evaluation
(``scripts/robustness_experiment.py``) tests on conditions made by other
programs (sox, FFmpeg) and, family by family, on a family left out of
training (``exclude``).

Every effect is Spotify's pedalboard (JUCE's filters, compressor, reverb,
LAME and GSM codecs), except additive noise, which pedalboard lacks
(:class:`utils.audio.degrade.PinkNoise` and white noise from NumPy).
Functions of ``(y, sr, seed)`` like :mod:`utils.audio.degrade`: mono float32
samples in, as many samples at the same rate out, all randomness from
``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from utils.audio.degrade import PinkNoise

Effect = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _board(y: np.ndarray, sr: int, *plugins) -> np.ndarray:
    import pedalboard

    out = pedalboard.Pedalboard(list(plugins))(y[None].astype(np.float32), sr)[0]
    if out.size < y.size:  # codecs may return a few samples short of the input
        out = np.pad(out, (0, y.size - out.size))
    return out[: y.size].astype(np.float32)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log_u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _steep(rng: np.random.Generator, make: Callable[[], object]) -> list:
    """One to eight copies of a first-order filter in series: slopes of 6 to 48 dB per octave, from a
    gentle tone control to the brick-wall band edge of a small speaker, a telephone line or a codec."""
    return [make() for _ in range(int(rng.integers(1, 9)))]


def _eq(y, sr, rng):
    import pedalboard as pb

    nyq = sr / 2
    # Each band edge alone and both together: a copy that differs from its master most often lacks
    # bass (phone, laptop and kitchen speakers), treble (radio, old transfers) or both (telephone).
    # Without the highpass alone, the model shipped before tied "no bass" to disco and a telephone
    # band to blues (reports/band_probe.json, model "before").
    choice = rng.choice(5, p=[0.25, 0.25, 0.2, 0.15, 0.15])
    if choice == 0:  # band limit: small speakers, telephones, old radios
        high, low = _log_u(rng, 60, 1000), min(_log_u(rng, 2000, 7500), 0.95 * nyq)
        return _board(y, sr, *_steep(rng, lambda: pb.HighpassFilter(high)), *_steep(rng, lambda: pb.LowpassFilter(low)))
    if choice == 1:  # thin: no bass
        high = _log_u(rng, 150, 1500)
        return _board(y, sr, *_steep(rng, lambda: pb.HighpassFilter(high)))
    if choice == 2:  # muffled: no treble
        low = min(_log_u(rng, 1500, 6000), 0.95 * nyq)
        return _board(y, sr, *_steep(rng, lambda: pb.LowpassFilter(low)))
    if choice == 3:  # tilted tone: bass boost or cut and treble boost or cut
        return _board(y, sr, pb.LowShelfFilter(_log_u(rng, 80, 300), _u(rng, -12, 12)),
                      pb.HighShelfFilter(min(_log_u(rng, 2000, 6000), 0.9 * nyq), _u(rng, -12, 12)))
    return _board(y, sr, pb.PeakFilter(_log_u(rng, 150, 5000), _u(rng, -15, 15), _u(rng, 0.5, 4)))  # peak or notch


def _dynamics(y, sr, rng):
    import pedalboard as pb

    if rng.integers(2):
        return _board(y, sr, pb.Compressor(_u(rng, -40, -10), _u(rng, 2, 20), _u(rng, 0.5, 30), _u(rng, 30, 400)),
                      pb.Gain(_u(rng, 0, 12)))
    return _board(y, sr, pb.Gain(_u(rng, 3, 15)), pb.Limiter(_u(rng, -12, -1), _u(rng, 30, 300)))


def _distortion(y, sr, rng):
    import pedalboard as pb

    choice = rng.integers(3)
    if choice == 0:
        return _board(y, sr, pb.Distortion(_u(rng, 5, 30)), pb.Gain(-_u(rng, 10, 25)))
    if choice == 1:  # hard clipping after a gain
        return _board(y, sr, pb.Gain(_u(rng, 3, 18)), pb.Clipping(_u(rng, -6, 0)))
    return _board(y, sr, pb.Bitcrush(_u(rng, 5, 10)))


def _room(y, sr, rng):
    import pedalboard as pb

    if rng.integers(3):
        wet = _u(rng, 0.1, 0.5)
        return _board(y, sr, pb.Reverb(room_size=_u(rng, 0.3, 0.95), damping=_u(rng, 0.1, 0.9),
                                       wet_level=wet, dry_level=1 - wet / 2, width=1.0))
    return _board(y, sr, pb.Delay(_u(rng, 0.05, 0.4), _u(rng, 0.1, 0.5), _u(rng, 0.1, 0.4)))


def _noise(y, sr, rng):
    snr_db = _u(rng, 5, 30)
    if rng.integers(2):
        return PinkNoise(snr_db)(y, sr, int(rng.integers(2**31)))
    noise = rng.standard_normal(y.size).astype(np.float32)
    scale = np.sqrt(np.mean(y.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return (y + scale * noise).astype(np.float32)


def _codec(y, sr, rng):
    import pedalboard as pb

    choice = rng.integers(3)
    if choice == 0:  # LAME VBR, quality 0 (best) .. 9.999 (worst)
        return _board(y, sr, pb.MP3Compressor(_u(rng, 5, 9.9)))
    if choice == 1:
        return _board(y, sr, pb.GSMFullRateCompressor())
    return _board(y, sr, pb.Resample(_log_u(rng, 4000, 11025)))  # a low sample rate, and back


# The families, in the order a chain applies them.
FAMILIES: dict[str, Effect] = {"eq": _eq, "dynamics": _dynamics, "distortion": _distortion,
                               "room": _room, "noise": _noise, "codec": _codec}


@dataclass(frozen=True)
class RandomChain:
    """One to ``max_families`` random families (of :data:`FAMILIES` minus ``exclude``), then a gain.

    Attributes
    ----------
    exclude : families never drawn (leave-one-family-out training)
    max_families : most families in one chain
    gain_db : range of the final random gain in dB (not clipped: level
        handling belongs to the front end, clipping to ``distortion``)
    """

    exclude: tuple[str, ...] = ()
    max_families: int = 3
    gain_db: tuple[float, float] = (-30.0, 6.0)

    def __post_init__(self) -> None:
        unknown = set(self.exclude) - set(FAMILIES)
        if unknown or len(self.exclude) >= len(FAMILIES):
            raise ValueError(f"exclude must be a proper subset of {list(FAMILIES)}, got {list(self.exclude)}")

    def families(self, seed: int) -> tuple[str, ...]:
        """The families the chain of ``seed`` applies, in order."""
        rng = np.random.default_rng(seed)
        allowed = [f for f in FAMILIES if f not in self.exclude]
        k = int(rng.integers(1, min(self.max_families, len(allowed)) + 1))
        chosen = set(rng.choice(allowed, size=k, replace=False).tolist())
        return tuple(f for f in FAMILIES if f in chosen)

    def __call__(self, y: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng([seed, 1])
        z = np.asarray(y, np.float32)
        for family in self.families(seed):
            z = FAMILIES[family](z, sr, rng)
        return (z * 10 ** (_u(rng, *self.gain_db) / 20)).astype(np.float32)


def family_copy(family: str, y: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """``y`` through one random member of ``family`` alone (a leave-one-family-out test copy)."""
    return FAMILIES[family](np.asarray(y, np.float32), sr, np.random.default_rng([seed, 2]))
