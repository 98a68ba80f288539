"""``maas convert``: source → ONNX → variants → validation → gate → registry.

Everything that can be refused cheaply (flags, names, data files) is checked
before TensorFlow is even imported, and every variant is validated before the
first byte is published, so bad input publishes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput
from maas.labels import check_labels
from maas.names import check_writable_alias, check_writable_name
from maas.onnxfile import file_sha256
from maas.promotion import Release

from . import io_names, optimize
from .data import Dataset, bind, generated, read_npz
from .monitoring import monitoring_reference
from .progress import Reporter
from .prune import DEFAULT_FINE_TUNE_EPOCHS, gzip_bytes
from .pruned_variants import PrunedVariants, PruneSettings, build_pruned
from .publish_variants import publish_rows
from .quality_gate import (
    DEFAULT_MIN_AGREEMENT,
    PREFERENCES,
    Row,
    accuracy,
    gate,
    measure,
    report_table,
    top1,
)
from .sources import Source, detect_kind, load_source
from .to_onnx import check_opset, convert
from .variants import build_precisions

DEFAULT_PRECISIONS = ("fp32", "int8-dynamic")
DEFAULT_MAX_ACCURACY_DROP = 1.0


def parse_precisions(text: str) -> list[str]:
    """``fp32,int8-dynamic`` → a list without duplicates; an unknown name is InvalidInput."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise InvalidInput("--precision is empty; choose from " + ", ".join(optimize.PRECISIONS))
    unknown = [n for n in names if n not in optimize.PRECISIONS]
    if unknown:
        raise InvalidInput(
            f"unknown precision {unknown[0]!r}; choose from " + ", ".join(optimize.PRECISIONS)
        )
    return list(dict.fromkeys(names))


def publish_order(precisions: Sequence[str]) -> list[str]:
    """fp32 first, then the others in the order given."""
    return (["fp32"] if "fp32" in precisions else []) + [p for p in precisions if p != "fp32"]


@dataclass
class ConvertOptions:
    source: Path
    name: str
    precisions: list[str] = field(default_factory=lambda: list(DEFAULT_PRECISIONS))
    eval_data: Path | None = None
    calib_data: Path | None = None
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    #: Percent of rows a precision variant must answer as its source does.
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    prefer: str = "balanced"
    opset: int | None = None
    publish: bool = False
    alias: str | None = None
    registry: str | None = None
    #: Keep the variants' ONNX files here (``NAME-PRECISION.onnx``).
    out: Path | None = None
    #: Move --alias even across a signature change.
    force: bool = False
    #: Rename the graph's inputs / outputs (``--input-names`` / ``--output-names``).
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    #: Class labels (``--labels FILE``); else those recorded in training.json, if any.
    labels: list[str] | None = None
    #: ``--prune``: target sparsities, each also built at every requested precision.
    prune: list[float] = field(default_factory=list)
    #: ``--train-data``: the split the model was fitted on (pruning's fine-tune).
    train_data: Path | None = None
    fine_tune_epochs: int = DEFAULT_FINE_TUNE_EPOCHS

    def check(self) -> None:
        """Refuse bad flags before any work is done."""
        check_writable_name(self.name)
        if self.alias is not None:
            check_writable_alias(self.alias)
            if not self.publish:
                raise InvalidInput(
                    "--alias needs --publish: an alias can only point at a published version"
                )
        parse_precisions(",".join(self.precisions))
        if not np.isfinite(self.max_accuracy_drop) or self.max_accuracy_drop < 0:
            raise InvalidInput(
                f"--max-accuracy-drop {self.max_accuracy_drop:g} must be a number of points >= 0"
            )
        if not np.isfinite(self.min_agreement) or not 0 <= self.min_agreement <= 100:
            raise InvalidInput(
                f"--min-agreement {self.min_agreement:g} must be a percentage from 0 to 100"
            )
        if self.prefer not in PREFERENCES:
            raise InvalidInput(f"--prefer {self.prefer!r}: choose from {', '.join(PREFERENCES)}")
        check_opset(self.opset)
        if "int8-static" in self.precisions and self.calib_data is None:
            raise InvalidInput(
                "int8-static needs --calib-data NPZ: static quantisation is "
                "calibrated on calibration data, never on the evaluation data"
            )


@dataclass
class ConvertResult:
    source: Source
    rows: list[Row]
    source_accuracy: float | None
    evaluation: Dataset
    published: list[int] = field(default_factory=list)
    alias_version: int | None = None
    #: The release that carried --alias: what really happened to the alias.
    alias_release: Release | None = None
    #: The variant --prefer chose for --alias.
    chosen: Row | None = None
    #: ``monitoring`` for every manifest: drift reference statistics (issue 12's drift).
    monitoring: dict[str, Any] | None = None
    #: Per sparsity: the pruned model's outputs and its compression lineage.
    pruned: dict[float, PrunedVariants] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every requested variant passed, 2 when any was refused."""
        return 0 if all(r.passed for r in self.rows) else 2

    def as_json(self) -> list[dict[str, Any]]:
        """One object per variant; the one that carried --alias also says what the
        alias did (``{"name", "status": moved|skipped|failed, "reason"}``)."""
        carried = self.alias_release
        return [
            {
                **row.as_json(),
                "alias": carried.alias_report()
                if carried is not None and row.version == carried.version
                else None,
            }
            for row in self.rows
        ]

    def summary(self) -> str:
        data = (
            f"{len(self.evaluation)} generated inputs (no --eval-data: accuracy not measured)"
            if self.evaluation.generated
            else f"{len(self.evaluation)} samples of {self.evaluation.path}"
            + ("" if self.evaluation.labels is not None else " (no labels)")
        )
        return f"source: {self.source.framework} {self.source.path}; validated on {data}"

    def table(self) -> str:
        return self.summary() + "\n" + report_table(self.rows, self.source_accuracy, self.chosen)


def _check_labels(source: Source, evaluation: Dataset, reference: dict[str, np.ndarray]) -> None:
    if evaluation.labels is None:
        return
    scores = reference[source.outputs[0].name]
    if top1(scores) is None:
        raise InvalidInput(
            f"{evaluation.path} has labels 'y', but the model's first output "
            f"{source.outputs[0].name!r} with shape {scores.shape[1:]} "
            "is not a vector of class scores"
        )
    classes = scores.shape[-1]
    if int(evaluation.labels.max()) >= classes:
        raise InvalidInput(
            f"--eval-data {evaluation.path}['y']: label "
            f"{int(evaluation.labels.max())} is out of range for the model's "
            f"{classes} classes"
        )


def convert_model(options: ConvertOptions, reporter: Reporter | None = None) -> ConvertResult:
    """Convert, build every requested variant, validate, gate and (optionally) publish."""
    reporter = reporter or Reporter(enabled=False)
    options.check()
    registry = None
    if options.publish:
        from maas.registry import open_registry

        registry = open_registry(options.registry)
    kind = detect_kind(options.source)
    if options.prune and kind != "keras":
        raise InvalidInput(
            f"--prune needs a Keras source (.keras or .h5) to fine-tune; {options.source} is "
            f"a {kind} model"
        )
    raw_train = read_npz(options.train_data, "--train-data") if options.train_data else None
    raw_eval = read_npz(options.eval_data, "--eval-data") if options.eval_data else None
    raw_calib = read_npz(options.calib_data, "--calib-data") if options.calib_data else None
    if (
        options.eval_data
        and options.calib_data
        and file_sha256(options.eval_data)[0] == file_sha256(options.calib_data)[0]
    ):
        raise InvalidInput(
            "--calib-data is the same data as --eval-data: calibrate on a "
            "separate split, or the accuracy measured would flatter int8-static"
        )

    with reporter.step(f"loading {options.source}"):
        source = load_source(options.source)
    if options.labels is not None:
        check_labels(
            options.labels, [{"name": o.name, "shape": list(o.shape)} for o in source.outputs]
        )
    evaluation = (
        bind(
            raw_eval,
            source.inputs,
            f"--eval-data {options.eval_data}",
            options.eval_data,
            file_sha256(options.eval_data)[0],
        )
        if raw_eval is not None and options.eval_data
        else generated(source.inputs)
    )
    calibration = (
        bind(
            raw_calib,
            source.inputs,
            f"--calib-data {options.calib_data}",
            options.calib_data,
            file_sha256(options.calib_data)[0],
        )
        if raw_calib is not None and options.calib_data
        else None
    )
    training = (
        bind(
            raw_train,
            source.inputs,
            f"--train-data {options.train_data}",
            options.train_data,
            file_sha256(options.train_data)[0],
        )
        if raw_train is not None and options.train_data
        else None
    )
    renames = io_names.mapping_for(
        [s.name for s in source.inputs],
        [s.name for s in source.outputs],
        options.input_names,
        options.output_names,
    )
    with reporter.step(f"computing reference outputs on {len(evaluation)} samples"):
        reference = source.predict(evaluation.feeds)
    _check_labels(source, evaluation, reference)
    first = source.outputs[0].name
    source_accuracy = accuracy(reference[first], evaluation.labels)

    order = publish_order(options.precisions)
    # Agreement is a rule on real eval rows; on generated inputs it is only reported.
    agreement_floor = 0.0 if evaluation.generated else options.min_agreement
    with tempfile.TemporaryDirectory(prefix="maas-convert-") as tmp:
        work = Path(tmp)
        verb = "copying" if source.kind == "onnx" else "converting with tf2onnx"
        with reporter.step(f"{verb} {options.source.name}"):
            converted = convert(source, work / "converted.onnx", options.opset)
        with reporter.step("optimizing (basic level)"):
            paths = {"fp32": optimize.optimize_basic(converted, work / "fp32.onnx")}
        paths = build_precisions(paths["fp32"], order, work, calibration, reporter)

        measured: dict[str, Row] = {}
        for precision in dict.fromkeys(["fp32", *order]):
            with reporter.step(f"validating {precision}"):
                measured[precision] = measure(
                    precision, paths[precision], evaluation, reference, first
                )
        for precision in order:
            gate(
                measured[precision],
                source_accuracy,
                options.max_accuracy_drop,
                measured["fp32"],
                agreement_floor,
            )
        rows = [measured[p] for p in order]
        for row in rows:
            row.gzip_bytes = gzip_bytes(row.path)
        pruned = build_pruned(
            source,
            PruneSettings(
                options.prune,
                training,
                options.fine_tune_epochs,
                options.max_accuracy_drop,
                agreement_floor,
                options.opset,
            ),
            evaluation,
            reference,
            source_accuracy,
            order,
            calibration,
            work,
            reporter,
        )
        rows += [row for variants in pruned for row in variants.rows]
        # Before renaming: the statistics are read by the source's own input names.
        monitoring = monitoring_reference(source, training, evaluation, reference)
        if renames:
            for row in rows:
                io_names.rename_file(row.path, renames)
            for variants in pruned:
                variants.reference = io_names.renamed_data(evaluation, variants.reference, renames)[
                    1
                ]
            evaluation, reference = io_names.renamed_data(evaluation, reference, renames)

        if options.out is not None:
            options.out.mkdir(parents=True, exist_ok=True)
            for row in rows:
                shutil.copyfile(row.path, options.out / f"{options.name}-{row.label}.onnx")

        result = ConvertResult(source, rows, source_accuracy, evaluation)
        result.monitoring = monitoring
        result.pruned = {v.rows[0].sparsity: v for v in pruned if v.rows}
        if registry is not None:
            publish_rows(registry, options, result, reference, calibration, reporter)
    return result
