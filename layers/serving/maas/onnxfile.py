"""Inspect an ONNX file before it enters the registry: safe? loads? what signature?"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.datatypes import v2_from_ort
from maas.errors import ModelRefused
from maas.model_info import OnnxInfo, ResourceUse, TensorSpec, file_sha256

if TYPE_CHECKING:
    import onnx

    from maas.config import VerifyLimits

#: The data types live in maas.model_info; callers keep importing them from here.
__all__ = ["OnnxInfo", "ResourceUse", "TensorSpec", "file_sha256", "inspect_onnx"]


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


def inspect_onnx(path: Path, limits: VerifyLimits | None = None) -> OnnxInfo:
    """Refuse anything unsafe or broken; return the model's hash, size and signature.

    Bounded: the file size is checked here, everything that reads the model
    (parse, checker, an onnxruntime session with the serving options, a run on
    a zero input) happens in a child process under ``limits``
    (:mod:`maas.model_sandbox`). The result carries what that cost.
    """
    from maas.model_sandbox import inspect_bounded

    return inspect_bounded(path, limits)


def vet_onnx_file(path: Path, max_nodes: int) -> OnnxInfo:
    """Refuse what is not a sound, self-contained ONNX file; no signature yet.

    Unbounded by itself: the verification child runs it under its limits.
    The node count is capped on the wire, before protobuf parses anything.
    """
    import onnx

    from maas.onnx_wire import MalformedProtobuf, TooManyNodes, count_nodes

    label = str(path)
    sha256, size = file_sha256(path)
    if size == 0:
        raise ModelRefused(f"{label} is empty, not an ONNX model")
    try:
        count_nodes(path, max_nodes)
    except TooManyNodes as exc:
        raise ModelRefused(f"{label} {exc}; refused before parsing") from exc
    except MalformedProtobuf as exc:
        raise ModelRefused(f"{label} is not an ONNX model: {exc}") from exc
    model = load_onnx_proto(path, label)
    refuse_external_data(model, label)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    producer = model.producer_name
    del model  # the checker and onnxruntime read the file themselves: never hold it twice
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise ModelRefused(f"{label} fails the ONNX checker: {_first_line(exc)}") from exc
    return OnnxInfo(sha256, size, opset, producer=producer)


def load_serving_session(path: Path) -> tuple[Any, list[TensorSpec], list[TensorSpec]]:
    """An onnxruntime session with the serving options (full optimisation), and its signature."""
    import onnxruntime as ort

    from maas.serving.runtime import session_options

    label = str(path)
    try:
        session = ort.InferenceSession(
            str(path), session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own un-exported exception types
        raise ModelRefused(f"{label} does not load in onnxruntime: {_first_line(exc)}") from exc
    inputs = [_spec(arg) for arg in session.get_inputs()]
    outputs = [_spec(arg) for arg in session.get_outputs()]
    if not inputs:
        raise ModelRefused(f"{label} has no inputs")
    if not outputs:
        raise ModelRefused(f"{label} has no outputs")
    return session, inputs, outputs


def _spec(arg: Any) -> TensorSpec:
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return TensorSpec(arg.name, v2_from_ort(arg.type, arg.name), shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
