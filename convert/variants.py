"""Precision variants built from one fp32 ONNX file: the dense model's, or a pruned one's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import optimize
from .data import Dataset
from .progress import Reporter


def build_precisions(
    fp32: Path,
    order: Sequence[str],
    work: Path,
    calibration: Dataset | None,
    reporter: Reporter,
    prefix: str = "",
) -> dict[str, Path]:
    """Every precision in ``order`` from ``fp32``, as ``work/{prefix}{precision}.onnx``."""
    paths = {"fp32": fp32}
    what = f" ({prefix.rstrip('-')})" if prefix else ""
    for precision in order:
        target = work / f"{prefix}{precision}.onnx"
        if precision == "int8-dynamic":
            with reporter.step(f"quantizing int8-dynamic{what}"):
                paths[precision] = optimize.int8_dynamic(fp32, target)
        elif precision == "fp16":
            with reporter.step(f"converting to fp16{what}"):
                paths[precision] = optimize.fp16(fp32, target)
        elif precision == "int8-static":
            assert calibration is not None  # checked by ConvertOptions.check()
            with reporter.bar(len(calibration), f"calibrating int8-static{what}", "sample") as bar:
                paths[precision] = optimize.int8_static(fp32, target, calibration, bar)
    return paths
