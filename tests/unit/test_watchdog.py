"""The run watchdog: sets terminate past a deadline, never on a run that finished."""

from __future__ import annotations

import time
from collections.abc import Callable

import onnxruntime as ort

from maas.serving.watchdog import Watchdog


def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_run_past_its_deadline_is_terminated() -> None:
    watchdog = Watchdog()
    options = ort.RunOptions()
    armed = watchdog.arm(options, 0.05)
    assert _eventually(lambda: bool(options.terminate))
    assert armed.fired


def test_a_finished_run_is_never_terminated() -> None:
    watchdog = Watchdog()
    options = ort.RunOptions()
    watchdog.arm(options, 0.05).disarm()
    time.sleep(0.3)
    assert options.terminate is False


def test_an_earlier_deadline_wakes_the_watchdog() -> None:
    """A long deadline armed first must not delay a short one armed after it."""
    watchdog = Watchdog()
    slow, fast = ort.RunOptions(), ort.RunOptions()
    watchdog.arm(slow, 3600)
    time.sleep(0.05)  # the thread is now asleep until the long deadline
    watchdog.arm(fast, 0.05)
    assert _eventually(lambda: bool(fast.terminate))
    assert slow.terminate is False


def test_finished_runs_do_not_pile_up() -> None:
    """Sequential runs (one request at a time, as on Lambda) keep the heap tiny."""
    watchdog = Watchdog()
    for _ in range(10_000):
        watchdog.arm(ort.RunOptions(), 20).disarm()
    assert watchdog.pending <= 2
