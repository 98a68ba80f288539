"""Hostile and broken ONNX files, built by the tests: what verification must refuse.

Each case is a function that writes one file and returns a keyword its refusal
must contain. ``CASES`` lists them all; ``MANIFEST_LIES`` edits the manifest of
a case whose model is sound but whose manifest is not; ``LIMITS`` gives the
small limits a case is tested under when the limit itself is what it tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.support import onnx_models

_OPSET = [helper.make_opsetid("", 17)]

#: The bounds every refusal must respect: the verification child's peak RSS and
#: the wall time; the caller parses nothing, so its RSS may move by allocator
#: noise, never by the model.
PEAK_BOUND = int(1.5 * 2**30)
WALL_BOUND = 90.0
CALLER_GROWTH_BOUND = 64 * 2**20


def caller_rss() -> int:
    """This process's resident set size now (/proc/self/status VmRSS)."""
    with Path("/proc/self/status").open() as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _model(graph: onnx.GraphProto, **kwargs: Any) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=kwargs.pop("opsets", _OPSET), **kwargs)
    model.ir_version = 8
    return model


def _write(model: onnx.ModelProto, path: Path) -> None:
    path.write_bytes(model.SerializeToString())


def _float(name: str, shape: list[Any]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def constant_of_shape(path: Path, elements: int) -> None:
    """``x + sum(ConstantOfShape([elements]))``: a few hundred bytes that allocate
    ``4 * elements`` bytes when constant folding (session creation) or a run does."""
    shape = numpy_helper.from_array(np.array([elements], np.int64), "shape")
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
            helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            helper.make_node("Add", ["x", "total"], ["y"]),
        ],
        "constant_of_shape",
        [_float("x", [1])],
        [_float("y", [1])],
        [shape],
    )
    _write(_model(graph), path)


def memory_bomb(path: Path) -> str:
    """A ConstantOfShape that folds to 1 GiB at session creation."""
    constant_of_shape(path, 1 << 28)
    return "memory limit"


def endless_loop(path: Path) -> str:
    """A Loop with trip count 2**62 whose body just counts."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["count_in", "one"], ["count_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            _float("count_in", [1]),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _float("count_out", [1])],
        [numpy_helper.from_array(np.array([1.0], np.float32), "one")],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "keep_going", "x"], ["y"], body=body)],
        "endless_loop",
        [_float("x", [1])],
        [_float("y", [1])],
        [
            numpy_helper.from_array(np.array(1 << 62, np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "keep_going"),
        ],
    )
    _write(_model(graph), path)
    return "did not finish within"


def _with_graph_bytes(path: Path, graph: bytes) -> None:
    model = _model(helper.make_graph([], "g", [], []))
    model.ClearField("graph")
    path.write_bytes(model.SerializeToString() + b"\x3a" + _varint(len(graph)) + graph)


def ten_million_empty_nodes(path: Path) -> str:
    """20 MB: a valid ModelProto whose graph holds 10M empty NodeProtos (2 bytes each)."""
    _with_graph_bytes(path, b"\x0a\x00" * 10_000_000)  # GraphProto.node (field 1), length 0
    return "MAAS_MAX_NODES"


def ten_million_empty_initializers(path: Path) -> str:
    """The same amplification through another field of the graph: the field cap."""
    _with_graph_bytes(path, b"\x2a\x00" * 10_000_000)  # GraphProto.initializer (5), length 0
    return "MAAS_MAX_NODES"


def six_million_entries_in_one_tensor(path: Path) -> str:
    """18 MB: one initializer with six million empty ``metadata_props`` entries (field 16),
    about 500 MB once parsed; over a small memory limit (``LIMITS``)."""
    tensor = numpy_helper.from_array(np.zeros(1, np.float32), "w").SerializeToString()
    tensor += b"\x82\x01\x00" * 6_000_000
    _with_graph_bytes(path, b"\x2a" + _varint(len(tensor)) + tensor)
    return "memory limit"


def not_onnx(path: Path) -> str:
    path.write_bytes(b"\x00\x01 definitely not a protobuf \xff\xfe" * 10)
    return "not an ONNX model"


def truncated(path: Path) -> str:
    whole = onnx_models.digits_mlp().SerializeToString()
    path.write_bytes(whole[: len(whole) // 2])
    return "not an ONNX model"


def external_tensor(name: str, location: str) -> TensorProto:
    """Four floats whose bytes are said to live in the file at ``location``."""
    tensor = numpy_helper.from_array(np.zeros(4, np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def _external_initializer(path: Path, location: str) -> str:
    model = onnx_models.digits_mlp()
    weights = model.graph.initializer[0]
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    entry = weights.external_data.add()
    entry.key, entry.value = "location", location
    _write(model, path)
    return "external data"


def external_data_relative(path: Path) -> str:
    return _external_initializer(path, "../../../../etc/passwd")


def external_data_absolute(path: Path) -> str:
    return _external_initializer(path, "/etc/passwd")


def external_data_in_a_constant(path: Path) -> str:
    model = onnx_models.digits_mlp()
    leak = external_tensor("leak", "../../../proc/self/environ")
    model.graph.node.append(helper.make_node("Constant", [], ["leaked"], value=leak))
    _write(model, path)
    return "external data"


def external_data_in_a_subgraph(path: Path) -> str:
    """A Constant inside an If branch: not an initializer, still a path to the file system."""

    def branch(name: str, value: TensorProto) -> onnx.GraphProto:
        node = helper.make_node("Constant", [], [f"{name}_k"], value=value)
        return helper.make_graph([node], name, [], [_float(f"{name}_k", [4])])

    ones = numpy_helper.from_array(np.ones(4, np.float32), "ones")
    graph = helper.make_graph(
        [
            helper.make_node(
                "If",
                ["cond"],
                ["out"],
                then_branch=branch("then", external_tensor("hidden", "/etc/shadow")),
                else_branch=branch("else", ones),
            )
        ],
        "hostile",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [_float("out", [4])],
    )
    _write(_model(graph), path)
    return "external data"


def external_data_in_a_sparse_initializer(path: Path) -> str:
    model = onnx_models.digits_mlp()
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "indices")
    sparse = helper.make_sparse_tensor(external_tensor("values", "/etc/passwd"), indices, [8])
    model.graph.sparse_initializer.append(sparse)
    _write(model, path)
    return "external data"


def external_data_in_a_local_function(path: Path) -> str:
    model = onnx_models.digits_mlp()
    leak = helper.make_node(
        "Constant", [], ["y"], value=external_tensor("in_function", "/etc/passwd")
    )
    model.functions.append(helper.make_function("custom", "leak", [], ["y"], [leak], _OPSET))
    _write(model, path)
    return "external data"


def huge_declared_dimensions(path: Path) -> str:
    """An input declared [2**31, 2**31]: 16 EiB of zeros at batch 1."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "huge",
        [_float("x", [2**31, 2**31])],
        [_float("y", [2**31, 2**31])],
    )
    _write(_model(graph), path)
    return "declares dimensions"


def operator_onnxruntime_lacks(path: Path) -> str:
    """A node in a custom domain: the ONNX checker lets it through, onnxruntime has no kernel."""
    graph = helper.make_graph(
        [helper.make_node("Transmogrify", ["x"], ["y"], domain="com.example.hostile")],
        "unknown_op",
        [_float("x", [1])],
        [_float("y", [1])],
    )
    opsets = [*_OPSET, helper.make_opsetid("com.example.hostile", 1)]
    _write(_model(graph, opsets=opsets), path)
    return "does not load in onnxruntime"


def operator_nobody_defines(path: Path) -> str:
    """An unknown operator in the default domain: the ONNX checker refuses it."""
    graph = helper.make_graph(
        [helper.make_node("NoSuchOperator", ["x"], ["y"])],
        "unknown_op",
        [_float("x", [1])],
        [_float("y", [1])],
    )
    _write(_model(graph), path)
    return "ONNX checker"


def outputs_disagree_with_the_manifest(path: Path) -> str:
    """A sound model; its manifest (``MANIFEST_LIES``) declares other outputs."""
    onnx_models.save(onnx_models.digits_mlp(), path)
    return "signature"


def _lie_about_outputs(manifest: dict[str, Any]) -> None:
    manifest["outputs"] = [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]


Case = Callable[[Path], str]

CASES: dict[str, Case] = {
    case.__name__: case
    for case in (
        memory_bomb,
        endless_loop,
        ten_million_empty_nodes,
        ten_million_empty_initializers,
        six_million_entries_in_one_tensor,
        not_onnx,
        truncated,
        external_data_relative,
        external_data_absolute,
        external_data_in_a_constant,
        external_data_in_a_subgraph,
        external_data_in_a_sparse_initializer,
        external_data_in_a_local_function,
        huge_declared_dimensions,
        operator_onnxruntime_lacks,
        operator_nobody_defines,
        outputs_disagree_with_the_manifest,
    )
}

#: Cases whose model is sound: only their manifest is wrong.
MANIFEST_LIES: dict[str, Callable[[dict[str, Any]], None]] = {
    "outputs_disagree_with_the_manifest": _lie_about_outputs,
}

#: Small limits where the limit is what a case tests (keeps the corpus fast).
LIMITS: dict[str, dict[str, str]] = {
    "endless_loop": {"MAAS_VERIFY_TIMEOUT_S": "3"},
    "six_million_entries_in_one_tensor": {"MAAS_VERIFY_MEMORY_MB": "256"},
}
