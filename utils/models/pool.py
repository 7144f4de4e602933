"""An ordered map over daemon threads that a consumer can abandon at once (Ctrl-C).

:class:`concurrent.futures.ThreadPoolExecutor` is the wrong tool for a CLI
that must stop on Ctrl-C: ``pool.map`` submits every item up front, leaving
the executor (its ``with`` block, or the interpreter's exit) waits for all of
them, and its threads are joined when Python exits. :func:`imap` starts at
most ``2 * jobs`` calls ahead of the consumer, starts no more once the
consumer lets go of it, and runs them in daemon threads, which do not hold up
the exit of the process: calls still in flight are abandoned, not awaited.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def imap(fn: Callable[[T], R], items: Iterable[T], jobs: int, name: str = "imap") -> Iterator[R]:
    """``fn(item)`` for each of ``items`` in ``jobs`` daemon threads, yielded in the order of ``items``.

    An exception raised by ``fn`` is raised here, at its item. Closing the
    iterator (or an exception in the consumer) cancels the calls not yet
    started and returns without waiting for those running.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be 1 or more, got {jobs}")
    work: queue.SimpleQueue = queue.SimpleQueue()

    def worker() -> None:
        while (task := work.get()) is not None:
            future, item = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(item))
                except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
                    future.set_exception(err)

    threads = [threading.Thread(target=worker, name=f"{name}-{i}", daemon=True) for i in range(jobs)]
    for t in threads:
        t.start()
    items = iter(items)
    pending: deque[Future] = deque()

    def submit(n: int) -> None:
        for item in islice(items, n):  # not zip(items, range(n)): that drops an item when range runs out
            future: Future = Future()
            work.put((future, item))
            pending.append(future)

    try:
        submit(2 * jobs)
        while pending:
            result = pending[0].result()
            pending.popleft()
            submit(1)
            yield result
    finally:
        for future in pending:
            future.cancel()
        for _ in threads:
            work.put(None)
