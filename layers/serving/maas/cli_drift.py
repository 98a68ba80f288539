"""`maas drift REF --data NPZ [--json] [--fail-above PSI]`: the serving path's drift
scores for a local sample, against the version's reference statistics.

Exit codes: 0; 6 when ``--fail-above`` is given and ``psi_max`` exceeds it (for CI
pipelines); 2 for data whose shape does not match; 4 for a version with no reference.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from maas.cli_output import emit, registry_for
from maas.drift.samples import load_feeds
from maas.errors import InvalidInput, NotFound
from maas.names import ModelRef

#: ``psi_max`` over ``--fail-above``.
EXIT_DRIFTED = 6
TOP_FEATURES = 10


def register_drift(commands: Any, common: argparse.ArgumentParser) -> None:
    drift = commands.add_parser(
        "drift",
        parents=[common],
        help="PSI of a local sample against a version's reference statistics",
        description="Score NPZ (x, or one array per input name) against the reference "
        "statistics recorded when the version was made: the largest and mean feature PSI, "
        "features over 0.25, and the PSI of the top-1 class distribution. Exit 6 when "
        "--fail-above is given and the largest PSI exceeds it.",
    )
    drift.add_argument("ref", type=ModelRef.parse, metavar="REF", help="NAME, NAME:V or NAME@ALIAS")
    drift.add_argument("--data", type=Path, required=True, metavar="NPZ")
    drift.add_argument("--fail-above", type=_psi, metavar="PSI")
    drift.set_defaults(run=run_drift)


def _psi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"invalid --fail-above {text!r}: a PSI value") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"invalid --fail-above {text!r}: a PSI value >= 0")
    return value


def run_drift(args: argparse.Namespace) -> int:
    from maas.config import cli_default_alias
    from maas.drift.reference import Binning, feature_matrix, score

    registry = registry_for(args)
    ref: ModelRef = args.ref
    version, _ = registry.resolve(ref, cli_default_alias())
    manifest = registry.get_manifest(ref.name, version)
    reference = (manifest.get("monitoring") or {}).get("reference")
    if reference is None:
        raise NotFound(
            f"{ref.name}:{version} has no reference statistics (published without "
            "--reference-data, or before monitoring existed)"
        )
    feeds = load_feeds(args.data, manifest["inputs"], "--data")
    features = feature_matrix(feeds, manifest["inputs"])
    binning = Binning.of(reference)
    width = len(binning.bins) if binning.indices is None else int(binning.indices.max()) + 1
    if (
        features is None
        or features.shape[1] < width
        or (binning.indices is None and features.shape[1] != width)
    ):
        got = 0 if features is None else features.shape[1]
        raise InvalidInput(
            f"--data {args.data} gives {got} features per row; {ref.name}:{version}'s "
            f"reference has {len(binning.bins)}"
        )
    prediction = None
    if reference.get("prediction") is not None:
        prediction = _top1_counts(registry, ref.name, version, manifest, feeds)
    scores = score(reference, binning, binning.counts(features), len(features), prediction)
    order = np.argsort(-scores.feature_psi, kind="stable")
    document = {
        "model": ref.name,
        "version": version,
        "rows": scores.rows,
        "psi_max": scores.psi_max,
        "psi_mean": scores.psi_mean,
        "drifted_features": scores.drifted_features,
        "prediction_psi": scores.prediction_psi,
        "features": [{"index": int(i), "psi": float(scores.feature_psi[i])} for i in order],
    }
    lines = [
        f"{ref.name}:{version}  {scores.rows} rows against {reference['rows']} reference rows",
        f"  psi max {scores.psi_max:.4f}  mean {scores.psi_mean:.4f}  features over 0.25: "
        f"{scores.drifted_features} of {len(order)}",
        "  prediction psi "
        + (
            "- (not a classifier)"
            if scores.prediction_psi is None
            else f"{scores.prediction_psi:.4f}"
        ),
        "  most drifted features: "
        + ", ".join(f"#{i} {scores.feature_psi[i]:.3f}" for i in order[:TOP_FEATURES]),
        "  (PSI < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant)",
    ]
    emit(args, document, "\n".join(lines))
    if args.fail_above is not None and scores.psi_max > args.fail_above:
        return EXIT_DRIFTED
    return 0


def _top1_counts(
    registry: Any, name: str, version: int, manifest: dict[str, Any], feeds: dict[str, np.ndarray]
) -> np.ndarray | None:
    import onnxruntime as ort

    from maas.datatypes import numpy_dtype

    with tempfile.TemporaryDirectory(prefix="maas-drift-") as tmp:
        path = Path(tmp) / "model.onnx"
        registry.fetch_model(name, version, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        typed = {
            spec["name"]: feeds[spec["name"]].astype(numpy_dtype(spec["datatype"]))
            for spec in manifest["inputs"]
        }
        scores = session.run([manifest["outputs"][0]["name"]], typed)[0]
    classes = len(manifest["monitoring"]["reference"]["prediction"]["proportions"])
    if scores.ndim != 2 or scores.shape[1] != classes:
        return None
    return np.bincount(scores.argmax(axis=1), minlength=classes)
