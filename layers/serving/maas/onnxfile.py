"""Inspect an ONNX file before it enters the registry: safe? loads? what signature?"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.datatypes import v2_from_ort
from maas.errors import InvalidInput, ModelRefused

if TYPE_CHECKING:
    import onnx

_CHUNK = 1 << 20


def file_sha256(path: Path) -> tuple[str, int]:
    """Streamed sha256 and size, so a large model is never held twice in memory."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class OnnxInfo:
    sha256: str
    size: int
    opset: int | None
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    producer: str = ""


def _graphs_of_attribute(attribute: onnx.AttributeProto) -> Iterator[onnx.GraphProto]:
    if attribute.HasField("g"):
        yield attribute.g
    yield from attribute.graphs


def _tensors_of_attribute(attribute: onnx.AttributeProto) -> Iterator[onnx.TensorProto]:
    if attribute.HasField("t"):
        yield attribute.t
    yield from attribute.tensors
    sparse = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
    for tensor in [*sparse, *attribute.sparse_tensors]:
        yield tensor.values
        yield tensor.indices


def _tensors_of_nodes(nodes: Any) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attribute in node.attribute:
            yield from _tensors_of_attribute(attribute)
            for graph in _graphs_of_attribute(attribute):
                yield from _tensors_of_graph(graph)


def _tensors_of_graph(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _tensors_of_nodes(graph.node)


def all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor anywhere in the model: graph, subgraphs, functions, training info."""
    yield from _tensors_of_graph(model.graph)
    for function in model.functions:
        yield from _tensors_of_nodes(function.node)
    for info in model.training_info:
        yield from _tensors_of_graph(info.initialization)
        yield from _tensors_of_graph(info.algorithm)


def refuse_external_data(model: onnx.ModelProto, label: str) -> None:
    """External data lets a model name files outside itself: refuse it outright.

    It is how CVE-2022-25882 and CVE-2024-27318 (path traversal) and the later
    symlink variants reach the file system, and onnxruntime only began to check
    those paths in 1.24. A registry version must be one self-contained file.
    """
    import onnx

    for tensor in all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise ModelRefused(
                f"{label} uses external data (tensor {tensor.name!r}); "
                "maas accepts only self-contained ONNX files"
            )


def load_onnx_proto(path: Path, label: str) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        # Never follow external-data references while we have not vetted them.
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelRefused(f"{label} is not an ONNX model: {exc}") from exc
    if not model.HasField("graph") or not model.opset_import:
        raise ModelRefused(f"{label} is not an ONNX model: it has no graph or no opset")
    return model


def inspect_onnx(path: Path) -> OnnxInfo:
    """Refuse anything unsafe or broken; return the model's hash, size and signature."""
    import onnx
    import onnxruntime as ort

    label = str(path)
    if not path.is_file():
        raise InvalidInput(f"{label}: no such file")
    sha256, size = file_sha256(path)
    if size == 0:
        raise ModelRefused(f"{label} is empty, not an ONNX model")
    model = load_onnx_proto(path, label)
    refuse_external_data(model, label)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelRefused(f"{label} fails the ONNX checker: {_first_line(exc)}") from exc

    options = ort.SessionOptions()
    # Only proving that it loads: skip the optimisation a serving session does.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own un-exported exception types
        raise ModelRefused(f"{label} does not load in onnxruntime: {_first_line(exc)}") from exc

    inputs = [_spec(arg) for arg in session.get_inputs()]
    outputs = [_spec(arg) for arg in session.get_outputs()]
    if not inputs:
        raise ModelRefused(f"{label} has no inputs")
    if not outputs:
        raise ModelRefused(f"{label} has no outputs")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return OnnxInfo(sha256, size, opset, inputs, outputs, model.producer_name)


def _spec(arg: Any) -> TensorSpec:
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return TensorSpec(arg.name, v2_from_ort(arg.type, arg.name), shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
