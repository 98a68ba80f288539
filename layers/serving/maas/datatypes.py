"""Tensor datatypes: Open Inference Protocol names, onnxruntime type strings, numpy dtypes."""

from __future__ import annotations

from maas.errors import ModelRefused

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
