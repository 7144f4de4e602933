"""What the probe scripts (``scripts/*_probe.py``) share: the clips they take and how they classify them.

A probe plays clips through a change (a filter, an excerpt, an effect made by
SoX or FFmpeg) and tallies the shipped model's answers: a look for a failure,
written to ``reports/`` by the script, not an accuracy estimate.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def first_clips(gtzan: Path, per_genre: int) -> list[Path]:
    """The first ``per_genre`` WAV clips of each genre folder of ``gtzan`` (genres, then clips, in name order).

    Examples
    --------
    >>> [c.name for c in first_clips(Path("../shared/data/gtzan_mini"), 1)][:2]
    ['blues.00000.wav', 'classical.00000.wav']
    """
    return [c for g in sorted(d for d in Path(gtzan).iterdir() if d.is_dir()) for c in sorted(g.glob("*.wav"))[:per_genre]]


def answers_of(predictor, paths: Iterable[Path]) -> list[tuple[str, float]]:
    """The top genre :class:`utils.models.predict.Predictor` gives each file and its probability, in order.

    A file it cannot classify stops the probe with one line naming it: a tally
    that skipped it would count it neither right nor wrong.
    """
    answers = []
    for path, p in predictor.predict_files(list(paths)):
        if isinstance(p, Exception):
            raise SystemExit(f"{path}: {p}")
        answers.append((p.genre, float(p.probabilities.max())))
    return answers


def genres_of(predictor, paths: Iterable[Path]) -> list[str]:
    """The top genre of each file, in order (see :func:`answers_of`)."""
    return [genre for genre, _ in answers_of(predictor, paths)]
