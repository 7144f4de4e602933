"""Prediction: a trained model and its front end -> genre probabilities per window and per track.

The one prediction path behind the CLI, the web app and the evaluation
notebook. ``fma-genre predict``, ``organize`` and ``serve`` judge a track on at most
:data:`DEFAULT_BUDGET` of its 3 s windows, spread over it
(:func:`utils.audio.budget.budget_windows`), and only those are decoded, by seeking
(:func:`utils.audio.seek.excerpts`): a song costs the same whatever its length.
With no budget (``max_windows=None``, every window) audio is
decoded in blocks (:func:`utils.audio.stream`), turned into log-Mel frames block
by block and cut into the model's windows as they come, so a one-hour file is
classified in memory bounded by one block of audio and one batch of windows. A
track's probabilities are the mean of its audible windows'
(:func:`utils.audio.levels.audible`: a silent lead-in or gap carries no genre),
or of all its windows when none is audible.
Many files go through :meth:`Predictor.predict_files`, which decodes them in
threads ahead of the model and batches their windows across files.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import audio
from utils.audio import seek
from utils.audio.budget import budget_windows
from utils.models.batched import Batched
from utils.models.calibration import apply_temperature, log_probs
from utils.models.pooling import mean_per_track
from utils.models.runtime import cpu_count
from utils.audio.frontend import FrontEnd, LogMel, stream_windows, window_starts
from utils.audio.levels import audible, normalize_level
from utils.audio.picture import picture_file

# Windows a track is judged on by default, spread over it. 12 keeps every window of a 30 s clip (11 at
# musicnn's 3 s), so clip accuracy is the cross-validated one: 8 lost some of it on artist-grouped folds
# (reports/robustness.json, windows_analysed); agreement with every window on full-length songs and the speed:
# reports/benchmarks_predict.json
DEFAULT_BUDGET = 12


@dataclass(frozen=True)
class TrackPrediction:
    """Genre probabilities of one track.

    Attributes
    ----------
    path : the file
    labels : class names, in the model's output order
    probabilities : (n_classes,) mean of the audible windows' probabilities (of all
        windows if none is audible)
    window_times : (n_windows,) start of each window in seconds
    window_probabilities : (n_windows, n_classes)
    window_seconds : length of one window in seconds
    window_budget : the most windows the track could be judged on (:class:`Predictor`'s
        ``max_windows``), None when every window was analysed
    window_audible : (n_windows,) bool, False for a silent window
        (:func:`utils.audio.levels.audible`); None: every window counted
    """

    path: str
    labels: tuple[str, ...]
    probabilities: np.ndarray
    window_times: np.ndarray
    window_probabilities: np.ndarray
    window_seconds: float
    window_budget: int | None = None
    window_audible: np.ndarray | None = None

    @property
    def genre(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable genres with their probabilities, best first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    def segments(self) -> list[tuple[float, float, str, float]]:
        """The genre over time: runs of analysed windows with the same top genre, as
        ``(start s, end s, genre, mean probability of that genre)``; a run of silent
        windows (``window_audible``) is ``"silence"`` with probability 1. Windows that
        do not touch (a budget's, spread over the track) are runs of their own: a
        segment covers only audio the model heard."""
        best = self.window_probabilities.argmax(axis=1)
        if self.window_audible is not None:
            best = np.where(self.window_audible, best, -1)
        touches = np.diff(self.window_times) <= self.window_seconds + 1e-6
        runs: list[tuple[float, float, str, float]] = []
        i = 0
        while i < len(best):
            j = i
            while j + 1 < len(best) and best[j + 1] == best[i] and touches[j]:
                j += 1
            genre, p = ("silence", 1.0) if best[i] < 0 else \
                (self.labels[best[i]], float(self.window_probabilities[i:j + 1, best[i]].mean()))
            runs.append((float(self.window_times[i]), float(self.window_times[j] + self.window_seconds), genre, p))
            i = j + 1
        return runs

    def to_dict(self, k: int = 3) -> dict:
        return {"path": self.path, "genre": self.genre,
                "probability": float(self.probabilities.max()),
                "top": [{"genre": g, "probability": p} for g, p in self.top(k)],
                "probabilities": dict(zip(self.labels, map(float, self.probabilities))),
                "windows_analysed": len(self.window_times), "window_budget": self.window_budget}


class Predictor:
    """Classify audio files with a window model and the front end it was trained with.

    Parameters
    ----------
    model : a runner (:mod:`utils.models.runtime`): windows ``(B, frames, mels)`` float32 ->
        probabilities ``(B, n_classes)``; calls may come from several threads at once
    labels : class names in the model's output order
    frontend : the :class:`FrontEnd` from the model's card
    temperature : calibration temperature for the track probabilities (1 = none)
    batch_size : windows in the model at once, at most: per call, and in all of
        :meth:`predict_files`' concurrent calls together. Small, for memory: a
        model's intermediate tensors grow with it (musicnn's first convolutions make
        about 9 MiB per window, so 32 windows peaked near 1 GiB, and ONNX Runtime's
        arena keeps that much) while the CPU time per window stays the same from 1
        window up (``reports/benchmarks_predict.json``, section ``batch``)
    block_seconds : audio decoded per block when streaming, in seconds
    max_windows : judge a track on at most this many of its windows, placed by ``placement``
        (:func:`utils.audio.budget.budget_windows`) and decoded by seeking; None (the default here;
        the commands default to :data:`DEFAULT_BUDGET`): every window, the whole-track mean. A track
        with no more windows than that, or an excerpt (``offset``/``duration``), is streamed whole
    placement : ``"spread"`` (default) or ``"middle"``, see :func:`utils.audio.budget.budget_windows`
    """

    def __init__(self, model, labels: Iterable[str], frontend: FrontEnd, temperature: float = 1.0,
                 batch_size: int = 8, block_seconds: float = 60.0, max_windows: int | None = None,
                 placement: str = "spread") -> None:
        if batch_size < 1 or (max_windows is not None and max_windows < 1):
            raise ValueError(f"batch_size and max_windows must be 1 or more, got {batch_size}, {max_windows}")
        budget_windows(1, max_windows, placement)  # checks the placement
        self.model = model
        self.labels = tuple(labels)
        self.frontend = frontend
        self.temperature = temperature
        self.batch_size = batch_size
        self.block_seconds = block_seconds
        self.max_windows, self.placement = max_windows, placement
        self.logmel = LogMel(frontend)

    def windows(self, path: str | Path, offset: float = 0.0, duration: float | None = None,
                on_frames: Callable[[np.ndarray], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """The windows the model analyses in a file: ``(start frame, window (frames, mels))``.

        With a budget, the chosen windows are decoded by seeking and yielded
        first; if none of them is audible, the file is streamed whole after them
        (a budget that fell on silence). ``on_frames`` (which asks for every frame
        of the file) is called with each block of log-Mel frames ``(n, mels)`` as
        it is computed. A picture front end (``frontend.columns``) gives one window, the picture
        of the file's excerpt (:func:`utils.audio.picture.picture_file`), whatever the budget.
        Raises :class:`utils.audio.decoder.AudioError` for a file that cannot be used.
        """
        if self.frontend.is_picture:
            offset, window = picture_file(path, self.frontend, self.logmel)
            if on_frames is not None:
                on_frames(window)
            yield round(offset * self.frontend.sample_rate / self.frontend.hop_length), window
            return
        if self.max_windows is not None and on_frames is None and offset == 0.0 and duration is None:
            track = seek.probe(path)  # its checks and MP3 index, read once for the length and the excerpts
            starts = self.budget_starts(track)
            if starts is not None:
                yield from self._sought(track, starts)
                return
        frames = self.logmel.stream(audio.stream(path, self.frontend.sample_rate, self.block_seconds, offset, duration))
        if on_frames is not None:
            frames = _tap(frames, on_frames)
        yield from stream_windows(frames, self.frontend, source=str(path))

    def budget_starts(self, source: str | Path | seek.Probe) -> np.ndarray | None:
        """First frames of the windows the budget analyses in ``source`` (a path, or its
        :func:`utils.audio.seek.probe`), from its length alone; None when the budget covers every window."""
        fe = self.frontend
        n, native = seek.length(source)
        starts = window_starts(fe.n_frames(round(n * fe.sample_rate / native)), fe)
        chosen = budget_windows(len(starts), self.max_windows, self.placement)
        return None if len(chosen) == len(starts) else starts[chosen]

    def _sought(self, track: seek.Probe, starts: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """The windows at ``starts``, each decoded on its own; the whole stream after them when none is audible."""
        fe, hop, half = self.frontend, self.frontend.hop_length, self.frontend.n_fft // 2
        spans = [(int(s) * hop - half, (int(s) + fe.window_frames - 1) * hop + half) for s in starts]
        heard = False
        for s, y in zip(starts, seek.excerpts(track, fe.sample_rate, spans)):
            window = normalize_level(self.logmel.frames(y), fe)
            heard = heard or bool(audible(window, fe))
            yield int(s), window
        if not heard:
            frames = self.logmel.stream(audio.stream(track.path, fe.sample_rate, self.block_seconds))
            done = set(starts.tolist())
            yield from ((s, w) for s, w in stream_windows(frames, fe, source=track.path) if s not in done)

    def predict_file(self, path: str | Path, offset: float = 0.0, duration: float | None = None,
                     on_frames: Callable[[np.ndarray], None] | None = None) -> TrackPrediction:
        """Classify one file (or the excerpt ``offset``..``offset + duration`` seconds).

        ``on_frames``: see :meth:`windows` (the web app draws its spectrogram from
        them instead of decoding the file again). Raises
        :class:`utils.audio.decoder.AudioError` for a file that cannot be used.
        """
        starts, heard, probs = [], [], []
        batch: list[np.ndarray] = []
        for start, window in self.windows(path, offset, duration, on_frames):
            starts.append(start)
            heard.append(bool(audible(window, self.frontend)))
            batch.append(window)
            if len(batch) == self.batch_size:
                probs.append(self.model(np.stack(batch)))
                batch = []
        if batch:
            probs.append(self.model(np.stack(batch)))
        return self._track(str(path), np.asarray(starts), np.concatenate(probs), np.asarray(heard), offset)

    def _track(self, path: str, starts: np.ndarray, window_probs: np.ndarray, heard: np.ndarray,
               offset: float = 0.0) -> TrackPrediction:
        fe = self.frontend
        order = np.argsort(starts, kind="stable")  # a budget that fell on silence adds windows after its own
        starts, window_probs, heard = starts[order], window_probs[order], heard[order]
        mean = mean_per_track(window_probs, np.zeros(len(window_probs), int), 1, heard)
        return TrackPrediction(
            path=path, labels=self.labels,
            probabilities=apply_temperature(log_probs(mean), self.temperature)[0],
            window_times=offset + starts * (fe.hop_length / fe.sample_rate),
            window_probabilities=window_probs, window_seconds=fe.window_seconds, window_budget=self.max_windows,
            window_audible=heard)

    def predict_files(self, paths: Iterable[str | Path], jobs: int | None = None
                      ) -> Iterator[tuple[Path, TrackPrediction | audio.AudioError]]:
        """Classify many files, in order, yielding ``(path, prediction)`` or ``(path, error)``.

        Windows are batched across tracks: ``jobs`` decoder threads (default: one
        per core) each stream one file at a time into a bounded queue of windows,
        ahead of ``jobs`` model threads, each of which takes up to ``batch_size //
        jobs`` windows from whichever tracks are waiting. Decoders, FFTs and ONNX Runtime
        release the GIL, so decoding overlaps the model and every core stays busy;
        memory stays bounded by the queue and one block of audio per decoder.
        A track's probabilities equal :meth:`predict_file`'s (to float rounding).
        A bad file yields its error and the batch goes on. Threads are daemons:
        closing the iterator (Ctrl-C) starts nothing more and waits only for the model
        threads to finish their call (at most 2 s).
        """
        paths = [Path(p) for p in paths]
        jobs = jobs or cpu_count()
        if not paths:
            return
        run = Batched(self, paths, jobs)
        try:
            for i, path in enumerate(paths):
                yield path, run.result(i)
        finally:
            run.stop()


MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = MODELS_DIR / "default.keras"
# The shipped models by name: GTZAN's 10 genres (musicnn transfer, the default) and fma_small's 8 (a CNN on
# fma_small's pictures, utils.audio.frontend.FMA_SMALL)
SHIPPED = {"gtzan": DEFAULT_MODEL, "fma-small": MODELS_DIR / "fma_small.keras"}


def model_path(model: str | Path | None) -> Path:
    """The ``.keras`` file of a shipped model's name (:data:`SHIPPED`), of a path, or of None (the default).

    Examples
    --------
    >>> model_path("fma-small").name
    'fma_small.keras'
    >>> model_path("runs/mine/model.keras").as_posix()
    'runs/mine/model.keras'
    """
    if model is None:
        return DEFAULT_MODEL
    return SHIPPED.get(str(model), Path(model))


def load_predictor(path: str | Path | None = None, runtime: str = "auto", jobs: int | None = None,
                   **options) -> Predictor:
    """A :class:`Predictor` for a saved model and its card: a path, a shipped model's name
    (:func:`model_path`), or None for the default.

    Labels, front end and calibration temperature come from the card;
    ``runtime`` picks how the model runs (:func:`utils.models.runtime.load`:
    the exported ONNX graph by default, Keras as the fallback). ``jobs``: files
    the caller will classify at once (default: one per core); each model call
    then gets ``cores / jobs`` threads. ``options`` go to :class:`Predictor`
    (``batch_size``, ``block_seconds``, ``max_windows``, ``placement``).
    """
    from utils.models import runtime as runtimes

    threads = max(1, cpu_count() // (jobs or cpu_count()))
    runner, card = runtimes.load(model_path(path), runtime, threads=threads)
    return Predictor(runner, card.labels, card.frontend, temperature=card.temperature, **options)


def _tap(blocks: Iterable[np.ndarray], see: Callable[[np.ndarray], None]) -> Iterator[np.ndarray]:
    for block in blocks:
        see(block)
        yield block
