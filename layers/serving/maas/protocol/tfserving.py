"""TensorFlow Serving's REST API: predict bodies, model status and metadata.

Keras users' code posts ``{"instances": [...]}`` (row form) or
``{"inputs": ...}`` (columnar form) without datatypes, so the model's signature
supplies them. The rules follow TF Serving's own ``json_tensor.cc``:

* Row form: with one input, each instance is that input's value for one row
  (or an object keyed by its name); with several inputs, each instance is an
  object keyed by input name. Instances are stacked into the batch dimension,
  so they must all have the same shape.
* Columnar form: the value of the single input, or an object keyed by input name.
* BYTES values are strings (UTF-8) or ``{"b64": "..."}`` objects.
* Output rule: one output answers with a bare list (``predictions`` /
  ``outputs``); several answer with objects keyed by output name, one per row
  in row form.

Decisions:

* ``signature_name`` may be absent, empty or ``"serving_default"``; any other
  name is a 400, as in TF Serving: a converted model has only the default
  signature, and silently running it for a client that asked for another
  (say ``"classify"``) could return the wrong kind of answer.
* Non-finite floats are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
  (see :mod:`maas.protocol.values`).
* A BYTES output element is a string when it is valid UTF-8 and
  ``{"b64": "..."}`` otherwise; outputs whose name ends in ``_bytes`` are always
  ``{"b64": ...}``, as in TF Serving.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from maas.datatypes import numpy_dtype
from maas.errors import InvalidInput, ServerFault
from maas.protocol.jsonbody import dumps, parse_object
from maas.protocol.values import (
    bytes_elements,
    json_values,
    numeric_values,
    object_array,
    utf8_or_none,
)
from maas.tensors import MAX_RANK, InferenceRequest, InferenceResult, Tensor, text_bytes

Form = Literal["row", "columnar"]

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"

#: Open Inference Protocol datatype → TensorFlow DataType enum name.
TF_DTYPES: dict[str, str] = {
    "BOOL": "DT_BOOL",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "FP16": "DT_HALF",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}


# ------------------------------------------------------------------ requests
def decode_predict(
    body: bytes, inputs_signature: Sequence[Mapping[str, Any]]
) -> tuple[InferenceRequest, Form]:
    """Parse a ``:predict`` body against the model's inputs (``[{name, datatype, shape}]``)."""
    document = parse_object(body, "the predict request")
    check_signature_name(document)
    datatypes = input_datatypes(inputs_signature)
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise InvalidInput(
            "send either 'instances' (row form) or 'inputs' (columnar form), not both"
        )
    if has_instances:
        return InferenceRequest(_rows(document["instances"], datatypes)), "row"
    if has_inputs:
        return InferenceRequest(_columns(document["inputs"], datatypes)), "columnar"
    raise InvalidInput(
        "the predict request needs 'instances' (row form) or 'inputs' (columnar form)"
    )


def check_signature_name(document: Mapping[str, Any]) -> None:
    signature = document.get("signature_name")
    if signature is not None:
        if not isinstance(signature, str):
            raise InvalidInput("'signature_name' must be a string")
        if signature not in ("", DEFAULT_SIGNATURE):
            raise InvalidInput(
                f"unknown signature_name {signature[:64]!r}; this model has only "
                f"{DEFAULT_SIGNATURE!r}"
            )


def input_datatypes(inputs_signature: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    datatypes = {spec["name"]: spec["datatype"] for spec in inputs_signature}
    if not datatypes:
        raise ServerFault("the model's signature has no inputs")
    return datatypes


def row_tensors(instances: Any, datatypes: Mapping[str, str]) -> list[Tensor]:
    """Row-form instances as input tensors (``:classify`` examples are rows too)."""
    return _rows(instances, datatypes)


def _rows(instances: Any, datatypes: Mapping[str, str]) -> list[Tensor]:
    if not isinstance(instances, list):
        raise InvalidInput("'instances' must be a list, one element per row")
    if not instances:
        raise InvalidInput("'instances' is empty; send at least one row")
    names = list(datatypes)
    keyed = _is_keyed(instances[0])
    if not keyed and len(names) > 1:
        raise InvalidInput(
            f"'instances' is a plain list, but the model has several inputs "
            f"({_listing(names)}); send each instance as an object keyed by input name"
        )
    if not keyed:
        for index, instance in enumerate(instances):
            if _is_keyed(instance):
                raise InvalidInput(
                    f"instance {index} is an object but instance 0 is not; use one form"
                )
        name = names[0]
        return [_tensor(name, datatypes[name], instances, rows=True)]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if not _is_keyed(instance):
            raise InvalidInput(
                f"instance {index} is not an object keyed by input name, unlike instance 0"
            )
        _check_keys(instance, names, f"instance {index}")
        for name in names:
            columns[name].append(instance[name])
    return [_tensor(name, datatypes[name], columns[name], rows=True) for name in names]


def _columns(inputs: Any, datatypes: Mapping[str, str]) -> list[Tensor]:
    names = list(datatypes)
    if _is_keyed(inputs):
        _check_keys(inputs, names, "'inputs'")
        return [_tensor(name, datatypes[name], inputs[name], rows=False) for name in names]
    if len(names) > 1:
        raise InvalidInput(
            f"'inputs' is a plain value, but the model has several inputs "
            f"({_listing(names)}); send an object keyed by input name"
        )
    return [_tensor(names[0], datatypes[names[0]], inputs, rows=False)]


def _check_keys(given: Mapping[str, Any], names: list[str], where: str) -> None:
    unknown = [key for key in given if key not in names]
    if unknown:
        raise InvalidInput(
            f"{where} has unknown input {unknown[0][:64]!r}; the model takes {_listing(names)}"
        )
    missing = [name for name in names if name not in given]
    if missing:
        raise InvalidInput(f"{where} lacks input {missing[0]!r}; the model takes {_listing(names)}")


def _tensor(name: str, datatype: str, value: Any, *, rows: bool) -> Tensor:
    if datatype == "BYTES":
        return Tensor(name, datatype, _bytes_array(name, value, rows))
    try:
        array = np.asarray(value, dtype=numpy_dtype(datatype))
    except (ValueError, TypeError, OverflowError) as exc:
        # Explain raggedness in our words; anything else is a value of the wrong type.
        _regular_shape(name, value, rows)
        raise InvalidInput(
            f"input {name!r}: the values are not {datatype} numbers ({_first_line(exc)})"
        ) from None
    return Tensor(name, datatype, array)


class _Ragged(Exception):
    pass


def _regular_shape(name: str, value: Any, rows: bool) -> list[int]:
    """The shape of a nested list, or the client's error saying where it is ragged."""
    try:
        return _shape(name, value)
    except _Ragged as exc:
        if rows:
            raise InvalidInput(
                f"instances are ragged for input {name!r}: every instance must have the "
                f"same shape ({exc})"
            ) from None
        raise InvalidInput(f"input {name!r} is ragged: {exc}") from None


def _shape(name: str, value: Any) -> list[int]:
    dims: list[int] = []
    probe = value
    while isinstance(probe, list):
        dims.append(len(probe))
        if len(dims) > MAX_RANK:
            raise InvalidInput(f"input {name!r}: lists are nested more than {MAX_RANK} deep")
        if not probe:
            break
        probe = probe[0]
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth == len(dims):
            if isinstance(item, list):
                raise _Ragged(f"a list sits where a value was expected at depth {depth}")
            continue
        if not isinstance(item, list):
            raise _Ragged(f"a value sits where a list of {dims[depth]} was expected")
        if len(item) != dims[depth]:
            raise _Ragged(f"a list has {len(item)} elements where {dims[depth]} were expected")
        stack.extend((child, depth + 1) for child in item)
    return dims


def _bytes_array(name: str, value: Any, rows: bool) -> np.ndarray[Any, Any]:
    shape = _regular_shape(name, value, rows)
    flat: list[Any] = []
    stack: list[Any] = [value]
    while stack:  # depth-first, children pushed reversed: row-major order
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(_bytes_value(name, item))
    return object_array(flat, shape)


def _bytes_value(name: str, value: Any) -> bytes:
    if isinstance(value, str):
        return text_bytes(value)
    if _is_b64(value):
        text = value["b64"]
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"input {name!r}: {text[:40]!r} is not valid base64") from None
    raise InvalidInput(
        f'input {name!r}: BYTES values must be strings or {{"b64": ...}} objects, got {value!r:.40}'
    )


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_keyed(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _listing(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ----------------------------------------------------------------- responses
def encode_predict(result: InferenceResult, form: Form) -> dict[str, Any]:
    """The ``:predict`` answer, following TF Serving's single/several outputs rule."""
    return _predict_document(result, form, numeric_values)


def encode_predict_body(result: InferenceResult, form: Form) -> bytes:
    """:func:`encode_predict` as JSON bytes, numbers printed from numpy without lists."""
    return dumps(_predict_document(result, form, json_values))


def _predict_document(
    result: InferenceResult, form: Form, numbers: Callable[[np.ndarray[Any, Any], str], Any]
) -> dict[str, Any]:
    if not result.outputs:
        raise ServerFault("the model returned no outputs")
    values = {tensor.name: _json_tensor(tensor, numbers) for tensor in result.outputs}
    single = len(result.outputs) == 1
    if form == "columnar":
        return {"outputs": next(iter(values.values())) if single else values}
    batch: int | None = None
    for tensor in result.outputs:
        if tensor.array.ndim == 0:
            raise InvalidInput(
                f"output {tensor.name!r} is a scalar, which the row form cannot return; "
                "send the request in columnar form ('inputs')"
            )
        size = int(tensor.array.shape[0])
        if batch is not None and size != batch:
            raise InvalidInput(
                f"output {tensor.name!r} has {size} rows, the others {batch}, so the row form "
                "cannot pair them; send the request in columnar form ('inputs')"
            )
        batch = size
    if single:
        return {"predictions": next(iter(values.values()))}
    names = list(values)
    return {
        "predictions": [{name: values[name][row] for name in names} for row in range(batch or 0)]
    }


def _json_tensor(tensor: Tensor, numbers: Callable[[np.ndarray[Any, Any], str], Any]) -> Any:
    if tensor.datatype != "BYTES":
        return numbers(tensor.array, tensor.datatype)
    always_b64 = tensor.name.endswith("_bytes")
    rendered: list[Any] = []
    for element in bytes_elements(tensor.array):
        text = None if always_b64 else utf8_or_none(element)
        rendered.append(
            text if text is not None else {"b64": base64.b64encode(element).decode("ascii")}
        )
    return object_array(rendered, tensor.shape).tolist()


# ------------------------------------------------------------------ metadata
def model_status(versions: Iterable[int]) -> dict[str, Any]:
    """``GET /v1/models/{m}[...]``: every listed version is AVAILABLE (it can be loaded)."""
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
            for version in versions
        ]
    }


def model_metadata(
    name: str,
    version: int,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """``GET /v1/models/{m}[...]/metadata``, shaped like TF Serving's SignatureDef JSON.

    int64 sizes are strings because TF Serving renders protobuf JSON, where they are.
    """
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    DEFAULT_SIGNATURE: {
                        "inputs": {spec["name"]: _tensor_info(spec) for spec in inputs},
                        "outputs": {spec["name"]: _tensor_info(spec) for spec in outputs},
                        "method_name": PREDICT_METHOD,
                    }
                }
            }
        },
    }


def _tensor_info(spec: Mapping[str, Any]) -> dict[str, Any]:
    dims = [-1 if d is None or d < 0 else int(d) for d in spec["shape"]]
    return {
        "dtype": TF_DTYPES.get(spec["datatype"], "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in dims],
            "unknown_rank": False,
        },
        "name": spec["name"],
    }
