"""Per-model inference statistics for this execution environment, in Triton's shape.

``GET /v2/models[/{m}[/versions/{v}]]/stats`` answers Triton's statistics
extension, so ``tritonclient``'s ``get_inference_statistics`` works unchanged.
On Lambda each execution environment counts its own requests, from its start:
the fleet's totals are the CloudWatch metrics, not this.

Counters only, under one lock: recording costs a dictionary lookup and a few
additions per request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Distinct batch sizes tracked per model version; any beyond are counted in
#: the totals only, so a client sweeping batch sizes cannot grow memory without bound.
MAX_BATCH_SIZES = 64


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.ns += ns

    def as_json(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class _BatchStats:
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)


@dataclass
class _VersionStats:
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)
    batches: dict[int, _BatchStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """One request's phases, in nanoseconds: validating the inputs, running, rendering."""

    input_ns: int
    infer_ns: int
    output_ns: int = 0


class InferenceStatistics:
    def __init__(self) -> None:
        self._stats: dict[tuple[str, int], _VersionStats] = {}
        self._lock = threading.Lock()

    def _entry(self, model: str, version: int) -> _VersionStats:
        entry = self._stats.get((model, version))
        if entry is None:
            entry = self._stats[(model, version)] = _VersionStats()
        return entry

    def succeeded(self, model: str, version: int, rows: int, timing: Timing) -> None:
        total = timing.input_ns + timing.infer_ns + timing.output_ns
        with self._lock:
            entry = self._entry(model, version)
            entry.last_inference_ms = int(time.time() * 1000)
            entry.inference_count += rows
            entry.execution_count += 1
            entry.success.add(total)
            entry.compute_input.add(timing.input_ns)
            entry.compute_infer.add(timing.infer_ns)
            entry.compute_output.add(timing.output_ns)
            batch = entry.batches.get(rows)
            if batch is None and len(entry.batches) < MAX_BATCH_SIZES:
                batch = entry.batches[rows] = _BatchStats()
            if batch is not None:
                batch.compute_input.add(timing.input_ns)
                batch.compute_infer.add(timing.infer_ns)
                batch.compute_output.add(timing.output_ns)

    def failed(self, model: str, version: int, elapsed_ns: int) -> None:
        """A request that reached the model's version and failed (bad inputs, a run error)."""
        with self._lock:
            entry = self._entry(model, version)
            entry.last_inference_ms = int(time.time() * 1000)
            entry.fail.add(elapsed_ns)

    def versions(self, model: str | None = None) -> list[tuple[str, int]]:
        with self._lock:
            keys = list(self._stats)
        return sorted(k for k in keys if model is None or k[0] == model)

    def model_stats(self, model: str, version: int) -> dict[str, Any]:
        """One ``$model_stat`` object of Triton's statistics extension."""
        with self._lock:
            entry = self._stats.get((model, version)) or _VersionStats()
            zero = _Duration().as_json()
            return {
                "name": model,
                "version": str(version),
                "last_inference": entry.last_inference_ms,
                "inference_count": entry.inference_count,
                "execution_count": entry.execution_count,
                "inference_stats": {
                    "success": entry.success.as_json(),
                    "fail": entry.fail.as_json(),
                    # No queue (each request runs at once) and no response cache.
                    "queue": zero,
                    "compute_input": entry.compute_input.as_json(),
                    "compute_infer": entry.compute_infer.as_json(),
                    "compute_output": entry.compute_output.as_json(),
                    "cache_hit": zero,
                    "cache_miss": zero,
                },
                "batch_stats": [
                    {
                        "batch_size": size,
                        "compute_input": batch.compute_input.as_json(),
                        "compute_infer": batch.compute_infer.as_json(),
                        "compute_output": batch.compute_output.as_json(),
                    }
                    for size, batch in sorted(entry.batches.items())
                ],
            }
