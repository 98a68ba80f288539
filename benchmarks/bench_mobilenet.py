"""A real architecture: MobileNetV2 (alpha 0.35, 96x96x3, 10 classes, no pretrained
weights), fit for one epoch on a fixed synthetic set, converted as `maas convert`
does to fp32, then fp16, int8-dynamic and int8-static (QDQ, calibrated on the
training images). For each: size, agreement with Keras, p50/p99 at batch 1 and 8
with the serving session options, and Keras' own latency beside them.

Not a test: run with `make bench` (after bench_core, whose RESULTS.md this extends).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.bench_core import append_section, percentile
from benchmarks.common import cpu_flags, keras_to_onnx, record
from maas.convert.data import Dataset
from maas.convert.optimize import fp16, int8_dynamic, int8_static
from maas.serving.runtime import session_options

CALLS = {1: 60, 8: 20}


def synthetic(count: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Images whose class is the brightest of ten vertical bands: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    images = rng.random((count, 96, 96, 3), dtype=np.float32) * 0.5
    for index, label in enumerate(labels):
        images[index, :, label * 9 : label * 9 + 9, :] += 0.5
    return images, labels


def latency(fn: Any, calls: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(samples), percentile(samples, 0.99)


def main() -> int:
    from maas.convert.tfimport import keras

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/RESULTS.md")
    work = Path(tempfile.mkdtemp(prefix="maas-bench-mobilenet-"))
    k = keras()
    k.utils.set_random_seed(0)
    model = k.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images, labels = synthetic(256, seed=0)
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0)
    evaluation, _ = synthetic(64, seed=1)
    reference = np.asarray(model(evaluation, training=False))

    fp32 = keras_to_onnx(model, work, "mobilenet")
    name = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    variants = {
        "fp32": fp32,
        "fp16": fp16(fp32, work / "fp16.onnx"),
        "int8-dynamic": int8_dynamic(fp32, work / "int8-dynamic.onnx"),
        "int8-static": int8_static(
            fp32, work / "int8-static.onnx", Dataset(feeds={name: images[:64]})
        ),
    }
    rows: list[dict[str, Any]] = []
    keras_row: dict[str, Any] = {"variant": "Keras model(x)", "size_mb": None, "agreement": 1.0}
    for batch, calls in CALLS.items():
        x = evaluation[:batch]
        keras_row[f"p50_b{batch}"], keras_row[f"p99_b{batch}"] = latency(
            lambda x=x: model(x, training=False), calls
        )
    for variant, path in variants.items():
        session = ort.InferenceSession(
            str(path), session_options(), providers=["CPUExecutionProvider"]
        )
        (outputs,) = session.run(None, {name: evaluation})
        row: dict[str, Any] = {
            "variant": variant,
            "size_mb": path.stat().st_size / 2**20,
            "agreement": float(np.mean(outputs.argmax(1) == reference.argmax(1))),
            "max_abs_diff": float(np.abs(outputs - reference).max()),
        }
        for batch, calls in CALLS.items():
            feeds = {name: evaluation[:batch]}
            row[f"p50_b{batch}"], row[f"p99_b{batch}"] = latency(
                lambda s=session, f=feeds: s.run(None, f), calls
            )
        row["vs_fp32_b8"] = row["p50_b8"] / rows[0]["p50_b8"] if rows else 1.0
        row["vs_keras_b8"] = row["p50_b8"] / keras_row["p50_b8"]
        rows.append(row)
    rows.append(keras_row)
    vnni = any("vnni" in flag for flag in cpu_flags())
    record("mobilenet", {"rows": rows, "vnni": vnni})
    append_section(out, section(rows, vnni))
    return 0


def section(rows: list[dict[str, Any]], vnni: bool) -> list[str]:
    lines = [
        "",
        "# A real architecture: MobileNetV2 0.35 at 96x96",
        "",
        "`benchmarks/bench_mobilenet.py`: `keras.applications.MobileNetV2(weights=None,",
        "alpha=0.35, input_shape=(96, 96, 3), classes=10)`, one epoch on 256 fixed synthetic",
        "images, converted by maas.convert; agreement is top-1 against Keras on 64 other",
        "images. Latency in ms, serving session options.",
        "",
        "| variant | size (MB) | top-1 agreement | max abs diff | p50 b1 | p99 b1 | p50 b8 "
        "| p99 b8 | b8 / fp32 | b8 / Keras |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = "-" if r["size_mb"] is None else f"{r['size_mb']:.2f}"
        diff = f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "-"
        ratio = f"{r['vs_fp32_b8']:.2f}x" if "vs_fp32_b8" in r else "-"
        keras = f"{r['vs_keras_b8']:.2f}x" if "vs_keras_b8" in r else "1.00x"
        lines.append(
            f"| {r['variant']} | {size} | {r['agreement']:.0%} | {diff} | {r['p50_b1']:.2f} | "
            f"{r['p99_b1']:.2f} | {r['p50_b8']:.2f} | {r['p99_b8']:.2f} | {ratio} | {keras} |"
        )
    by = {r["variant"]: r for r in rows}
    pays = by["int8-static"]["p50_b8"] < by["fp32"]["p50_b8"]
    lines += [
        "",
        f"This CPU {'has' if vnni else 'lacks'} VNNI. At batch 8, int8-static takes "
        f"{by['int8-static']['vs_fp32_b8']:.2f}x and int8-dynamic "
        f"{by['int8-dynamic']['vs_fp32_b8']:.2f}x fp32's time: quantization "
        f"{'pays off' if pays else 'does not pay off'} on these convolutions here"
        f"{'.' if pays else ' (it shrinks the file, not the latency).'}",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
