"""Open Inference Protocol (KServe V2) REST bodies, with the binary tensor data extension.

Request: a JSON object, optionally followed by raw tensors. When the
``inference-header-content-length`` header is present, the first that many
bytes are the JSON; each input with ``parameters.binary_data_size`` has no
``data`` and takes its bytes from what follows, in input order. Numbers are
little-endian and row-major; a BYTES element is a 4-byte little-endian length
followed by its bytes.

Response: JSON, with ``data`` as a flat row-major list; or, when any output is
asked for as binary, the JSON header followed by those outputs' raw bytes.

Decisions, where the protocol leaves room:

* Non-finite floats in JSON are the strings ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"`` (see :mod:`maas.protocol.values`); binary outputs carry the
  exact IEEE bits.
* A BYTES output goes out as UTF-8 strings. If any element is not valid UTF-8,
  every element of that output is base64 text instead and the output carries
  ``"parameters": {"content_type": "base64"}`` (MLServer's name for this), so a
  reader never has to guess element by element. Binary outputs are raw bytes.
* An empty ``outputs`` list means every output, as an absent one does.
* Unknown parameters (``priority``, ``sequence_id``, ``timeout``...) are ignored.
"""

from __future__ import annotations

import base64
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maas.datatypes import V2_DATATYPES, numpy_dtype
from maas.errors import InvalidInput
from maas.protocol.integers import INT64_MAX, parse_count
from maas.protocol.jsonbody import dumps, parse_object
from maas.protocol.values import (
    binary_bytes_tensor,
    bytes_elements,
    json_values,
    utf8_or_none,
)
from maas.tensors import (
    InferenceRequest,
    InferenceResult,
    Tensor,
    tensor_from_bytes,
    tensor_from_data,
)

#: The header that gives the length of the JSON part of a binary body.
HEADER_LENGTH = "inference-header-content-length"
PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ("binary_tensor_data", "statistics")
SERVER_NAME = "maas"


@dataclass(frozen=True)
class BinaryOutputs:
    """Which outputs go back as raw bytes.

    A request-wide default (``parameters.binary_data_output``) with per-output
    overrides (``outputs[].parameters.binary_data``), so that ``in`` answers for
    any output, including ones computed because no ``outputs`` list was sent.
    """

    default: bool = False
    overrides: Mapping[str, bool] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and name in self.overrides:
            return self.overrides[name]
        return self.default


@dataclass(frozen=True)
class V2Request:
    request: InferenceRequest
    binary_outputs: BinaryOutputs = field(default_factory=BinaryOutputs)


@dataclass(frozen=True)
class _InputSpec:
    name: str
    datatype: str
    shape: Any
    data: Any
    binary_size: int | None


# ------------------------------------------------------------------ requests
def parse_header_length(value: str | None) -> int | None:
    """The ``inference-header-content-length`` header as an int, None when absent."""
    if value is None:
        return None
    return parse_count(value, HEADER_LENGTH)


def decode_infer_request(body: bytes, header_length: int | None = None) -> V2Request:
    """Parse an infer request; ``header_length`` is the parsed header, if sent."""
    if header_length is None:
        header, binary = body, b""
    else:
        if header_length < 0 or header_length > len(body):
            raise InvalidInput(
                f"{HEADER_LENGTH} is {header_length}, but the body has {len(body)} bytes"
            )
        header, binary = body[:header_length], body[header_length:]
    document = parse_object(header, "the inference request")

    specs = _input_specs(document.get("inputs"))
    declared = sum(s.binary_size for s in specs if s.binary_size is not None)
    if header_length is None:
        binary_inputs = [s.name for s in specs if s.binary_size is not None]
        if binary_inputs:
            raise InvalidInput(
                f"input {binary_inputs[0]!r} has parameters.binary_data_size, but the request "
                f"has no {HEADER_LENGTH} header to say where the JSON ends"
            )
    elif declared > len(binary):
        raise InvalidInput(
            f"binary data is truncated: the inputs declare {declared} bytes after the "
            f"JSON header, the body has {len(binary)}"
        )
    elif declared < len(binary):
        raise InvalidInput(
            f"the body has {len(binary) - declared} bytes of trailing data: the inputs "
            f"declare {declared} bytes after the JSON header, the body has {len(binary)}"
        )

    tensors: list[Tensor] = []
    offset = 0
    for spec in specs:
        if spec.binary_size is None:
            tensors.append(tensor_from_data(spec.name, spec.datatype, spec.shape, spec.data))
        else:
            raw = binary[offset : offset + spec.binary_size]
            offset += spec.binary_size
            tensors.append(tensor_from_bytes(spec.name, spec.datatype, spec.shape, raw))

    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"'id' must be a string, got {request_id!r:.40}")
    parameters = _parameters(document.get("parameters"), "the request")
    default_binary = _flag(parameters, "binary_data_output", "the request")
    outputs, overrides = _outputs(document.get("outputs"))
    return V2Request(
        InferenceRequest(tensors, outputs, request_id, parameters),
        BinaryOutputs(default_binary, overrides),
    )


def _input_specs(inputs: Any) -> list[_InputSpec]:
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    specs: list[_InputSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(inputs):
        spec = _input_spec(index, item)
        if spec.name in seen:
            raise InvalidInput(f"input {spec.name!r} is given more than once")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _input_spec(index: int, item: Any) -> _InputSpec:
    where = f"inputs[{index}]"
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype and data")
    name = item.get("name")
    if name is None:
        raise InvalidInput(f"{where} has no 'name'")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}: 'name' must be a non-empty string")
    where = f"input {name!r}"
    for key in ("shape", "datatype"):
        if key not in item:
            raise InvalidInput(f"{where} has no {key!r}")
    datatype = item["datatype"]
    if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
        raise InvalidInput(
            f"{where}: unknown datatype {datatype!r:.40}; use one of "
            f"{', '.join(sorted(V2_DATATYPES))}"
        )
    parameters = _parameters(item.get("parameters"), where)
    size = parameters.get("binary_data_size")
    has_data = "data" in item
    if size is not None:
        if has_data:
            raise InvalidInput(
                f"{where} has both 'data' and parameters.binary_data_size; send one of them"
            )
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= INT64_MAX:
            raise InvalidInput(
                f"{where}: parameters.binary_data_size must be a non-negative integer "
                f"of at most {INT64_MAX}, got {size!r:.40}"
            )
    elif not has_data:
        if "shared_memory_region" in parameters:
            raise InvalidInput(f"{where}: shared memory inputs are not supported; send data")
        raise InvalidInput(f"{where} has neither 'data' nor parameters.binary_data_size")
    return _InputSpec(name, datatype, item["shape"], item.get("data"), size)


def _outputs(outputs: Any) -> tuple[list[str] | None, dict[str, bool]]:
    if outputs is None:
        return None, {}
    if not isinstance(outputs, list):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    names: list[str] = []
    overrides: dict[str, bool] = {}
    for index, item in enumerate(outputs):
        if not isinstance(item, dict):
            raise InvalidInput(f"outputs[{index}] must be an object with a 'name'")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"outputs[{index}] needs a 'name' that is a non-empty string")
        where = f"output {name!r}"
        parameters = _parameters(item.get("parameters"), where)
        if "binary_data" in parameters:
            overrides[name] = _flag(parameters, "binary_data", where)
        names.append(name)
    return names or None, overrides


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: 'parameters' must be an object")
    return value


def _flag(parameters: Mapping[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}: parameters.{key} must be true or false, got {value!r:.40}")
    return value


# ----------------------------------------------------------------- responses
def encode_infer_response(
    result: InferenceResult, binary_outputs: Container[str] = frozenset()
) -> tuple[bytes, dict[str, str]]:
    """The response body and the headers it needs (content type, header length).

    ``binary_outputs`` is usually the request's :class:`BinaryOutputs`; any
    container of names works.
    """
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in result.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        if tensor.name in binary_outputs:
            raw = _raw(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            data, parameters = _json_data(tensor)
            if parameters:
                entry["parameters"] = parameters
            entry["data"] = data
        entries.append(entry)
    document: dict[str, Any] = {
        "model_name": result.model_name,
        "model_version": str(result.model_version),
    }
    if result.id is not None:
        document["id"] = result.id
    if result.parameters:
        document["parameters"] = result.parameters
    document["outputs"] = entries
    header = dumps(document)
    if not chunks:
        return header, {"content-type": "application/json"}
    return b"".join([header, *chunks]), {
        HEADER_LENGTH: str(len(header)),
        "content-type": "application/octet-stream",
    }


def _raw(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        return binary_bytes_tensor(bytes_elements(tensor.array))
    little = numpy_dtype(tensor.datatype).newbyteorder("<")
    return tensor.array.astype(little, copy=False).tobytes()


def _json_data(tensor: Tensor) -> tuple[Any, dict[str, Any]]:
    if tensor.datatype != "BYTES":
        return json_values(tensor.array.reshape(-1), tensor.datatype), {}
    elements = bytes_elements(tensor.array)
    texts = [utf8_or_none(e) for e in elements]
    if all(t is not None for t in texts):
        return texts, {}
    return [base64.b64encode(e).decode("ascii") for e in elements], {"content_type": "base64"}


# ------------------------------------------------------------------ metadata
def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``."""
    return {"name": SERVER_NAME, "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(
    name: str,
    versions: Sequence[int],
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    ensemble: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``GET /v2/models/{m}[/versions/{v}]``: the signature from the manifest, -1 = dynamic.
    An ``ensemble`` (``{"platform", "members", "combiner"}``) replaces the platform and
    adds its members and combiner."""
    document = {
        "name": name,
        "versions": [str(v) for v in sorted(set(versions))],
        "platform": PLATFORM,
        "inputs": [tensor_metadata(spec) for spec in inputs],
        "outputs": [tensor_metadata(spec) for spec in outputs],
    }
    if ensemble is not None:
        document.update(ensemble)
    return document


def tensor_metadata(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": spec["name"],
        "datatype": spec["datatype"],
        "shape": [-1 if d is None or d < 0 else int(d) for d in spec["shape"]],
    }
