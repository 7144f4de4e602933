"""A saved model scored on a labelled folder: pictures or audio, genre from the folder.

:func:`evaluate_folder` is what ``fma-genre evaluate`` runs, on fma_small's
sealed test pictures among others. A folder is either pictures laid out
``<Genre>/<track_id>.png`` (with or without a ``<split>/`` level above, see
:func:`utils.data.pictures.pictures`), judged by a picture model as they are,
or audio files laid out ``<genre>/<file>`` (:func:`utils.data.datasets.folder`),
which go through the model's own front end (:class:`~utils.models.predict.Predictor`,
its window budget and seeking). A folder's genre names match the model's
labels without regard to case or punctuation (``hiphop`` is ``Hip-Hop``).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from utils.data.datasets import DatasetError, folder
from utils.data.pictures import load_pictures, pictures
from utils.evaluation.metrics import classification_metrics
from utils.models.calibration import apply_temperature, log_probs
from utils.models.predict import Predictor


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def label_indices(genres: Sequence[str], labels: Sequence[str], root: str | os.PathLike) -> np.ndarray:
    """Each track's genre as the index of the model's label it names; raises :class:`DatasetError`
    naming ``root`` and the genres the model does not know."""
    index = {_key(label): i for i, label in enumerate(labels)}
    unknown = sorted({g for g in genres if _key(g) not in index})
    if unknown:
        raise DatasetError(root, f"genre folder(s) {unknown} are not among the model's genres "
                                 f"({', '.join(labels)})")
    return np.array([index[_key(g)] for g in genres])


def is_picture_folder(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds pictures (``<Genre>/*.png`` or ``<split>/<Genre>/*.png``)."""
    root = Path(root)
    return any(root.glob("*/*.png")) or any(root.glob("*/*/*.png"))


def evaluate_folder(predictor: Predictor, root: str | os.PathLike, jobs: int | None = None,
                    progress=lambda items, total: items) -> tuple[dict, list[str]]:
    """Score ``predictor`` on the labelled folder ``root``.

    Returns ``(metrics, failed)``: :func:`utils.evaluation.metrics.classification_metrics` of the
    tracks it could judge (with ``n_tracks``, ``kind``: ``"pictures"`` or ``"audio"``, ``genres``:
    tracks per genre), and one line for each audio file it could not use. ``progress(items, total)``
    wraps the iteration (a progress bar). Raises :class:`DatasetError` for a folder it cannot read,
    genres the model does not know, pictures given to a model that takes audio, or no usable track.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "no such folder" if not root.exists() else "not a folder")
    labels = predictor.labels
    failed: list[str] = []
    if is_picture_folder(root):
        if not predictor.frontend.is_picture:
            raise DatasetError(root, "holds pictures, but this model takes audio: use a picture model "
                                     "(--model fma-small)")
        tracks = pictures(root)
        y = label_indices(tracks.label, labels, root)
        x = load_pictures(tracks.path)
        batches = range(0, len(x), predictor.batch_size)
        scores = np.concatenate([predictor.model(x[s:s + predictor.batch_size].astype(np.float32))
                                 for s in progress(batches, len(batches))])
        probs = apply_temperature(log_probs(scores), predictor.temperature)
        kind = "pictures"
    else:
        tracks = folder(root)
        tracks = tracks[tracks.label.notna()]
        if tracks.empty:
            raise DatasetError(root, "no labelled audio: expected <genre>/<file> below it")
        y_all = label_indices(tracks.label, labels, root)
        keep, rows = [], []
        outcomes = predictor.predict_files(tracks.path, jobs=jobs)
        for i, (path, result) in enumerate(progress(outcomes, len(tracks))):
            if isinstance(result, Exception):
                failed.append(str(result))
                continue
            keep.append(i)
            rows.append(result.probabilities)
        if not rows:
            raise DatasetError(root, f"none of its {len(tracks)} audio files could be used")
        y, probs, kind = y_all[keep], np.stack(rows), "audio"
    metrics = classification_metrics(y, probs, labels)
    genres = {label: int((y == i).sum()) for i, label in enumerate(labels)}
    return {"kind": kind, "n_tracks": int(len(y)), "genres": genres, **metrics}, failed
