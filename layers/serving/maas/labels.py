"""Class labels: read from a text file, checked against a model's output, kept in its manifest.

``maas convert --labels FILE`` and ``maas publish --labels FILE`` take UTF-8 text
with one label per line, in class-index order; TF Serving's ``:classify`` answers
with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maas.errors import InvalidInput

#: A labels file far larger than any class list is a mistake (a dataset, say).
MAX_LABELS_BYTES = 4 * 2**20


def read_labels(path: Path) -> list[str]:
    """The labels in ``path``, one per line (a final newline is optional)."""
    try:
        if path.stat().st_size > MAX_LABELS_BYTES:
            raise InvalidInput(f"labels file {path} is over {MAX_LABELS_BYTES} bytes")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"labels file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"labels file {path} is a directory") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"labels file {path} is not UTF-8 text (byte {exc.start} is not)"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines:
        raise InvalidInput(f"labels file {path} is empty; it needs one label per line")
    for number, label in enumerate(lines, start=1):
        if not label.strip():
            raise InvalidInput(f"labels file {path}: line {number} is blank")
    seen: dict[str, int] = {}
    for number, label in enumerate(lines, start=1):
        if label in seen:
            raise InvalidInput(
                f"labels file {path}: line {number} repeats {label[:64]!r} of line {seen[label]}"
            )
        seen[label] = number
    return lines


def check_labels(
    labels: Sequence[str], outputs: Sequence[Mapping[str, Any]], origin: str = "--labels"
) -> list[str]:
    """``labels`` if there is one per class of the model's (first) output, else InvalidInput."""
    if not outputs:
        raise InvalidInput(f"{origin}: the model has no outputs to label")
    output = outputs[0]
    shape = list(output.get("shape") or [])
    if len(shape) < 1 or shape[-1] is None or int(shape[-1]) < 1:
        raise InvalidInput(
            f"{origin}: output {output['name']!r} has shape {shape}, whose last dimension "
            "is not fixed, so labels cannot be matched to its classes"
        )
    classes = int(shape[-1])
    if len(labels) != classes:
        raise InvalidInput(
            f"{origin} has {len(labels)} labels, but output {output['name']!r} has {classes} "
            f"classes (shape {shape}); give one label per class, in class-index order"
        )
    return list(labels)
