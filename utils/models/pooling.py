"""Track probabilities from window probabilities: the mean of a track's audible windows.

The one pooling rule of the project, shared by prediction (:mod:`utils.models.predict`),
training reports (:mod:`utils.models.architectures`) and the experiments: a track's
genre is the mean of its windows' probabilities, a silent window counting for nothing.
"""
from __future__ import annotations

import numpy as np


def mean_per_track(window_probs: np.ndarray, track: np.ndarray, n_tracks: int,
                   heard: np.ndarray | None = None) -> np.ndarray:
    """Mean of the window probabilities ``(n_windows, C)`` of each track; ``track`` gives each
    window's track index (0 .. n_tracks - 1). As :class:`utils.models.predict.Predictor` aggregates a track's windows.

    ``heard`` (bool ``(n_windows,)``, :func:`utils.audio.levels.audible`; for cached windows
    :meth:`utils.data.cache.Cache.audible`) leaves a track's silent windows out of its mean,
    unless none of its windows is audible. None counts every window.
    """
    window_probs, track = np.asarray(window_probs), np.asarray(track)
    counts = np.bincount(track, minlength=n_tracks)
    if (counts == 0).any():
        raise ValueError(f"tracks without windows: {np.flatnonzero(counts == 0)[:5].tolist()}")
    if heard is not None:
        heard = np.asarray(heard, bool)
        none_heard = np.bincount(track, weights=heard, minlength=n_tracks) == 0
        counted = heard | none_heard[track]
        track, window_probs = track[counted], window_probs[counted]
        counts = np.bincount(track, minlength=n_tracks)
    sums = np.zeros((n_tracks, window_probs.shape[1]))
    np.add.at(sums, track, window_probs)
    return sums / counts[:, None]
