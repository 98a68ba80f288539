"""`maas convert --prune`: pruned models, and every requested precision of each.

The gate judges them as the issue's rules say: a pruned model is trained to
change the function, so its fp32 conversion is held to the conversion's own
parity (against the pruned Keras model) and then judged on accuracy against the
unpruned source, with agreement reported beside it; a precision variant of a
pruned model aims to compute that model's function, so it must agree with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import optimize
from .data import Dataset
from .progress import Reporter
from .prune import Pruned, gzip_bytes, measured_sparsity, prune_model
from .quality_gate import Row, gate, measure, session, top1
from .sources import Source, load_source
from .to_onnx import convert
from .variants import build_precisions


@dataclass
class PrunedVariants:
    """One sparsity's rows, the pruned model's outputs on the eval data (its rows'
    golden samples) and what lineage records of the compression."""

    rows: list[Row]
    reference: dict[str, np.ndarray]
    compression: dict[str, Any]


@dataclass(frozen=True)
class PruneSettings:
    sparsities: Sequence[float]
    train: Dataset | None
    fine_tune_epochs: int
    max_accuracy_drop: float
    min_agreement: float
    opset: int | None


def build_pruned(
    source: Source,
    settings: PruneSettings,
    evaluation: Dataset,
    source_reference: dict[str, np.ndarray],
    source_accuracy: float | None,
    order: Sequence[str],
    calibration: Dataset | None,
    work: Path,
    reporter: Reporter,
) -> list[PrunedVariants]:
    first = source.outputs[0].name
    built = []
    for sparsity in settings.sparsities:
        prefix = f"s{sparsity:g}-"
        pruned: Pruned = prune_model(
            source.path,
            sparsity,
            work / f"{prefix}model.keras",
            settings.train,
            settings.fine_tune_epochs,
            reporter,
        )
        pruned_source = load_source(pruned.path)
        with reporter.step(f"pruned model's outputs (sparsity {sparsity:g})"):
            reference = pruned_source.predict(evaluation.feeds)
        with reporter.step(f"converting the pruned model with tf2onnx (sparsity {sparsity:g})"):
            converted = convert(pruned_source, work / f"{prefix}converted.onnx", settings.opset)
        fp32_path = optimize.optimize_basic(converted, work / f"{prefix}fp32.onnx")
        paths = build_precisions(fp32_path, order, work, calibration, reporter, prefix)
        rows: dict[str, Row] = {}
        for precision in dict.fromkeys(["fp32", *order]):
            with reporter.step(f"validating {prefix}{precision}"):
                row = measure(precision, paths[precision], evaluation, reference, first)
            row.sparsity = sparsity
            row.gzip_bytes = gzip_bytes(row.path)
            rows[precision] = row
        fp32 = rows["fp32"]
        # Reported beside its accuracy: how much of the source's answers pruning kept.
        fp32.agreement = _agreement(fp32.path, evaluation, source_reference, first)
        gate(fp32, source_accuracy, settings.max_accuracy_drop, same_function=False)
        for precision in order:
            if precision != "fp32":
                gate(
                    rows[precision],
                    source_accuracy,
                    settings.max_accuracy_drop,
                    fp32,
                    settings.min_agreement,
                )
        compression = {
            "method": "magnitude-pruning",
            "sparsity": sparsity,
            "measured_sparsity": round(measured_sparsity(fp32.path), 6),
            "fine_tune_epochs": pruned.fine_tune_epochs,
            "train_data_sha256": None if settings.train is None else settings.train.sha256,
        }
        built.append(PrunedVariants([rows[p] for p in order], reference, compression))
    return built


def _agreement(
    path: Path, evaluation: Dataset, reference: dict[str, np.ndarray], first: str
) -> float | None:
    from .quality_gate import run_batched

    got = run_batched(session(path), evaluation, [first])[first]
    expected, predicted = top1(reference[first]), top1(got)
    if expected is None or predicted is None:
        return None
    return float((expected == predicted).mean())
