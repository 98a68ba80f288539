"""What a candidate model is run on during verification, and how its answers are judged.

Three probes, each a pure function of an onnxruntime session:

- **golden samples** from the manifest, compared within their tolerance;
- a **zero input** of the declared shapes (batch 1) when there are none: it
  proves the model runs at all, as serving will run it;
- a **smoke test** on random in-range inputs for raw uploads: finite outputs of
  the declared shapes.

Every datatype the Open Inference Protocol carries (and publish accepts) is
fed, scalars included: inputs are always built as arrays, since onnxruntime
refuses numpy scalars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maas.datatypes import numpy_dtype
from maas.model_info import TensorSpec
from maas.tensors import tensor_from_data


@dataclass(frozen=True)
class Check:
    """One named verification step, passed or not, and why."""

    name: str
    passed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Check:
        return cls(document["name"], bool(document["passed"]), document["detail"])


def batch_one_shape(spec: TensorSpec) -> list[int]:
    return [1 if d == -1 else d for d in spec.shape]


def input_bytes(spec: TensorSpec) -> int:
    """Bytes one batch-1 input of this spec takes (a BYTES element counts a pointer)."""
    itemsize = 8 if spec.datatype == "BYTES" else numpy_dtype(spec.datatype).itemsize
    return math.prod(batch_one_shape(spec)) * itemsize


def oversized_input(inputs: Sequence[TensorSpec], limit_bytes: int) -> str | None:
    """Why building a batch-1 input would break the memory limit, before allocating it."""
    for spec in inputs:
        needed = input_bytes(spec)
        if needed > limit_bytes:
            return (
                f"input {spec.name!r} declares dimensions {spec.shape}: {needed} bytes at "
                f"batch 1, more than the {limit_bytes / 2**20:g} MB verification memory limit "
                "(MAAS_VERIFY_MEMORY_MB)"
            )
    return None


def zero_feed(inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray[Any, Any]]:
    feed: dict[str, np.ndarray[Any, Any]] = {}
    for spec in inputs:
        shape = batch_one_shape(spec)
        if spec.datatype == "BYTES":
            feed[spec.name] = np.full(shape, b"", dtype=object)
        else:
            feed[spec.name] = np.zeros(shape, dtype=numpy_dtype(spec.datatype))
    return feed


def random_feed(inputs: Sequence[TensorSpec], seed: int) -> dict[str, np.ndarray[Any, Any]]:
    """In-range values: [0, 1) for floats, 0..9 for integers, either for BOOL."""
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray[Any, Any]] = {}
    for spec in inputs:
        shape = batch_one_shape(spec)
        dtype = numpy_dtype(spec.datatype)
        if spec.datatype == "BYTES":
            values: np.ndarray[Any, Any] = np.full(shape, b"maas", dtype=object)
        elif spec.datatype == "BOOL":
            values = np.asarray(rng.random(shape) < 0.5, dtype=np.bool_)
        elif dtype.kind in "iu":
            values = np.asarray(rng.integers(0, 10, size=shape), dtype=dtype)
        else:
            values = np.asarray(rng.random(shape), dtype=dtype)
        feed[spec.name] = values.reshape(shape)
    return feed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def zero_input_probe(session: Any, inputs: Sequence[TensorSpec]) -> Check:
    try:
        session.run(None, zero_feed(inputs))
    except Exception as exc:  # onnxruntime's exception types are not exported
        return Check("zero_input", False, f"does not run on a zero input: {_first_line(exc)}")
    return Check("zero_input", True, "runs on a zero input of the declared shapes (batch 1)")


def smoke_probe(
    session: Any, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], seed: int
) -> Check:
    """Finite outputs of the declared shapes on random in-range inputs (batch 1)."""
    try:
        produced = session.run([s.name for s in outputs], random_feed(inputs, seed))
    except Exception as exc:  # onnxruntime's exception types are not exported
        return Check("smoke_test", False, f"random in-range inputs do not run: {_first_line(exc)}")
    for spec, array in zip(outputs, produced, strict=True):
        array = np.asarray(array)
        if array.ndim != len(spec.shape) or any(
            want != -1 and got != want for got, want in zip(array.shape, spec.shape, strict=True)
        ):
            return Check(
                "smoke_test",
                False,
                f"output {spec.name!r} has shape {list(array.shape)}, declared {spec.shape}",
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return Check(
                "smoke_test", False, f"output {spec.name!r} is not finite on random in-range inputs"
            )
    return Check("smoke_test", True, "finite outputs of the declared shapes on random inputs")


def golden_probe(
    session: Any, samples: Sequence[Mapping[str, Any]], datatypes: Mapping[str, str]
) -> Check:
    """Each sample's outputs reproduced within its ``atol``."""
    worst = 0.0
    for index, sample in enumerate(samples):
        try:
            feed = {
                name: tensor_from_data(
                    name, datatypes.get(name, "FP32"), tensor["shape"], tensor["data"]
                ).array
                for name, tensor in sample["inputs"].items()
            }
            names = list(sample["outputs"])
            produced = session.run(names, feed)
        except Exception as exc:  # onnxruntime's exception types are not exported
            return Check("golden_samples", False, f"sample {index} does not run: {exc}")
        for name, got in zip(names, produced, strict=True):
            want = np.asarray(sample["outputs"][name]["data"], dtype=np.float64).reshape(-1)
            got64 = np.asarray(got, dtype=np.float64).reshape(-1)
            if got64.shape != want.shape:
                return Check(
                    "golden_samples",
                    False,
                    f"sample {index} output {name!r} has {got64.size} values, expected {want.size}",
                )
            diff = float(np.max(np.abs(got64 - want))) if want.size else 0.0
            if not math.isfinite(diff) or diff > sample["atol"]:
                return Check(
                    "golden_samples",
                    False,
                    f"sample {index} output {name!r} differs by {diff:.3g}, over its "
                    f"tolerance {sample['atol']:.3g}",
                )
            worst = max(worst, diff)
    return Check("golden_samples", True, f"{len(samples)} reproduced (max diff {worst:.3g})")
