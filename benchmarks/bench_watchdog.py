"""What the run deadline costs per inference: a fresh ``RunOptions`` plus arming and
disarming the shared watchdog, against a bare ``session.run``, in the same run.

Not a test: run with `make bench` (after bench_core, whose RESULTS.md this extends).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.bench_core import append_section, measure, percentile
from maas.serving.runtime import LoadedModel, session_options
from maas.serving.watchdog import WATCHDOG
from tests.support import onnx_models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()

    path = onnx_models.save(onnx_models.digits_mlp(), Path(tempfile.mkdtemp()) / "digits.onnx")
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    manifest: dict[str, object] = {"model": {"size": path.stat().st_size}}
    loaded = LoadedModel("digits", 1, manifest, session, 0, run_timeout_ms=20_000)
    feed = {"input": np.zeros((1, 8, 8), np.float32)}

    def arm_and_disarm() -> None:
        WATCHDOG.arm(ort.RunOptions(), 20.0).disarm()

    cases: dict[str, Callable[[], object]] = {
        "session.run, no deadline": lambda: session.run(["probabilities"], feed),
        "LoadedModel.run (with deadline)": lambda: loaded.run(feed, ["probabilities"]),
        "RunOptions() + arm + disarm alone": arm_and_disarm,
    }
    for fn in cases.values():
        for _ in range(500):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for _ in range(max(1, args.iterations // 50)):
        random.shuffle(order)
        for name in order:
            samples[name] += measure(cases[name], 1, 50)
    base = statistics.median(samples["session.run, no deadline"])
    lines = [
        "",
        "## Run deadline (watchdog) cost per inference, digits MLP, batch 1",
        "",
        "| case | p50 µs | p99 µs | vs bare run |",
        "|---|---:|---:|---:|",
    ]
    for name, values in samples.items():
        p50 = statistics.median(values)
        lines.append(f"| {name} | {p50:.2f} | {percentile(values, 0.99):.2f} | {p50 / base:.2f}x |")
    lines.append(f"\nwatchdog entries held after the run: {WATCHDOG.pending}\n")
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
