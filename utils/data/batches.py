"""Cached windows as a Keras dataset: ``model.fit`` / ``evaluate`` / ``predict`` on any backend.

:class:`WindowDataset` only reads: windows and their class indices, in a
reshuffled order per epoch. Targets, class weights and augmentation
(SpecAugment, mixup) are added in one place, :class:`utils.models.training.Batches`,
which wraps it during training. :class:`FileWindowDataset` reads windows saved
one array per file instead (musicnn's fine-tuning, :mod:`utils.models.transfer_train`).
Kept apart from :mod:`utils.data.cache` so that writing a cache (a Dask
worker's job) never imports Keras.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

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


class FileWindowDataset(keras.utils.PyDataset):
    """Batches ``(x, y)`` of windows saved as ``.npy`` arrays ``(n_windows, frames, n_mels)``, one per file.

    ``x`` float32 ``(batch, frames, n_mels)``, ``y`` int32: the label of the
    window's file. Each batch reads only its windows (memory-mapped), so memory
    stays at one batch however many files there are. The order of the windows
    of all files is reshuffled every epoch when ``shuffle``. Other keyword
    arguments go to Keras, as for :class:`WindowDataset`.
    """

    def __init__(self, files: Sequence[str | os.PathLike], labels: Sequence[int], batch_size: int = 32,
                 shuffle: bool = True, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if len(files) != len(labels) or not len(files):
            raise ValueError(f"need one label per file and at least one file, got {len(files)} and {len(labels)}")
        self.files, self.batch_size, self.shuffle = list(files), batch_size, shuffle
        counts = [np.load(f, mmap_mode="r").shape[0] for f in self.files]
        self.file = np.repeat(np.arange(len(counts)), counts)  # per window: its file and its row there
        self.row = np.concatenate([np.arange(n) for n in counts])
        self.y = np.asarray(labels, np.int32)[self.file]
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(self.y)) if shuffle else np.arange(len(self.y))

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __getitem__(self, i: int):
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        x = np.stack([np.load(self.files[f], mmap_mode="r")[r] for f, r in zip(self.file[idx], self.row[idx])])
        return x.astype(np.float32), self.y[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.y))


def _class_indices(windows: Windows, classes: list[str]) -> np.ndarray:
    per_track = windows.tracks.label.map({c: i for i, c in enumerate(classes)})
    if per_track.isna().any():
        odd = sorted(set(windows.tracks.label[per_track.isna()].fillna("<NA>")))
        raise CacheError(f"windows with labels not in classes: {odd}; select them with labels=")
    return per_track.to_numpy(np.int32)[windows.track]
