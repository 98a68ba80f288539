"""Tensor datatypes: Open Inference Protocol names, onnxruntime type strings, numpy dtypes."""

from __future__ import annotations

from typing import Any

from maas.errors import InvalidInput, ModelRefused, ServerFault

#: onnxruntime's ``NodeArg.type`` string → Open Inference Protocol datatype.
ORT_TO_V2: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

V2_DATATYPES = frozenset(ORT_TO_V2.values())


def v2_from_ort(ort_type: str, tensor_name: str) -> str:
    try:
        return ORT_TO_V2[ort_type]
    except KeyError:
        raise ModelRefused(
            f"tensor {tensor_name!r} has type {ort_type}, which the Open Inference "
            f"Protocol cannot carry (supported: {', '.join(sorted(ORT_TO_V2))})"
        ) from None


def numpy_dtype(datatype: str) -> Any:
    """The numpy dtype that carries an Open Inference Protocol datatype."""
    import numpy as np

    mapping: dict[str, Any] = {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
        "BYTES": np.object_,
    }
    try:
        return np.dtype(mapping[datatype])
    except KeyError:
        raise InvalidInput(
            f"unknown datatype {datatype!r}; use one of {', '.join(sorted(mapping))}"
        ) from None


def v2_from_numpy(dtype: Any) -> str:
    import numpy as np

    kind = np.dtype(dtype)
    if kind.kind in ("O", "S", "U"):
        return "BYTES"
    names = {
        "bool": "BOOL",
        "uint8": "UINT8",
        "uint16": "UINT16",
        "uint32": "UINT32",
        "uint64": "UINT64",
        "int8": "INT8",
        "int16": "INT16",
        "int32": "INT32",
        "int64": "INT64",
        "float16": "FP16",
        "float32": "FP32",
        "float64": "FP64",
    }
    try:
        return names[kind.name]
    except KeyError:
        raise ServerFault(f"numpy dtype {kind} has no Open Inference Protocol datatype") from None
