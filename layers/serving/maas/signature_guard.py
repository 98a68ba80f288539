"""The signature guard: an alias never moves to a version its clients cannot call alike.

Two versions are compatible when their inputs and their outputs have the same
names, in the same order, with the same datatypes, and shapes that can both be
satisfied (same rank; each dimension equal, or dynamic on either side). Moving
an alias, or its canary, across an incompatible pair is refused unless forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maas.documents import Manifest
from maas.errors import InvalidInput

HINT = (
    "use --force to move it anyway, or keep one signature across source formats with "
    "`maas convert --input-names A[,B] --output-names Y[,Z]`"
)


class SignatureMismatch(InvalidInput):
    """A move that would change the signature an alias's clients call."""


def _shapes_compatible(a: Sequence[int], b: Sequence[int]) -> bool:
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))


def _side_difference(side: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str | None:
    old_names, new_names = [t["name"] for t in old], [t["name"] for t in new]
    if old_names != new_names:
        return f"{side} are named {old_names}, not {new_names}"
    for before, after in zip(old, new, strict=True):
        if before["datatype"] != after["datatype"]:
            return (
                f"{side[:-1]} {before['name']!r} is {before['datatype']}, not {after['datatype']}"
            )
        if not _shapes_compatible(before["shape"], after["shape"]):
            return (
                f"{side[:-1]} {before['name']!r} has shape {before['shape']}, which "
                f"{after['shape']} cannot satisfy"
            )
    return None


def signature_difference(current: Manifest, candidate: Manifest) -> str | None:
    """The first difference that makes ``candidate`` incompatible with ``current``, or None."""
    for side in ("inputs", "outputs"):
        difference = _side_difference(side, current[side], candidate[side])
        if difference is not None:
            return difference
    return None


def refusal(
    name: str, alias: str, current: Manifest, candidate: Manifest, label: str | None = None
) -> str | None:
    """The message refusing to move ``name@alias`` from ``current`` to ``candidate``
    (called ``label``, else by its version), or None when they are compatible."""
    difference = signature_difference(current, candidate)
    if difference is None:
        return None
    where = label or f"version {candidate['version']}"
    return (
        f"moving {name}@{alias} from version {current['version']} to {where} would change "
        f"the signature its clients call: {difference}; {HINT}"
    )
