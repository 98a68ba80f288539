"""A deadline for each inference run: onnxruntime has none, only ``RunOptions.terminate``.

One shared daemon thread sleeps until the earliest armed deadline and sets
``terminate`` on every run still going past its own; onnxruntime then stops
that run between kernels. A single long-running kernel cannot be interrupted:
the flag is only checked between them.

Arming costs a lock and a heap push (about a microsecond; a thread per run,
``threading.Timer``, costs far more). Finished runs are dropped lazily from
the head of the heap, so with one timeout for every run the heap holds about
as many entries as there are runs in flight, and the thread is woken only when
a new deadline is earlier than the one it sleeps until (about once per
timeout, not once per run).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import Any


class Armed:
    """One run's deadline; :meth:`disarm` when the run returns, however it returns."""

    __slots__ = ("done", "fired", "run_options")

    def __init__(self, run_options: Any) -> None:
        self.run_options = run_options
        self.done = False
        self.fired = False

    def disarm(self) -> None:
        self.done = True


class Watchdog:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Armed]] = []
        self._order = itertools.count()
        self._sleeping_until = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, run_options: Any, timeout_s: float) -> Armed:
        """Set ``run_options.terminate`` once ``timeout_s`` has passed, unless disarmed first."""
        armed = Armed(run_options)
        when = self._clock() + timeout_s
        with self._condition:
            heap = self._heap
            while heap and heap[0][2].done:
                heapq.heappop(heap)
            heapq.heappush(heap, (when, next(self._order), armed))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, daemon=True, name="maas-run-watchdog"
                )
                self._thread.start()
            elif when < self._sleeping_until:
                self._condition.notify()
        return armed

    @property
    def pending(self) -> int:
        """Entries still held (runs in flight, plus finished ones not yet dropped)."""
        with self._condition:
            return len(self._heap)

    def _watch(self) -> None:
        with self._condition:
            while True:
                now = self._clock()
                heap = self._heap
                while heap and (heap[0][2].done or heap[0][0] <= now):
                    _, _, armed = heapq.heappop(heap)
                    if not armed.done:
                        armed.fired = True
                        armed.run_options.terminate = True
                if heap:
                    self._sleeping_until = heap[0][0]
                    self._condition.wait(heap[0][0] - now)
                else:
                    self._sleeping_until = math.inf
                    self._condition.wait()


#: The process's one watchdog; its thread starts with the first run.
WATCHDOG = Watchdog()
