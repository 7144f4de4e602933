"""Datasets by name: ``fma``, ``gtzan`` or ``folder`` to a track table.

The one place that knows every loader (:mod:`utils.data.datasets` for GTZAN
and folders, :mod:`utils.data.fma` for FMA), so the CLI, the pipeline and the
notebooks choose a dataset with a string.
"""
from __future__ import annotations

import gzip
import os

import pandas as pd

from utils.data import fma
from utils.data.datasets import DatasetError, folder, gtzan

DATASETS = ("fma", "gtzan", "folder")


def load_dataset(name: str, root: str | os.PathLike, metadata: str | os.PathLike | None = None,
                 subset: str = "medium") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The track table of a dataset by name, and the tracks excluded from it with their reason.

    ``"gtzan"`` and ``"folder"`` read ``root`` (see :func:`gtzan`,
    :func:`folder`). ``"fma"`` lists the FMA audio files under ``root`` and
    takes labels, splits and artists from ``metadata``: the official
    ``tracks.csv`` (restricted to ``subset``) or a flat export such as
    ``fma-rock-vs-hiphop.csv.gz``; without metadata the files are unlabelled.
    Known-bad FMA clips come back in the second table (see
    :mod:`utils.data.fma_bad_tracks`); the other loaders exclude nothing.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if name != "fma":
        table = gtzan(root) if name == "gtzan" else folder(root)
        return table, table.iloc[:0].assign(reason=pd.Series(dtype="str"))
    labelled = None
    if metadata is not None:
        if is_official_tracks_csv(metadata):
            labelled, _ = fma.subset(fma.load_tracks(metadata), subset)
        else:
            labelled, _ = fma.load_export(metadata)
    return fma.audio_tracks(root, metadata=labelled)


def is_official_tracks_csv(path: str | os.PathLike) -> bool:
    """tracks.csv starts with its multi-row header (``,album,album,...``); a flat export with ``track_id``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(",")
    except OSError as err:
        raise DatasetError(path, f"cannot read metadata: {err.strerror or err}") from None
