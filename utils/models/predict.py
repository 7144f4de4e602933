"""Prediction: a trained model and its front end -> genre probabilities per window and per track.

The one prediction path behind the CLI, the web app and the evaluation
notebook. Audio is decoded in blocks (:func:`utils.audio.stream`), turned into
log-Mel frames block by block and cut into the model's windows as they come,
so a one-hour file is classified in memory bounded by one block of audio and
one batch of windows. A track's probabilities are the mean of its windows'.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import audio
from utils.models.calibration import apply_temperature, log_probs
from utils.models.pool import imap
from utils.models.runtime import cpu_count
from utils.audio.frontend import FrontEnd, LogMel, stream_windows


@dataclass(frozen=True)
class TrackPrediction:
    """Genre probabilities of one track.

    Attributes
    ----------
    path : the file
    labels : class names, in the model's output order
    probabilities : (n_classes,) mean of the window probabilities
    window_times : (n_windows,) start of each window in seconds
    window_probabilities : (n_windows, n_classes)
    window_seconds : length of one window in seconds
    """

    path: str
    labels: tuple[str, ...]
    probabilities: np.ndarray
    window_times: np.ndarray
    window_probabilities: np.ndarray
    window_seconds: float

    @property
    def genre(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable genres with their probabilities, best first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    def segments(self) -> list[tuple[float, float, str, float]]:
        """The genre over time: runs of windows with the same top genre, as
        ``(start s, end s, genre, mean probability of that genre)``."""
        best = self.window_probabilities.argmax(axis=1)
        runs: list[tuple[float, float, str, float]] = []
        i = 0
        while i < len(best):
            j = i
            while j + 1 < len(best) and best[j + 1] == best[i]:
                j += 1
            p = float(self.window_probabilities[i:j + 1, best[i]].mean())
            runs.append((float(self.window_times[i]), float(self.window_times[j] + self.window_seconds),
                         self.labels[best[i]], p))
            i = j + 1
        return runs

    def to_dict(self, k: int = 3) -> dict:
        return {"path": self.path, "genre": self.genre,
                "probability": float(self.probabilities.max()),
                "top": [{"genre": g, "probability": p} for g, p in self.top(k)],
                "probabilities": dict(zip(self.labels, map(float, self.probabilities)))}


class Predictor:
    """Classify audio files with a window model and the front end it was trained with.

    Parameters
    ----------
    model : a runner (:mod:`utils.models.runtime`): windows ``(B, frames, mels)`` float32 ->
        probabilities ``(B, n_classes)``; calls may come from several threads at once
    labels : class names in the model's output order
    frontend : the :class:`FrontEnd` from the model's card
    temperature : calibration temperature for the track probabilities (1 = none)
    batch_size : windows per model call. Small, for memory: a model's intermediate
        tensors grow with it (musicnn's first convolutions make about 9 MiB per
        window, so 32 windows peaked near 1 GiB, and ONNX Runtime's arena keeps
        that much) while the CPU time per window stays the same from 4 windows up
    block_seconds : audio decoded per block when streaming, in seconds
    """

    def __init__(self, model, labels: Iterable[str], frontend: FrontEnd,
                 temperature: float = 1.0, batch_size: int = 8, block_seconds: float = 60.0) -> None:
        self.model = model
        self.labels = tuple(labels)
        self.frontend = frontend
        self.temperature = temperature
        self.batch_size = batch_size
        self.block_seconds = block_seconds
        self.logmel = LogMel(frontend)

    def predict_file(self, path: str | Path, offset: float = 0.0,
                     duration: float | None = None) -> TrackPrediction:
        """Classify one file (or the excerpt ``offset``..``offset + duration`` seconds).

        Raises :class:`utils.audio.decoder.AudioError` for a file that cannot be used.
        """
        fe = self.frontend
        blocks = audio.stream(path, fe.sample_rate, self.block_seconds, offset, duration)
        starts, probs = [], []
        batch: list[np.ndarray] = []
        for start, window in stream_windows(self.logmel.stream(blocks), fe, source=str(path)):
            starts.append(start)
            batch.append(window)
            if len(batch) == self.batch_size:
                probs.append(self.model(np.stack(batch)))
                batch = []
        if batch:
            probs.append(self.model(np.stack(batch)))
        window_probs = np.concatenate(probs)
        frame_seconds = fe.hop_length / fe.sample_rate
        return TrackPrediction(
            path=str(path), labels=self.labels,
            probabilities=apply_temperature(log_probs(window_probs.mean(axis=0, keepdims=True)),
                                            self.temperature)[0],
            window_times=offset + np.asarray(starts) * frame_seconds,
            window_probabilities=window_probs, window_seconds=fe.window_seconds)

    def predict_files(self, paths: Iterable[str | Path], jobs: int | None = None
                      ) -> Iterator[tuple[Path, TrackPrediction | audio.AudioError]]:
        """Classify many files, in order, yielding ``(path, prediction)`` or ``(path, error)``.

        ``jobs`` files (default: one per core) are classified at once in
        threads: decoders, FFTs and ONNX Runtime release the GIL, so while one
        thread runs the model the others decode ahead. A bad file yields its
        error and the batch goes on.
        """
        def one(path: Path) -> TrackPrediction | audio.AudioError:
            try:
                return self.predict_file(path)
            except audio.AudioError as err:
                return err

        paths = [Path(p) for p in paths]
        jobs = jobs or cpu_count()
        if jobs <= 1 or len(paths) < 2:
            yield from ((p, one(p)) for p in paths)
            return
        yield paths[0], one(paths[0])  # a Keras model's first call builds its graph: once, alone
        # daemon threads, a few files ahead: Ctrl-C does not wait for the files in flight
        yield from zip(paths[1:], imap(one, paths[1:], jobs, name="predict"))

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default.keras"


def load_predictor(path: str | Path | None = None, runtime: str = "auto", jobs: int | None = None,
                   **options) -> Predictor:
    """A :class:`Predictor` for a saved model and its card (default: the shipped model).

    Labels, front end and calibration temperature come from the card;
    ``runtime`` picks how the model runs (:func:`utils.models.runtime.load`:
    the exported ONNX graph by default, Keras as the fallback). ``jobs``: files
    the caller will classify at once (default: one per core); each model call
    then gets ``cores / jobs`` threads. ``options`` go to :class:`Predictor`
    (``batch_size``, ``block_seconds``).
    """
    from utils.models import runtime as runtimes

    threads = max(1, cpu_count() // (jobs or cpu_count()))
    runner, card = runtimes.load(path or DEFAULT_MODEL, runtime, threads=threads)
    return Predictor(runner, card.labels, card.frontend, temperature=card.temperature, **options)
