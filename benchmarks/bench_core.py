"""Serving-core overhead: DataPlane.infer against raw onnxruntime session.run.

Same model, same input, same process, interleaved rounds; reports p50/p99 and
the core/raw ratio at batch 1 and 64. Not a test: run with `make bench`.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from aws_lambda_powertools.metrics import EphemeralMetrics

from benchmarks.common import TARGETS_MARKER, machine_lines, reset_results
from maas import metrics
from maas.config import ServingConfig
from maas.promotion import release
from maas.registry import Registry
from maas.serving.dataplane import DataPlane
from maas.serving.request_checks import validate_inputs
from maas.serving.runtime import session_options
from maas.store import LocalStore
from maas.tensors import InferenceRequest, Tensor, tensor_from_data
from tests.support import onnx_models


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table_rows(rows: list[tuple[int, str, float, float, float]]) -> list[str]:
    """Markdown rows: batch, case, p50, p99, ratio to the run's baseline."""
    return [
        f"| {b} | {name} | {p50:.1f} | {p99:.1f} | {ratio:.2f}x |"
        for b, name, p50, p99, ratio in rows
    ]


def append_section(out: Path, lines: list[str]) -> None:
    """Add a section to RESULTS.md (bench_core writes it anew) and show it."""
    with out.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))


def measure(fn: Callable[[], object], rounds: int, per_round: int) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        for _ in range(per_round):
            start = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - start) / 1000.0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="maas-bench-"))
    model_path = onnx_models.save(onnx_models.digits_mlp(hidden=128), work / "digits.onnx")
    registry = Registry(LocalStore(work / "registry"))
    release(registry, model_path, "digits", alias="production")
    telemetry = metrics.Telemetry(EphemeralMetrics(namespace="bench"))
    plane = DataPlane(
        ServingConfig(registry_url=registry.url, cache_dir=work / "cache"),
        registry=registry,
        telemetry=telemetry,
    )
    plane.ready("digits")
    raw = ort.InferenceSession(
        str(model_path), session_options(), providers=["CPUExecutionProvider"]
    )

    rows = []
    for batch in (1, 64):
        x = np.random.default_rng(0).random((batch, 8, 8), dtype=np.float32)
        as_list = x.tolist()
        ready = InferenceRequest([Tensor("input", "FP32", x)])

        def run_raw(x: np.ndarray = x) -> object:
            return raw.run(None, {"input": x})

        def run_core(req: InferenceRequest = ready) -> object:
            result = plane.infer("digits", req)
            telemetry.metrics.clear_metrics()  # the handler flushes once per invocation
            return result

        def run_core_json(data: list[object] = as_list, batch: int = batch) -> object:
            req = InferenceRequest([tensor_from_data("input", "FP32", [batch, 8, 8], data)])
            result = plane.infer("digits", req)
            telemetry.metrics.clear_metrics()
            return result

        cases: dict[str, Callable[[], object]] = {
            "raw session.run": run_raw,
            "core infer (tensor)": run_core,
            "core infer (from JSON lists)": run_core_json,
        }
        for fn in cases.values():  # warm-up
            for _ in range(200):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        order = list(cases)
        per_round = 50
        for _ in range(max(1, args.iterations // per_round)):
            random.shuffle(order)  # interleave so drift hits every case alike
            for name in order:
                samples[name] += measure(cases[name], 1, per_round)
        base = statistics.median(samples["raw session.run"])
        for name in cases:
            p50 = statistics.median(samples[name])
            rows.append((batch, name, p50, percentile(samples[name], 0.99), p50 / base))

    # Where the core's time goes, batch 1, measured in isolation in this run.
    x1 = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    request1 = InferenceRequest([Tensor("input", "FP32", x1)])
    resolved = plane.resolve("digits")
    loaded, _, _ = plane.model(resolved)

    def record_metrics() -> None:
        telemetry.request("digits", 1, 0.01, 1, cache_hit=True)
        telemetry.metrics.clear_metrics()

    parts: dict[str, Callable[[], object]] = {
        "resolve (alias cache + canary split)": lambda: plane.resolve("digits"),
        "cache lookup": lambda: plane.model(resolved),
        "validate inputs": lambda: validate_inputs(
            request1.inputs, loaded.inputs, max_batch=1024, nan_policy="reject"
        ),
        "metrics (3 EMF values + dimensions)": record_metrics,
    }
    breakdown = [(label, statistics.median(measure(fn, 20, 100))) for label, fn in parts.items()]

    lines = [
        "# Serving-core benchmark",
        "",
        "`make bench` (benchmarks/bench_core.py). The digits MLP (64→128→10, FP32), one",
        "process, cases interleaved in shuffled rounds of 50 calls; ratios are against",
        "raw `session.run` on an identically configured session in the same run.",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"Python {sys.version.split()[0]}, onnxruntime {ort.__version__}, "
        f"{args.iterations} calls per case and batch size.",
        "",
        "| batch | case | p50 (µs) | p99 (µs) | p50 / raw |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += table_rows(rows)
    lines += [
        "",
        "Breakdown of the core's own work at batch 1 (p50, each step alone):",
        "",
        "| step | p50 (µs) |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {p50:.1f} |" for label, p50 in breakdown]
    lines += [
        "",
        "The isolated steps add up to less than the measured overhead; the rest is",
        "building the result objects and timing calls, plus an interaction we have",
        "not pinned down (it is not onnxruntime's thread pool: one intra-op thread",
        "gives the same ratios). Against the milliseconds that API Gateway and Lambda",
        "add to every request, the core's tens of microseconds do not show.",
        "",
        "What the core adds per call: alias lookup (cached, TTL), cache peek, input",
        "validation against the manifest (names, dtype, shape, batch cap, NaN/Inf scan),",
        "output selection, and three metrics. 'From JSON lists' adds building the numpy",
        "array from nested Python lists, as the JSON protocol path does.",
        "",
    ]
    header = ["# maas benchmarks (`make bench`)", "", *machine_lines(), "", TARGETS_MARKER, ""]
    args.out.write_text("\n".join(header + lines), encoding="utf-8")
    reset_results()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
