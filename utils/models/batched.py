"""The threads of :meth:`utils.models.predict.Predictor.predict_files`: files decoded ahead of the
model, their windows batched across files, results handed back in order."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from utils import audio
from utils.audio.frontend import FrontEnd
from utils.audio.levels import audible


class WindowSource(Protocol):
    """What the threads use of a :class:`utils.models.predict.Predictor`."""

    model: Callable[[np.ndarray], np.ndarray]
    frontend: FrontEnd
    batch_size: int

    def windows(self, path: Path) -> Iterator[tuple[int, np.ndarray]]: ...

    def _track(self, path: str, starts: np.ndarray, window_probs: np.ndarray, heard: np.ndarray) -> Any: ...


class Batched:
    """The threads of one :meth:`utils.models.predict.Predictor.predict_files` run, and what they share
    under one condition.

    Decoders take the files in order, at most ``4 * jobs`` tracks ahead of the
    consumer, and put ``(track, window number, window)`` on a queue of
    ``2 * jobs * batch_size`` windows; model threads empty it in batches of up to
    ``batch_size // jobs`` windows and
    file each window's probabilities under its track; :meth:`result` waits until
    a track's windows are all scored. Blocking calls wake every 0.1 s to see
    :meth:`stop`, which waits for the model threads to finish their call.
    """

    def __init__(self, predictor: WindowSource, paths: list[Path], jobs: int) -> None:
        self.predictor, self.paths, self.ahead = predictor, paths, 4 * jobs
        # jobs calls at once share batch_size windows: two concurrent calls of 8 windows took a
        # folder's peak RSS from 625 to 915 MB (ONNX Runtime's arena holds both), for no CPU saved
        self.per_call = max(1, predictor.batch_size // jobs)
        self.cond = threading.Condition()
        self.queue: queue.Queue = queue.Queue(maxsize=2 * jobs * predictor.batch_size)
        self.next = 0  # the next file a decoder takes
        self.consumed = 0  # files the consumer has taken
        self.decoding = jobs  # decoders still running
        self.starts: dict[int, list[int]] = {}
        self.heard: dict[int, list[bool]] = {}
        self.probs: dict[int, dict[int, np.ndarray]] = {}
        self.counts: dict[int, int] = {}  # windows of each fully decoded track
        self.errors: dict[int, audio.AudioError] = {}
        self.failure: BaseException | None = None
        self.stopped = False
        threads = {role: [threading.Thread(target=role, name=f"predict-{role.__name__[1:]}-{k}", daemon=True)
                          for k in range(jobs)] for role in (self._decode, self._score)}
        self.scorers = threads[self._score]
        for t in (*threads[self._decode], *self.scorers):
            t.start()

    def result(self, i: int) -> Any:
        """Track ``i``'s prediction (a :class:`utils.models.predict.TrackPrediction`) or
        :class:`utils.audio.AudioError`, once ready; re-raises what broke a thread."""
        with self.cond:
            self.cond.wait_for(lambda: self.failure is not None or i in self.errors
                               or (i in self.counts and len(self.probs[i]) == self.counts[i]))
            if self.failure is not None:
                raise self.failure
            self.consumed = i + 1
            self.cond.notify_all()
            starts, heard = self.starts.pop(i), self.heard.pop(i)
            probs, n = self.probs.pop(i), self.counts.pop(i, 0)
            if i in self.errors:
                return self.errors.pop(i)
        return self.predictor._track(str(self.paths[i]), np.asarray(starts), np.stack([probs[k] for k in range(n)]),
                                     np.asarray(heard))

    def stop(self, wait: float = 2.0) -> None:
        """Start nothing more, and wait up to ``wait`` seconds for the model threads to leave the
        runner. One still inside it when Python exits is torn down mid-call, and the C++ runtime aborts
        the process (``terminate called without an active exception``, exit status 134): so it went
        when the only file of a run failed while the model was still scoring its windows. Decoders
        are not waited for (a block of audio can take longer than a Ctrl-C should)."""
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        deadline = time.monotonic() + wait
        for t in self.scorers:
            t.join(max(0.0, deadline - time.monotonic()))

    def _fail(self, err: BaseException) -> None:
        with self.cond:
            self.failure, self.stopped = err, True
            self.cond.notify_all()

    def _decode(self) -> None:
        try:
            while True:
                with self.cond:
                    self.cond.wait_for(lambda: self.stopped or self.next >= len(self.paths)
                                       or self.next < self.consumed + self.ahead)
                    if self.stopped or self.next >= len(self.paths):
                        return
                    i, self.next = self.next, self.next + 1
                    self.starts[i], self.heard[i], self.probs[i] = [], [], {}
                n = 0
                try:
                    for start, window in self.predictor.windows(self.paths[i]):
                        self.starts[i].append(start)
                        self.heard[i].append(bool(audible(window, self.predictor.frontend)))
                        while not self._put((i, n, window)):
                            if self.stopped:
                                return
                        n += 1
                except audio.AudioError as err:
                    with self.cond:
                        self.errors[i] = err
                        self.cond.notify_all()
                    continue
                with self.cond:
                    self.counts[i] = n
                    self.cond.notify_all()
        except BaseException as err:  # noqa: BLE001 - a bug or MemoryError: raised in the consumer
            self._fail(err)
        finally:
            with self.cond:
                self.decoding -= 1

    def _put(self, item: tuple) -> bool:
        try:
            self.queue.put(item, timeout=0.1)
            return True
        except queue.Full:
            return False

    def _score(self) -> None:
        try:
            while not self.stopped:
                try:
                    batch = [self.queue.get(timeout=0.1)]
                except queue.Empty:
                    # decoders put their last window before they count themselves out: read in this order,
                    # no decoder left and an empty queue mean no window is left to score
                    if self.decoding == 0 and self.queue.empty():
                        return
                    continue
                while len(batch) < self.per_call:
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                probs = self.predictor.model(np.stack([w for _, _, w in batch]))
                with self.cond:
                    for (i, k, _), p in zip(batch, probs):
                        if i in self.probs:  # not a track that failed midway and was handed over
                            self.probs[i][k] = p
                    self.cond.notify_all()
        except BaseException as err:  # noqa: BLE001 - the runner failed: raised in the consumer
            self._fail(err)
