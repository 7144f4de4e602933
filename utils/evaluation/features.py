"""Hand-crafted audio features for the scikit-learn baselines, as in the FMA paper.

Defferrard et al. (ISMIR 2017) summarise frame-level librosa features by seven
statistics over time; their ``features.py`` (mdeff/fma) produced the
``features.csv`` shipped with FMA. This module computes the same kind of
table with the same column layout, a ``(feature, statistics, number)``
MultiIndex, sorted, named as FMA names them (``rmse``, ``zcr``, numbers
``"01"``...), so a column selection works on both tables. Differences from
FMA's script: audio is decoded with :func:`utils.audio.load` at a fixed rate
(22,050 Hz by default, not each file's own), RMS is measured on the samples
(a sine of amplitude A gives A / sqrt(2)), and only one chroma is computed.

Chroma: ``"stft"`` (default) folds the STFT already computed for the other
features; ``"cqt"`` needs a constant-Q transform. Both estimate the tuning
as librosa does by default. Measured with :func:`features_table` on the 20
sample GTZAN clips (30 s, 22,050 Hz) on 2 shared cores: 0.25 s per clip
with chroma_stft, 0.29 s with chroma_cqt (decoding: 2 ms). Either is fast
enough (fma_medium's 25,000 clips: about 2 hours on one core, plus MP3
decoding); STFT chroma is the default because it is the cheaper one.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from tqdm import tqdm

from utils import audio
from utils.atomic import write_atomic

STATISTICS = ("mean", "std", "skew", "kurtosis", "median", "min", "max")
COLUMN_NAMES = ("feature", "statistics", "number")  # FMA features.csv header rows


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the hand-crafted features (FMA's values by default).

    Attributes
    ----------
    sample_rate : Hz the audio is resampled to
    n_fft : STFT size and analysis frame in samples (92.9 ms at 22,050 Hz)
    hop_length : samples between frames (23.2 ms)
    n_mfcc : number of MFCCs (from 128 Mel bands in dB)
    chroma : ``"stft"`` or ``"cqt"`` (12 pitch classes either way)
    n_bands : spectral-contrast octave bands above 200 Hz; gives ``n_bands + 1`` values
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mfcc: int = 20
    chroma: str = "stft"
    n_bands: int = 6

    def __post_init__(self) -> None:
        if self.chroma not in ("stft", "cqt"):
            raise ValueError(f"chroma must be 'stft' or 'cqt', got {self.chroma!r}")

    def sizes(self) -> dict[str, int]:
        """Number of frame-level values of each feature."""
        return {f"chroma_{self.chroma}": 12, "mfcc": self.n_mfcc, "rmse": 1, "spectral_bandwidth": 1,
                "spectral_centroid": 1, "spectral_contrast": self.n_bands + 1, "spectral_rolloff": 1,
                "zcr": 1}


def columns(config: FeatureConfig = FeatureConfig()) -> pd.MultiIndex:
    """The sorted ``(feature, statistics, number)`` columns of a feature vector."""
    tuples = [(name, stat, f"{i + 1:02d}") for name, size in config.sizes().items()
              for stat in STATISTICS for i in range(size)]
    return pd.MultiIndex.from_tuples(tuples, names=COLUMN_NAMES).sort_values()


def frame_features(y: np.ndarray, config: FeatureConfig = FeatureConfig()) -> dict[str, np.ndarray]:
    """Frame-level features of mono samples ``y`` at ``config.sample_rate``: name -> ``(size, n_frames)``."""
    sr, n_fft, hop = config.sample_rate, config.n_fft, config.hop_length
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    if config.chroma == "stft":
        chroma = librosa.feature.chroma_stft(S=S**2, sr=sr, n_fft=n_fft)
    else:
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop)
    mel = librosa.feature.melspectrogram(S=S**2, sr=sr, n_fft=n_fft)
    return {
        f"chroma_{config.chroma}": chroma,
        "mfcc": librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=config.n_mfcc),
        "rmse": librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft),
        "spectral_centroid": librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft),
        "spectral_contrast": librosa.feature.spectral_contrast(S=S, sr=sr, n_fft=n_fft,
                                                               n_bands=config.n_bands),
        "spectral_rolloff": librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop),
    }


def summarize(values: np.ndarray) -> np.ndarray:
    """The :data:`STATISTICS` of each row of ``values (size, n_frames)`` over time: ``(7, size)``.

    Skew and excess kurtosis are the biased moment ratios (``scipy.stats``
    defaults, as FMA). A row constant up to float32 rounding (std below
    1e-6 of its mean magnitude) has skew and kurtosis 0 instead of NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    mean = x.mean(axis=1)
    dev = x - mean[:, None]
    m2 = np.mean(dev**2, axis=1)
    flat = np.sqrt(m2) <= 1e-6 * np.abs(mean)  # also true where m2 == 0
    safe = np.where(flat, 1.0, m2)
    skew = np.where(flat, 0.0, np.mean(dev**3, axis=1) / safe**1.5)
    kurtosis = np.where(flat, 0.0, np.mean(dev**4, axis=1) / safe**2 - 3.0)
    return np.stack([mean, np.sqrt(m2), skew, kurtosis, np.median(x, axis=1), x.min(axis=1),
                     x.max(axis=1)])


def feature_vector(y: np.ndarray, config: FeatureConfig = FeatureConfig()) -> pd.Series:
    """The feature vector of mono samples ``y`` (at ``config.sample_rate`` Hz), indexed by :func:`columns`."""
    if len(y) < config.n_fft:
        raise ValueError(f"{len(y)} samples is shorter than one {config.n_fft}-sample frame")
    keys, values = [], []
    for name, frames in frame_features(y, config).items():
        stats = summarize(frames)
        keys += [(name, stat, f"{i + 1:02d}") for stat in STATISTICS for i in range(frames.shape[0])]
        values.append(stats.ravel())
    index = pd.MultiIndex.from_tuples(keys, names=COLUMN_NAMES)
    return pd.Series(np.concatenate(values), index=index).reindex(columns(config))


def file_features(path: str | os.PathLike, config: FeatureConfig = FeatureConfig()) -> pd.Series:
    """Decode ``path`` with :func:`utils.audio.load` and return its feature vector, named ``str(path)``.

    Raises :class:`utils.audio.decoder.AudioError` (naming the file) for unusable audio,
    including :class:`~utils.audio.decoder.TooShortError` below one ``n_fft`` frame.
    """
    y = audio.load(path, config.sample_rate)
    if len(y) < config.n_fft:
        raise audio.TooShortError(path, f"{len(y) / config.sample_rate:.3f} s is shorter than one "
                                        f"{config.n_fft}-sample analysis frame")
    return feature_vector(y, config).rename(str(path))


def features_table(paths: Iterable[str | os.PathLike], config: FeatureConfig = FeatureConfig(),
                   progress: bool = True) -> tuple[pd.DataFrame, dict[str, str]]:
    """Feature vectors of many files, one row per file (index ``path``), with a tqdm bar.

    Returns ``(table, failures)``: files that raise :class:`utils.audio.decoder.AudioError`
    are left out of the table and listed in ``failures`` as path -> message.
    """
    paths = [Path(p) for p in paths]
    rows, failures = [], {}
    for path in tqdm(paths, unit="file", desc="features", disable=None if progress else True,
                     file=sys.stderr):
        try:
            rows.append(file_features(path, config))
        except audio.AudioError as err:
            failures[str(path)] = str(err)
    table = pd.DataFrame(rows, columns=columns(config))
    table.index.name = "path"
    return table, failures


def save_features(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a features table as CSV (three header rows, like FMA's) atomically."""
    return write_atomic(path, lambda tmp: table.to_csv(tmp, float_format="%.10e"))


def load_features(path: str | os.PathLike) -> pd.DataFrame:
    """Read a features CSV written by :func:`save_features` (or FMA's ``features.csv``).

    Raises ValueError naming the file if it is missing or not such a table.
    """
    try:
        table = pd.read_csv(path, index_col=0, header=[0, 1, 2])
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot read features CSV ({err})") from err
    try:
        return table.astype(np.float64)  # an empty table (every file failed) reads as text
    except ValueError as err:
        raise ValueError(f"{path}: not a features CSV (non-numeric values: {err})") from err
