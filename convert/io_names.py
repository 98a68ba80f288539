"""``--input-names`` / ``--output-names``: one signature across source formats.

A ``.keras`` source names its output after its last layer (``digit``) where the
same model exported as a SavedModel says ``output_0``; the signature guard then
refuses to move an alias between them. Renaming the graph's inputs and outputs
keeps what clients call the same. Applied after validation, to every variant's
file and to the golden samples alike, so nothing measured changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput
from maas.names import NAME_PATTERN

from .data import Dataset
from .to_onnx import rename


def parse_names(text: str, flag: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    for name in names:
        # The tensor names clients type: the model-name rule, plus upper case and '_'.
        if not name or not NAME_PATTERN.fullmatch(name.lower().replace("_", "-")):
            raise InvalidInput(f"{flag}: invalid tensor name {name!r} in {text!r}")
    if len(set(names)) != len(names):
        raise InvalidInput(f"{flag}: a name is given twice in {text!r}")
    return names


def mapping_for(
    current_inputs: Sequence[str],
    current_outputs: Sequence[str],
    inputs: Sequence[str] | None,
    outputs: Sequence[str] | None,
) -> dict[str, str]:
    """Old name → new name; the counts must match the model's."""
    mapping: dict[str, str] = {}
    for flag, current, wanted in (
        ("--input-names", current_inputs, inputs),
        ("--output-names", current_outputs, outputs),
    ):
        if wanted is None:
            continue
        if len(wanted) != len(current):
            raise InvalidInput(
                f"{flag} gives {len(wanted)} names; the model has {len(current)} "
                f"({', '.join(current)})"
            )
        mapping.update(zip(current, wanted, strict=True))
    final = [mapping.get(n, n) for n in [*current_inputs, *current_outputs]]
    if len(set(final)) != len(final):
        raise InvalidInput("--input-names/--output-names would give two tensors one name")
    return mapping


def rename_file(path: Path, mapping: Mapping[str, str]) -> None:
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    rename(model, mapping)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def renamed_data(
    evaluation: Dataset, reference: Mapping[str, np.ndarray[Any, Any]], mapping: Mapping[str, str]
) -> tuple[Dataset, dict[str, np.ndarray[Any, Any]]]:
    feeds = {mapping.get(k, k): v for k, v in evaluation.feeds.items()}
    outputs = {mapping.get(k, k): v for k, v in reference.items()}
    return Dataset(feeds, evaluation.labels, evaluation.path, evaluation.sha256), outputs
