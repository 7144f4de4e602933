"""fma_small's shared VGGish embeddings: one 128-d AudioSet embedding per track, a baseline feature.

``vggish_training_validation.npz`` beside the pictures holds ``X (tracks, 128)``,
``track_id``, ``genre`` and ``split`` for the training and validation tracks (the
sealed test tracks have none there).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from utils.data.datasets import DatasetError

VGGISH = "vggish_training_validation.npz"


def vggish(track_ids: Sequence[str], path: str | os.PathLike) -> np.ndarray:
    """The embeddings ``(len(track_ids), 128)`` float32 of ``track_ids`` (6-digit ids), in their order.

    Raises :class:`DatasetError` naming ``path`` when it is missing, unreadable or lacks a track.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as found:
            x, ids = found["X"], [f"{int(t):06d}" for t in found["track_id"]]
    except FileNotFoundError:
        raise DatasetError(path, "no such file (the VGGish embeddings of fma_small)") from None
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(path, f"not the VGGish embeddings file ({err})") from None
    row = {t: i for i, t in enumerate(ids)}
    missing = [t for t in track_ids if t not in row]
    if missing:
        raise DatasetError(path, f"no embedding for {len(missing)} track(s), e.g. {missing[0]}")
    return x[[row[t] for t in track_ids]].astype(np.float32)
