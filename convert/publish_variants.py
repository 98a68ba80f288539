"""Publishing `maas convert`'s passing variants: manifests with metrics, golden samples
and lineage, in order (fp32 first, so derived variants name their parent), with the
alias on the variant ``--prefer`` picks."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

import numpy as np

from maas.onnxfile import inspect_onnx
from maas.promotion import release, signature_refusal
from maas.registry import Registry
from maas.signature_guard import SignatureMismatch

from .data import Dataset
from .lineage import git_commit, library_versions, read_distillation
from .progress import Reporter
from .quality_gate import LATENCY_THREADS, golden_samples, preferred
from .to_onnx import converter_name

if TYPE_CHECKING:
    from .pipeline import ConvertOptions, ConvertResult


def publish_rows(
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
    distilled = read_distillation(source.path, source.sha256)
    libraries = library_versions()
    parents: dict[float, int] = {}  # per sparsity (0: dense), the fp32 version
    for row in result.rows:
        if not row.passed:
            continue
        variants = result.pruned.get(row.sparsity)
        row_reference = variants.reference if variants is not None else reference
        parent = parents.get(row.sparsity)
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
            "min_agreement": options.min_agreement,
            "golden_atol": row.golden_atol,
            # Latency is this machine's, with one onnxruntime thread (a Lambda vCPU).
            "latency_machine": f"{platform.system()} {platform.machine()}",
            "latency_threads": LATENCY_THREADS,
        }
        details = {
            **({"monitoring": result.monitoring} if result.monitoring is not None else {}),
            "precision": row.precision,
            "metrics": metrics,
            "labels": options.labels if options.labels is not None else source.labels,
            "golden_samples": golden_samples(evaluation, row_reference, row.golden_atol),
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
                **({"distillation": distilled} if distilled is not None else {}),
                **({"compression": variants.compression} if variants is not None else {}),
            },
        }
        alias = options.alias if choice is row else None
        with reporter.bar(row.size_bytes, f"uploading {row.label}", "B") as progress:
            published = release(
                registry,
                row.path,
                options.name,
                alias=alias,
                details=details,
                progress=progress,
                reason=f"maas convert --prefer {options.prefer}: {row.label}",
                force=options.force,
            )
        row.version = published.version
        result.published.append(published.version)
        if alias is not None:
            result.alias_version = published.version
            result.alias_release = published
        if row.precision == "fp32":
            parents[row.sparsity] = published.version
