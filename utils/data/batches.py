"""Cached windows as a Keras dataset: ``model.fit`` / ``evaluate`` / ``predict`` on any backend.

:class:`WindowDataset` only reads: windows and their class indices, in a
reshuffled order per epoch. Targets, class weights and augmentation
(SpecAugment, mixup) are added in one place, :class:`utils.models.training.Batches`,
which wraps it during training. Kept apart from :mod:`utils.data.cache` so
that writing a cache (a Dask worker's job) never imports Keras.
"""
from __future__ import annotations

import math

import keras
import numpy as np

from utils.data.cache import Cache, CacheError, Windows


class WindowDataset(keras.utils.PyDataset):
    """Batches of cached windows for ``model.fit`` / ``evaluate`` / ``predict`` (any backend).

    Yields ``(x, y)``: ``x`` float32 ``(batch, window_frames, n_mels)``, ``y``
    int32 indices into ``classes``. With ``classes=None`` it yields ``x``
    alone, for prediction. The order is reshuffled every epoch when
    ``shuffle``. Other keyword arguments (``workers``, ``use_multiprocessing``,
    ``max_queue_size``) go to Keras.
    """

    def __init__(self, cache: Cache, windows: Windows, classes: list[str] | None,
                 batch_size: int = 64, shuffle: bool = True, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cache, self.windows, self.batch_size = cache, windows, batch_size
        self.shuffle = shuffle
        self.y = None if classes is None else _class_indices(windows, classes)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(windows)) if shuffle else np.arange(len(windows))

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.batch_size)

    def __getitem__(self, i: int):
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.cache.read(self.windows, idx)
        if self.y is None:
            return x
        return x, self.y[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.windows))


def _class_indices(windows: Windows, classes: list[str]) -> np.ndarray:
    per_track = windows.tracks.label.map({c: i for i, c in enumerate(classes)})
    if per_track.isna().any():
        odd = sorted(set(windows.tracks.label[per_track.isna()].fillna("<NA>")))
        raise CacheError(f"windows with labels not in classes: {odd}; select them with labels=")
    return per_track.to_numpy(np.int32)[windows.track]
