"""Which part of a long track to analyse: a fixed budget of windows, or a middle excerpt.

Analysing every 3 s window of a full-length song costs the model once per
window; the field analyses less: FMA's own 30 s clips are cut from the middle
of each track (mdeff/fma ``creation.py``: ``start = duration // 2 - 15``), and
taggers judged on full tracks average a few evenly spaced chunks (Won et al.
2020: 16). These pure functions say which windows or seconds; the predictor
(:mod:`utils.models.predict`) and the extraction of untrimmed tracks
(:mod:`utils.data.cache`) decode only those.
"""
from __future__ import annotations

import numpy as np

PLACEMENTS = ("spread", "middle")


def budget_windows(n_windows: int, budget: int | None, placement: str = "spread") -> np.ndarray:
    """Indices (sorted, unique) of the windows to analyse among a track's ``n_windows``.

    Parameters
    ----------
    n_windows : the track's windows, in time order
    budget : at most this many; None or ``budget >= n_windows``: every window
    placement : ``"spread"``, the window nearest the middle of each of ``budget``
        equal parts of the track (its intro and outro count least); ``"middle"``,
        ``budget`` consecutive windows around the middle (FMA's clip)

    Examples
    --------
    >>> budget_windows(80, 4).tolist()
    [10, 30, 50, 70]
    >>> budget_windows(80, 4, "middle").tolist()
    [38, 39, 40, 41]
    >>> budget_windows(3, 8).tolist()
    [0, 1, 2]
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if budget is not None and budget < 1:
        raise ValueError(f"a budget is at least one window, got {budget}")
    if budget is None or budget >= n_windows:
        return np.arange(n_windows)
    if placement == "middle":
        first = (n_windows - budget) // 2
        return np.arange(first, first + budget)
    return np.unique(((np.arange(budget) + 0.5) * n_windows / budget).astype(int))


def middle_excerpt(duration: float, seconds: float = 30.0) -> tuple[float, float | None]:
    """``(offset, duration)`` in seconds of FMA's excerpt of a track ``duration`` seconds long: ``seconds``
    centred on the middle (``start = duration // 2 - seconds // 2``, as mdeff/fma's ``creation.py``), or the
    whole track ``(0, None)`` when it is not longer.

    Examples
    --------
    >>> middle_excerpt(241.3)
    (105.0, 30.0)
    >>> middle_excerpt(20.0)
    (0.0, None)
    """
    if duration <= seconds:
        return 0.0, None
    return float(max(0.0, duration // 2 - seconds // 2)), float(seconds)
