"""The drift reference a converted version carries (``monitoring.reference``): computed
from ``--train-data`` when given, else from ``--eval-data``; never from generated inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from maas.drift.reference import build_reference, feature_matrix

from .data import Dataset
from .sources import Source


def monitoring_reference(
    source: Source,
    training: Dataset | None,
    evaluation: Dataset,
    evaluation_outputs: Mapping[str, np.ndarray],
) -> dict[str, Any] | None:
    basis = training if training is not None else evaluation
    if basis.generated:
        return None  # random inputs say nothing about what the model will be sent
    outputs = source.predict(basis.feeds) if training is not None else evaluation_outputs
    inputs = [
        {"name": spec.name, "datatype": "BYTES" if spec.dtype.kind in "OSU" else "FP32"}
        for spec in source.inputs
    ]
    features = feature_matrix(basis.feeds, inputs)
    if features is None:
        return None
    first = source.outputs[0].name if source.outputs else ""
    scores = np.asarray(outputs[first]) if first in outputs else None
    return {"reference": build_reference(features, scores, basis.sha256)}
