"""utils.models.pool.imap: ordered results, errors at their item, and letting go without waiting."""
import threading
import time

import pytest

from utils.models.pool import imap


def test_results_in_order_and_errors_at_their_item():
    def slow_square(x):
        time.sleep(0.05 * (5 - x))  # later items finish first
        if x == 4:
            raise ValueError("four")
        return x * x
    it = imap(slow_square, range(6), jobs=3)
    assert [next(it) for _ in range(4)] == [0, 1, 4, 9]
    with pytest.raises(ValueError, match="four"):
        next(it)


def test_every_item_once_in_order_past_the_first_window():
    assert list(imap(lambda x: x * x, range(50), jobs=2)) == [x * x for x in range(50)]
    assert list(imap(str, iter(range(7)), jobs=3)) == [str(x) for x in range(7)]


def test_closing_does_not_wait_for_calls_in_flight_and_starts_no_more():
    started, release = [], threading.Event()

    def blocked(x):
        started.append(x)
        release.wait(30)
        return x
    it = imap(blocked, range(100), jobs=2)
    threading.Timer(0.2, release.set).start()
    assert next(it) == 0  # released after 0.2 s
    release.clear()
    time.sleep(0.2)  # two calls in flight again, blocked
    t = time.monotonic()
    it.close()
    assert time.monotonic() - t < 0.5
    release.set()
    time.sleep(0.2)
    assert len(started) <= 5  # at most 2 * jobs ahead of the consumer, none after closing
