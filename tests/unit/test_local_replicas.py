"""The pieces that let `maas serve` run invocations concurrently."""

from __future__ import annotations

import io
import threading

from maas.local_replicas import InvocationMetrics, RoutedTelemetry, WholeLines


class Recorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_whole_lines_passes_on_only_complete_lines_each_in_one_write() -> None:
    target = Recorder()
    writes = target.writes
    stream = WholeLines(target)
    stream.write('{"a":')
    assert writes == []
    other = threading.Thread(target=lambda: stream.write('{"b":2}\n'))
    other.start()
    other.join()
    stream.write("1}\n")
    stream.write("tail")
    stream.flush()
    assert writes == ['{"b":2}\n', '{"a":1}\n', "tail"]


def test_each_thread_records_into_its_own_invocation_metric_set() -> None:
    telemetry = RoutedTelemetry(InvocationMetrics("maas"))
    mine, theirs = InvocationMetrics("maas"), InvocationMetrics("maas")

    def record(metrics: InvocationMetrics, model: str) -> None:
        with telemetry.bound_to(metrics):
            telemetry.request(model, 1, 0.5, rows=2, cache_hit=True)

    thread = threading.Thread(target=record, args=(theirs, "other"))
    thread.start()
    thread.join()
    record(mine, "digits")
    assert mine.provider.dimension_set["model"] == "digits"
    assert theirs.provider.dimension_set["model"] == "other"
    assert set(mine.provider.metric_set) == {"InferenceTime", "Predictions", "CacheHit"}
    assert telemetry.metrics is not mine  # unbound again: the process-wide set
