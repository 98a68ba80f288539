"""Ensembles: accuracy of members and ensembles on the digits eval split, and the
latency of an ensemble against a single model through the serving core.

The members are three MLPs (64 → 32 relu → 10 softmax, scikit-learn's
MLPClassifier with seeds 0, 1, 2) trained on the train split of
`maas.convert.train.digits_splits(0)` (the split `maas train-example` makes) and
written as ONNX with onnx.helper. Latency is `DataPlane.infer` p50 at batch 1
and 64, interleaved rounds in one run, against the single model of the same run.
Not a test: run with `make bench`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import platform
import random
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from aws_lambda_powertools.metrics import EphemeralMetrics
from onnx import TensorProto, helper, numpy_helper

from benchmarks.bench_core import append_section, measure, percentile
from maas import metrics
from maas.config import ServingConfig
from maas.ensemble.create import create_ensemble
from maas.ensemble.members import member_specs
from maas.promotion import release
from maas.registry import Registry
from maas.serving.dataplane import DataPlane
from maas.store import LocalStore
from maas.tensors import InferenceRequest, Tensor

SEEDS = (0, 1, 2)


def mlp_onnx(coefs: list[Any], intercepts: list[Any]) -> onnx.ModelProto:
    """A trained MLPClassifier as Flatten → Gemm → Relu → Gemm → Softmax."""
    arrays = [*coefs, *intercepts]
    names = ["w1", "w2", "b1", "b2"]
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(np.asarray(a, np.float32), n)
            for a, n in zip(arrays, names, strict=True)
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def train_members(directory: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    from sklearn.neural_network import MLPClassifier

    from maas.convert.train import digits_splits

    splits = digits_splits(0)
    paths = []
    for seed in SEEDS:
        classifier = MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged at 60 iterations: on purpose
            classifier.fit(splits.x_train.reshape(len(splits.x_train), -1), splits.y_train)
        path = directory / f"member-{seed}.onnx"
        onnx.save_model(mlp_onnx(classifier.coefs_, classifier.intercepts_), str(path))
        paths.append(path)
    return paths, splits.x_eval, splits.y_eval


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    # Each inference flushes its EMF record to stdout; only the tables are shown.
    with (
        tempfile.TemporaryDirectory(prefix="maas-bench-ensemble-") as scratch,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        root = Path(scratch)
        paths, x_eval, y_eval = train_members(root)
        registry = Registry(LocalStore(root / "registry"), actor="bench")
        names = [f"m{seed}" for seed in SEEDS]
        for name, path in zip(names, paths, strict=True):
            release(registry, path, name, alias="production")
        pair = member_specs([f"{names[0]}:1", f"{names[1]}:1"])
        trio = member_specs([f"{n}:1" for n in names])
        weighted = member_specs([f"{n}:1" for n in names], [2.0, 1.0, 1.0])
        built = {
            "mean of 2": create_ensemble(registry, "mean2", pair, "mean", alias="production"),
            "mean of 2, fused": create_ensemble(
                registry, "mean2f", pair, "mean", alias="production", fuse=True
            ),
            "mean of 3": create_ensemble(registry, "mean3", trio, "mean", alias="production"),
            "weighted mean of 3 (2:1:1)": create_ensemble(
                registry, "wmean3", weighted, "mean", alias="production"
            ),
            "vote of 3": create_ensemble(registry, "vote3", trio, "vote", alias="production"),
            "vote of 3, fused": create_ensemble(
                registry, "vote3f", trio, "vote", alias="production", fuse=True
            ),
        }
        plane = DataPlane(
            ServingConfig(registry_url=registry.url, cache_dir=root / "cache"),
            telemetry=metrics.Telemetry(EphemeralMetrics(namespace="bench")),
        )

        def answer(name: str, x: np.ndarray) -> np.ndarray:
            result = plane.infer(name, InferenceRequest([Tensor("input", "FP32", x)]))
            return np.asarray(result.outputs[0].array)

        rows = [(f"member {n} (seed {s})", n) for n, s in zip(names, SEEDS, strict=True)]
        rows += [(label, released.name) for label, released in built.items()]
        accuracy = ["", "### Ensembles: accuracy on the digits eval split", ""]
        accuracy += [
            f"{len(y_eval)} rows of `digits_splits(0)`; members trained on its train split.",
            "",
        ]
        accuracy += ["| model | accuracy | rows without a majority |", "|---|---:|---:|"]
        for label, name in rows:
            out = answer(name, x_eval)
            correct = float((out.argmax(-1) == y_eval).mean())
            tied = "-"
            if "vote" in label:
                # A tied row carries the 1e-4 bonus: its top fraction is off the vote grid.
                top = np.sort(out, axis=-1)[:, -2:]
                tied = str(int((np.abs(top[:, 1] - top[:, 0] - 1e-4) < 1e-6).sum()))
            accuracy.append(f"| {label} | {correct:.4f} | {tied} |")

        latency = [
            "",
            "### Ensembles: latency against a single model (DataPlane.infer, p50)",
            "",
            f"{platform.processor() or platform.machine()}, Python "
            f"{sys.version.split()[0]}, interleaved rounds, {args.iterations} calls per case.",
            "",
            "| batch | case | p50 µs | vs single |",
            "|---:|---|---:|---:|",
        ]
        cases = [("single model", names[0]), *[(label, r.name) for label, r in built.items()]]
        for batch in (1, 64):
            x = x_eval[:batch]
            calls: dict[str, Callable[[], object]] = {
                label: functools.partial(answer, name, x) for label, name in cases
            }
            for call in calls.values():
                call()  # load every member first
            samples: dict[str, list[float]] = {label: [] for label in calls}
            rounds = 10
            for _ in range(rounds):
                order = list(calls)
                random.shuffle(order)
                for label in order:
                    samples[label] += measure(calls[label], 1, args.iterations // rounds)
            base = percentile(samples["single model"], 0.5)
            for label in calls:
                p50 = percentile(samples[label], 0.5)
                latency.append(f"| {batch} | {label} | {p50:.1f} | {p50 / base:.2f}x |")
    append_section(args.out, accuracy + latency + [""])
    return 0


if __name__ == "__main__":
    sys.exit(main())
