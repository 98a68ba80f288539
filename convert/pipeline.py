"""``maas convert``: source → ONNX → variants → validation → gate → registry.

Everything that can be refused cheaply (flags, names, data files) is checked
before TensorFlow is even imported, and every variant is validated before the
first byte is published, so bad input publishes nothing.
"""

from __future__ import annotations

import platform
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
from maas.onnxfile import file_sha256, inspect_onnx
from maas.promotion import Release, release, signature_refusal
from maas.registry import Registry
from maas.signature_guard import SignatureMismatch

from . import io_names, optimize
from .data import Dataset, bind, generated, read_npz
from .lineage import git_commit, library_versions
from .progress import Reporter
from .quality_gate import (
    LATENCY_THREADS,
    PREFERENCES,
    Row,
    accuracy,
    gate,
    golden_samples,
    measure,
    preferred,
    report_table,
    top1,
)
from .sources import Source, detect_kind, load_source
from .to_onnx import check_opset, convert, converter_name

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
    detect_kind(options.source)
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
    with tempfile.TemporaryDirectory(prefix="maas-convert-") as tmp:
        work = Path(tmp)
        verb = "copying" if source.kind == "onnx" else "converting with tf2onnx"
        with reporter.step(f"{verb} {options.source.name}"):
            converted = convert(source, work / "converted.onnx", options.opset)
        with reporter.step("optimizing (basic level)"):
            paths = {"fp32": optimize.optimize_basic(converted, work / "fp32.onnx")}
        for precision in order:
            target = work / f"{precision}.onnx"
            if precision == "int8-dynamic":
                with reporter.step("quantizing int8-dynamic"):
                    paths[precision] = optimize.int8_dynamic(paths["fp32"], target)
            elif precision == "fp16":
                with reporter.step("converting to fp16"):
                    paths[precision] = optimize.fp16(paths["fp32"], target)
            elif precision == "int8-static":
                assert calibration is not None  # checked by options.check()
                with reporter.bar(len(calibration), "calibrating int8-static", "sample") as bar:
                    paths[precision] = optimize.int8_static(paths["fp32"], target, calibration, bar)

        measured: dict[str, Row] = {}
        for precision in dict.fromkeys(["fp32", *order]):
            with reporter.step(f"validating {precision}"):
                measured[precision] = measure(
                    precision, paths[precision], evaluation, reference, first
                )
        for precision in order:
            gate(measured[precision], source_accuracy, options.max_accuracy_drop, measured["fp32"])
        rows = [measured[p] for p in order]
        if renames:
            for row in rows:
                io_names.rename_file(row.path, renames)
            evaluation, reference = io_names.renamed_data(evaluation, reference, renames)

        if options.out is not None:
            options.out.mkdir(parents=True, exist_ok=True)
            for row in rows:
                shutil.copyfile(row.path, options.out / f"{options.name}-{row.precision}.onnx")

        result = ConvertResult(source, rows, source_accuracy, evaluation)
        if registry is not None:
            _publish(registry, options, result, reference, calibration, reporter)
    return result


def _publish(
    registry: Registry,
    options: ConvertOptions,
    result: ConvertResult,
    reference: dict[str, np.ndarray],
    calibration: Dataset | None,
    reporter: Reporter,
) -> None:
    """Publish every passing row in order; the alias goes with the preferred one."""
    source, evaluation = result.source, result.evaluation
    choice = preferred(result.rows, options.prefer) if options.alias else None
    result.chosen = choice
    if choice is not None and options.alias is not None and not options.force:
        # Refused before the first variant is written, as `maas publish --alias` is.
        draft = registry.build_manifest(options.name, 1, inspect_onnx(choice.path))
        why = signature_refusal(registry, options.name, options.alias, draft, "the new version")
        if why is not None:
            raise SignatureMismatch(why)
    commit, dirty = git_commit()
    libraries = library_versions()
    parent: int | None = None
    for row in result.rows:
        if not row.passed:
            continue
        metrics = {
            **{k: v for k, v in row.as_json().items() if k not in ("passed", "reason", "version")},
            "source_accuracy": result.source_accuracy,
            "eval_samples": len(evaluation),
            "eval_data_sha256": evaluation.sha256,
            "calib_data_sha256": (
                calibration.sha256
                if calibration is not None and row.precision == "int8-static"
                else None
            ),
            "max_accuracy_drop": options.max_accuracy_drop,
            "golden_atol": row.golden_atol,
            # Latency is this machine's, with one onnxruntime thread (a Lambda vCPU).
            "latency_machine": f"{platform.system()} {platform.machine()}",
            "latency_threads": LATENCY_THREADS,
        }
        details = {
            "precision": row.precision,
            "metrics": metrics,
            "labels": options.labels if options.labels is not None else source.labels,
            "golden_samples": golden_samples(evaluation, reference, row.golden_atol),
            "source": {
                "framework": source.framework,
                "file_sha256": source.sha256,
                "file_name": source.path.name,
                "converter": converter_name(source),
                "libraries": libraries,
            },
            "lineage": {
                "parent_version": parent if row.precision != "fp32" else None,
                "git_commit": commit,
                "git_dirty": dirty,
                "training": source.training,
            },
        }
        alias = options.alias if choice is row else None
        with reporter.bar(row.size_bytes, f"uploading {row.precision}", "B") as progress:
            published = release(
                registry,
                row.path,
                options.name,
                alias=alias,
                details=details,
                progress=progress,
                reason=f"maas convert --prefer {options.prefer}: {row.precision}",
                force=options.force,
            )
        row.version = published.version
        result.published.append(published.version)
        if alias is not None:
            result.alias_version = published.version
            result.alias_release = published
        if row.precision == "fp32":
            parent = published.version
