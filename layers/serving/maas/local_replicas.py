"""Concurrent invocations for `maas serve`: each borrows its own copy of the
per-invocation state, over one shared DataPlane.

Lambda runs one invocation per execution environment at a time, and two parts of
the handler rely on that: Powertools' resolver keeps the event it is handling in
``app.current_event`` (the routes read headers and body from there), and
Powertools' ``Metrics`` keeps one metric set for the whole process (class-level,
by design, so that any module can add to it). `maas serve` answers many
connections at once. Serialising them behind one lock kept that state safe but
let one slow model stall every request, ``/v2/health/live`` included.

So a concurrent invocation borrows a *replica* (an :class:`InferenceHandler`
with its own resolver and its own metric set) from a pool that grows to the
highest concurrency seen. The replicas share the DataPlane, whose alias and
model caches are thread-safe, so every model is loaded once. Per-request
metrics recorded by the shared DataPlane go to the metric set of the replica
running on the calling thread. And since Powertools prints each metric set
with ``print()`` (its text, then the newline: two writes), stdout is made to
write whole lines, so concurrent records never interleave. With
``metrics_on_stdout=False`` (`maas serve --log-format text`, the default) those
whole lines that are EMF records are dropped there: Powertools'
``POWERTOOLS_METRICS_DISABLED`` would skip the print but also the clearing, so a
long-running server's metric set would only grow.
"""

from __future__ import annotations

import io
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from aws_lambda_powertools import Metrics

from maas.http_api import build_app
from maas.lambda_entry import InferenceHandler, service_logger
from maas.metrics import Telemetry

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class InvocationMetrics(Metrics):
    """Powertools ``Metrics`` with a metric set of its own instead of the class-wide one."""

    def __init__(self, namespace: str | None) -> None:
        # Metrics.__init__ builds its provider from these; instance attributes
        # shadow the class-level dictionaries every other Metrics shares.
        self._metrics = {}
        self._dimensions = {}
        self._metadata = {}
        self._default_dimensions = {}
        super().__init__(namespace=namespace)


class RoutedTelemetry(Telemetry):
    """The shared DataPlane's telemetry: the metric set is the one bound to the
    calling thread's invocation, else the process-wide one (background loads)."""

    def __init__(self, process_metrics: Any) -> None:
        super().__init__(process_metrics)
        self._bound = threading.local()

    @property
    def metrics(self) -> Any:
        bound = getattr(self._bound, "metrics", None)
        return bound if bound is not None else super().metrics

    @contextmanager
    def bound_to(self, metrics: Any) -> Iterator[None]:
        self._bound.metrics = metrics
        try:
            yield
        finally:
            self._bound.metrics = None


class WholeLines(io.TextIOBase):
    """A text stream that passes on only whole lines, each in one write: what one
    thread has written so far of a line waits (per thread) for its newline."""

    def __init__(self, target: TextIO, metrics_records: bool = True) -> None:
        self.target = target
        self.metrics_records = metrics_records
        self._partial = threading.local()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        lines, newline, rest = (getattr(self._partial, "text", "") + text).rpartition("\n")
        self._partial.text = rest
        if newline and not self.metrics_records:
            kept = [line for line in lines.split("\n") if not line.startswith(_EMF_RECORD)]
            lines = "\n".join(kept)
            newline = newline if kept else ""
        if newline:
            with self._lock:
                self.target.write(lines + newline)
        return len(text)

    def flush(self) -> None:
        rest, self._partial.text = getattr(self._partial, "text", ""), ""
        with self._lock:
            if rest:
                self.target.write(rest)
            self.target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.target.encoding


#: How Powertools' serialised metric set starts (its "_aws" key comes first).
_EMF_RECORD = '{"_aws":'


def print_whole_lines(metrics_records: bool = True) -> None:
    if isinstance(sys.stdout, WholeLines):
        sys.stdout.metrics_records = metrics_records
    else:
        sys.stdout = WholeLines(sys.stdout, metrics_records)


@dataclass(frozen=True)
class _Replica:
    handler: InferenceHandler
    metrics: InvocationMetrics


class Replicas:
    """A handler that can be called from many threads at once (see the module doc)."""

    def __init__(
        self, handler: InferenceHandler, body_limit: int, metrics_on_stdout: bool = True
    ) -> None:
        self.plane = handler.plane
        self.body_limit = body_limit
        process_metrics = self.plane.telemetry.metrics
        self.namespace: str | None = process_metrics.namespace
        self.telemetry = RoutedTelemetry(process_metrics)
        self.plane.telemetry = self.telemetry
        self.logger = service_logger()
        self._idle: queue.SimpleQueue[_Replica] = queue.SimpleQueue()
        self._building = threading.Lock()
        print_whole_lines(metrics_on_stdout)

    def _replica(self) -> _Replica:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        plane = self.plane
        with self._building:  # InferenceHandler's constructor edits warnings.filters
            metrics = InvocationMetrics(self.namespace)
            app = build_app(lambda: plane, self.body_limit)
            handler = InferenceHandler(app, plane, self.logger, Telemetry(metrics))
        return _Replica(handler, metrics)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        replica = self._replica()
        try:
            with self.telemetry.bound_to(replica.metrics):
                return replica.handler(event, context)
        finally:
            self._idle.put(replica)


class Serialized:
    """Any other handler runs one invocation at a time, as in one Lambda environment."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            return self.handler(event, context)


def concurrent(handler: Handler, body_limit: int, metrics_on_stdout: bool = True) -> Handler:
    """The handler `maas serve` calls from its connection threads."""
    if isinstance(handler, InferenceHandler):
        return Replicas(handler, body_limit, metrics_on_stdout)
    return Serialized(handler)
