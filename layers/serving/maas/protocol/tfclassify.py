"""TensorFlow Serving's ``:classify``: examples in, ``[label, score]`` pairs out.

The request is ``{"examples": [{INPUT_NAME: value, ...}, ...]}``, with an
optional ``"context"`` object of features shared by every example (as in TF
Serving), and the answer is, per example, every class as ``[label, score]``
sorted by descending score. Labels come from the version's manifest
(``--labels`` at convert or publish time); without them a class is named by
its index, as TF Serving does for a classifier exported without class names.

The answer carries the list twice: under ``"results"`` (maas's documented
key) and under ``"result"``, the key TF Serving itself answers with, so its
clients work unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from maas.errors import InvalidInput
from maas.protocol.jsonbody import parse_object
from maas.protocol.tfserving import check_signature_name, input_datatypes, row_tensors
from maas.protocol.values import numeric_values
from maas.tensors import InferenceRequest, InferenceResult

_FIELDS = {"signature_name", "examples", "context"}


def decode_classify(body: bytes, inputs_signature: Sequence[Mapping[str, Any]]) -> InferenceRequest:
    document = parse_object(body, "the classify request")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0][:64]!r} in the classify request; it takes "
            "'examples', 'context' and 'signature_name'"
        )
    check_signature_name(document)
    datatypes = input_datatypes(inputs_signature)
    examples = document.get("examples")
    if not isinstance(examples, list) or not examples:
        raise InvalidInput(
            "the classify request needs 'examples': a non-empty list of objects, "
            f"each keyed by input name ({', '.join(map(repr, datatypes))})"
        )
    context = document.get("context", {})
    if not isinstance(context, dict):
        raise InvalidInput("'context' must be an object of features shared by every example")
    rows = []
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            raise InvalidInput(f"example {index} is not an object keyed by input name")
        shared = next((key for key in example if key in context), None)
        if shared is not None:
            raise InvalidInput(f"example {index} repeats {shared[:64]!r}, given in 'context'")
        rows.append({**context, **example})
    return InferenceRequest(row_tensors(rows, datatypes))


def check_classifier(outputs_signature: Sequence[Mapping[str, Any]]) -> str:
    """The output ``:classify`` ranks: the model's only output."""
    if len(outputs_signature) != 1:
        names = ", ".join(repr(spec["name"]) for spec in outputs_signature)
        raise InvalidInput(
            f":classify needs a model with one output (class scores); this one has {names}: "
            "use :predict"
        )
    return str(outputs_signature[0]["name"])


def encode_classify(result: InferenceResult, labels: Sequence[str] | None) -> dict[str, Any]:
    tensor = result.outputs[0]
    scores = tensor.array
    if scores.ndim != 2 or scores.shape[1] < 1 or tensor.datatype in ("BYTES", "BOOL"):
        raise InvalidInput(
            f"output {tensor.name!r} has shape {list(scores.shape)} ({tensor.datatype}); "
            ":classify needs numeric scores of shape [batch, classes]: use :predict"
        )
    classes = scores.shape[1]
    names = list(labels) if labels is not None and len(labels) == classes else None
    values = numeric_values(scores, tensor.datatype)  # the same number text as :predict
    # Stable, so equal scores keep class-index order; NaN sorts last.
    order = np.argsort(
        -np.nan_to_num(scores.astype(np.float64), nan=-np.inf), axis=1, kind="stable"
    )
    ranked = [
        [[names[i] if names is not None else str(i), values[row][i]] for i in order[row].tolist()]
        for row in range(scores.shape[0])
    ]
    return {"results": ranked, "result": ranked}
