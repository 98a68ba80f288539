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
    #: Response-wide parameters (an ensemble's ``members``); omitted from the body when empty.
    parameters: dict[str, Any] = field(default_factory=dict)


#: numpy's limit on dimensions; onnxruntime's tensors have the same.
MAX_RANK = 64
#: No request body (6 MB by default) can carry more elements than this, and
#: every product of dimensions up to it fits an int64, so numpy never overflows.
MAX_ELEMENTS = 2**31 - 1


def check_shape(name: str, shape: Any) -> list[int]:
    """``shape`` as a list of dimensions, checked before numpy ever sees it.

    numpy fails with ``ValueError`` on a rank over 64 and on dimensions whose
    product overflows int64, even when one of them is 0 (``[2**40, 2**40, 0]``);
    those are the client's mistakes, so they are refused here, naming the input.
    """
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(
            f"input {name!r}: shape must be a list of non-negative integers, got {shape!r:.80}"
        )
    if len(shape) > MAX_RANK:
        raise InvalidInput(
            f"input {name!r}: shape has {len(shape)} dimensions, over the limit of {MAX_RANK}"
        )
    product = 1
    for dim in shape:
        product *= dim or 1  # a 0 makes the tensor empty, but numpy still multiplies the rest
        if product > MAX_ELEMENTS:
            raise InvalidInput(
                f"input {name!r}: shape {list(shape)!r:.80} is too large "
                f"(its dimensions multiply to more than {MAX_ELEMENTS})"
            )
    return list(shape)


def text_bytes(value: str) -> bytes:
    """A JSON string as the bytes of a BYTES element.

    ``surrogatepass`` keeps a lone surrogate (``"\\ud800"`` is valid JSON) as
    bytes rather than failing here; those bytes are not UTF-8, so the request
    check refuses them with a 400 that names the input.
    """
    return value.encode("utf-8", "surrogatepass")


def tensor_from_data(name: str, datatype: str, shape: Sequence[Any], data: Any) -> Tensor:
    """Build a tensor from JSON data, nested or flat, checking its element count."""
    dims = check_shape(name, shape)
    dtype = numpy_dtype(datatype)
    expected = math.prod(dims)
    if datatype == "BYTES":
        flat = _flatten(name, data)
        values = [text_bytes(v) if isinstance(v, str) else v for v in flat]
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
    dims = check_shape(name, shape)
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
