"""Drift's cost on the request path: DataPlane.infer at batch 1 (and 64) on a digits
classifier whose version carries reference statistics, with drift on and off, measured
side by side in interleaved rounds (`make bench`)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import platform
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from aws_lambda_powertools.metrics import EphemeralMetrics
from onnx import TensorProto, helper, numpy_helper

from benchmarks.bench_core import append_section, measure, percentile
from maas import metrics
from maas.config import ServingConfig
from maas.drift.samples import reference_from_file
from maas.onnxfile import inspect_onnx
from maas.promotion import release
from maas.registry import Registry
from maas.serving.dataplane import DataPlane
from maas.store import LocalStore
from maas.tensors import InferenceRequest, Tensor


def digits_classifier(root: Path) -> tuple[Path, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    fitted = LogisticRegression(max_iter=500).fit(x[:1300].reshape(1300, -1), digits.target[:1300])
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])],
        [
            numpy_helper.from_array(fitted.coef_.T.astype(np.float32), "w"),
            numpy_helper.from_array(fitted.intercept_.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = root / "digits.onnx"
    onnx.save_model(model, str(path))
    np.savez(root / "train.npz", x=x[:1300])
    return path, x[1300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="maas-bench-drift-") as scratch,
        contextlib.redirect_stdout(io.StringIO()),  # EMF records, one per window
    ):
        root = Path(scratch)
        path, x = digits_classifier(root)
        info = inspect_onnx(path)
        monitoring = reference_from_file(
            path,
            root / "train.npz",
            [s.as_json() for s in info.inputs],
            [s.as_json() for s in info.outputs],
        )
        registry = Registry(LocalStore(root / "registry"), actor="bench")
        release(registry, path, "digits", alias="production", details={"monitoring": monitoring})
        planes = {
            drift: DataPlane(
                ServingConfig(registry_url=registry.url, cache_dir=root / f"c{drift}", drift=drift),
                telemetry=metrics.Telemetry(EphemeralMetrics(namespace="bench")),
            )
            for drift in (False, True)
        }
        lines = [
            "",
            "# Drift monitoring: its cost on the request path",
            "",
            f"`make bench` (benchmarks/bench_drift.py). {platform.machine()}, Python "
            f"{sys.version.split()[0]}. DataPlane.infer on a digits classifier (64 features, "
            "a reference in its manifest), drift on against drift off, interleaved rounds, "
            f"{args.iterations} calls per case; windows of 500 rows (PSI and the EMF record "
            "at each boundary are included).",
            "",
            "| batch | drift off p50 µs | drift on p50 µs | added p50 µs | target (batch 1) |",
            "|---:|---:|---:|---:|---|",
        ]
        for batch in (1, 64):
            rows = x[:batch]

            calls = {
                drift: functools.partial(
                    planes[drift].infer, "digits", InferenceRequest([Tensor("input", "FP32", rows)])
                )
                for drift in (False, True)
            }
            for fn in calls.values():
                fn()
            samples: dict[bool, list[float]] = {False: [], True: []}
            rounds = 10
            for _ in range(rounds):
                order = [False, True]
                random.shuffle(order)
                for key in order:
                    samples[key] += measure(calls[key], 1, args.iterations // rounds)
            off, on = percentile(samples[False], 0.5), percentile(samples[True], 0.5)
            target = ("met" if on - off <= 10 else "**not met**") if batch == 1 else ""
            lines.append(f"| {batch} | {off:.1f} | {on:.1f} | {on - off:.1f} | {target} |")
    append_section(args.out, [*lines, ""])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
