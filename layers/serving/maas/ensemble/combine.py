"""How an ensemble's members' answers become one answer: pure numpy, no I/O.

- ``mean``: ``Σ wᵢ·pᵢ / Σ wᵢ``, the weighted mean of the members' outputs.
- ``vote``: each member's top-1 counts its share ``wᵢ / Σ wᵢ``; a row holds the
  weighted vote fractions per class. When the top fractions tie, the tied class
  with the highest weighted mean probability wins and gets :data:`TIE_BONUS`, so
  a row's argmax is always the winner (a plain argmax would pick the lowest index).

The fused graph (:mod:`maas.ensemble.fuse`) builds the very same arithmetic in
ONNX, in the same order and precision, so both answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Combiner = Literal["mean", "vote"]
COMBINERS: tuple[Combiner, ...] = ("mean", "vote")

#: Added to the winning class of a tied row.
TIE_BONUS = 1e-4
#: Vote fractions this close count as tied: shares summed in different orders may
#: differ in their last bits (1/3 + 1/3 against 2/3).
TIE_TOLERANCE = 1e-6

Array = np.ndarray[Any, Any]


def shares(weights: Sequence[float], dtype: Any = np.float32) -> list[Any]:
    """Each member's ``wᵢ / Σ wᵢ`` as a scalar of the outputs' dtype."""
    total = float(sum(weights))
    return [np.asarray(w / total, dtype=dtype) for w in weights]


def weighted_mean(weights: Sequence[float], outputs: Sequence[Array]) -> Array:
    parts = shares(weights, outputs[0].dtype)
    combined = outputs[0] * parts[0]
    for part, output in zip(parts[1:], outputs[1:], strict=True):
        combined = combined + output * part
    return np.asarray(combined, dtype=outputs[0].dtype)


def vote(weights: Sequence[float], outputs: Sequence[Array]) -> Array:
    """Weighted vote fractions over the last axis, ties broken as the module says."""
    dtype = outputs[0].dtype
    classes = outputs[0].shape[-1]
    parts = shares(weights, dtype)
    fractions = np.zeros(outputs[0].shape, dtype=dtype)
    for part, output in zip(parts, outputs, strict=True):
        fractions = fractions + np.eye(classes, dtype=dtype)[np.argmax(output, axis=-1)] * part
    top = np.take_along_axis(fractions, np.argmax(fractions, axis=-1)[..., None], axis=-1)
    tied = ~(fractions < top - np.asarray(TIE_TOLERANCE, dtype))
    mean = weighted_mean(weights, outputs)
    winner = np.argmax(np.where(tied, mean, np.asarray(-1.0, dtype)), axis=-1)
    several = tied.astype(dtype).sum(axis=-1, keepdims=True) > 1.5
    bonus = np.eye(classes, dtype=dtype)[winner] * np.asarray(TIE_BONUS, dtype)
    return np.asarray(fractions + bonus * several.astype(dtype), dtype=dtype)


def combine(
    combiner: Combiner, weights: Sequence[float], answers: Sequence[Sequence[Array]]
) -> list[Array]:
    """``answers[i][j]`` is member ``i``'s output ``j``; one combined array per output."""
    rule = weighted_mean if combiner == "mean" else vote
    return [
        rule(weights, [np.asarray(answer[j]) for answer in answers]) for j in range(len(answers[0]))
    ]
