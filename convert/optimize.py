"""Offline optimisation and quantisation of an FP32 ONNX model with onnxruntime.

Only hardware-independent work happens here: onnxruntime's basic graph
optimisations (through ``quant_pre_process``) and the precision changes. The
full, machine-specific optimisation happens when the serving session is
created, on the machine that serves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maas.errors import ModelRefused

from .data import Dataset

#: Every precision maas produces, in the order the report lists them by default.
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static")

#: Samples per calibration batch for int8-static.
CALIBRATION_BATCH = 32


@contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice at WARNING on the root logger; keep stderr clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _refuse(step: str, exc: Exception) -> ModelRefused:
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return ModelRefused(f"{step} failed: {text}")


def optimize_basic(src: Path, dst: Path) -> Path:
    """Shape inference plus onnxruntime's basic (hardware-independent) optimisation.

    ``quant_pre_process`` is what onnxruntime recommends before quantisation;
    when its symbolic shape inference cannot handle a model, a plain basic-level
    session optimisation is used instead.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with _quiet():
            quant_pre_process(str(src), str(dst))
        return dst
    except Exception:  # noqa: S110 — fall back to the plain optimiser below
        pass
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    try:
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise _refuse("basic optimisation", exc) from exc
    return dst


def int8_dynamic(src: Path, dst: Path) -> Path:
    """INT8 weights; activations quantised at run time (no calibration needed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with _quiet():
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    except Exception as exc:
        raise _refuse("int8-dynamic quantisation", exc) from exc
    return dst


class _Calibration:
    """onnxruntime's CalibrationDataReader over a :class:`Dataset`, reporting progress."""

    def __init__(self, data: Dataset, batch: int, progress: Callable[[int], None] | None) -> None:
        self.data = data
        self.batch = batch
        self.progress = progress
        self.start = 0

    def get_next(self) -> dict[str, Any] | None:
        if self.start >= len(self.data):
            return None
        feeds = self.data.take(self.start, self.start + self.batch)
        self.start += self.batch
        if self.progress is not None:
            self.progress(len(next(iter(feeds.values()))))
        return feeds

    def rewind(self) -> None:
        self.start = 0


def _output_nodes(path: Path) -> list[str]:
    """Nodes that produce a graph output of an element-wise kind (Softmax, Sigmoid…).

    Quantizing the final probabilities to 8 bits buys no speed (they are computed
    in float either way) and rounds them to steps of 1/255 of their range, which
    collapses close scores into ties; those nodes stay in float.
    """
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    outputs = {value.name for value in model.graph.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type in _FLOAT_OUTPUT_OPS
        and node.name
        and any(name in outputs for name in node.output)
    ]


#: Final activations left in float by int8-static (see :func:`_output_nodes`).
_FLOAT_OUTPUT_OPS = frozenset({"Softmax", "LogSoftmax", "Sigmoid", "Tanh"})


def int8_static(
    src: Path, dst: Path, calibration: Dataset, progress: Callable[[int], None] | None = None
) -> Path:
    """INT8 weights and activations in QDQ format, calibrated (min/max) on ``calibration``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(_Calibration, CalibrationDataReader):  # type: ignore[misc]
        pass

    reader = Reader(calibration, CALIBRATION_BATCH, progress)
    try:
        with _quiet():
            quantize_static(
                str(src),
                str(dst),
                reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=_output_nodes(src),
            )
    except Exception as exc:
        raise _refuse("int8-static quantisation", exc) from exc
    return dst


def fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and compute, with FP32 inputs and outputs so the API does not change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        with _quiet():
            model = convert_float_to_float16(onnx.load_model(str(src)), keep_io_types=True)
            # The I/O Casts are appended at the end; the ONNX checker wants a sorted graph.
            OnnxModel.graph_topological_sort(model.graph, is_deterministic=True)
        onnx.save_model(model, str(dst))
    except Exception as exc:
        raise _refuse("fp16 conversion", exc) from exc
    return dst
