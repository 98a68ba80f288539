"""Tensors as the core sees them: named, typed, shaped numpy arrays.

Protocol codecs (Open Inference Protocol JSON and binary, TF Serving) turn
wire formats into :class:`Tensor` and back; the core validates and runs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maas.datatypes import numpy_dtype
from maas.errors import InvalidInput


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    array: np.ndarray[Any, Any]

    @property
    def shape(self) -> list[int]:
        return [int(d) for d in self.array.shape]


@dataclass(frozen=True)
class InferenceRequest:
    inputs: list[Tensor]
    outputs: list[str] | None = None  # None: every output
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceResult:
    model_name: str
    model_version: int
    outputs: list[Tensor]
    id: str | None = None


def _check_shape(name: str, shape: Sequence[Any]) -> list[int]:
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(
            f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}"
        )
    return list(shape)


def tensor_from_data(name: str, datatype: str, shape: Sequence[Any], data: Any) -> Tensor:
    """Build a tensor from JSON data, nested or flat, checking its element count."""
    dims = _check_shape(name, shape)
    dtype = numpy_dtype(datatype)
    expected = math.prod(dims)
    if datatype == "BYTES":
        flat = _flatten(name, data)
        values = [v.encode("utf-8") if isinstance(v, str) else v for v in flat]
        if not all(isinstance(v, bytes) for v in values):
            raise InvalidInput(f"input {name!r}: BYTES data must be strings")
        array = np.empty(len(values), dtype=object)
        array[:] = values
    else:
        try:
            array = np.asarray(data, dtype=dtype)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInput(
                f"input {name!r}: data is not a regular array of {datatype} values ({exc})"
            ) from None
    if array.size != expected:
        raise InvalidInput(
            f"input {name!r}: shape {dims} needs {expected} elements, data has {array.size}"
        )
    return Tensor(name, datatype, array.reshape(dims))


def tensor_from_bytes(name: str, datatype: str, shape: Sequence[Any], raw: bytes) -> Tensor:
    """Build a tensor from the binary tensor data extension (little-endian, row-major)."""
    dims = _check_shape(name, shape)
    expected = math.prod(dims)
    if datatype == "BYTES":
        values = _split_bytes_elements(name, raw)
        if len(values) != expected:
            raise InvalidInput(
                f"input {name!r}: shape {dims} needs {expected} elements, "
                f"binary data has {len(values)}"
            )
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return Tensor(name, datatype, array.reshape(dims))
    dtype = numpy_dtype(datatype).newbyteorder("<")
    if len(raw) != expected * dtype.itemsize:
        raise InvalidInput(
            f"input {name!r}: shape {dims} of {datatype} needs {expected * dtype.itemsize} "
            f"bytes, binary data has {len(raw)}"
        )
    array = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)
    return Tensor(name, datatype, array.reshape(dims))


def _split_bytes_elements(name: str, raw: bytes) -> list[bytes]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"input {name!r}: truncated BYTES element length")
        length = int.from_bytes(raw[offset : offset + 4], "little")
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(f"input {name!r}: BYTES element overruns the binary data")
        values.append(raw[offset : offset + length])
        offset += length
    return values


def _flatten(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat
