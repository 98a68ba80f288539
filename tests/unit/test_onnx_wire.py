"""The wire-level node count agrees with onnx's own parse, and stops at its caps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from maas.onnx_wire import (
    FIELDS_PER_NODE,
    MalformedProtobuf,
    TooManyNodes,
    count_nodes,
    count_nodes_in,
)
from tests.support import hostile_models, onnx_models


def _all_nodes(model: onnx.ModelProto) -> int:
    """onnx's count: every node of every graph, subgraph and function."""

    def in_graph(graph: onnx.GraphProto) -> int:
        return sum(1 + sum(in_attribute(a) for a in node.attribute) for node in graph.node)

    def in_attribute(attribute: onnx.AttributeProto) -> int:
        graphs = [attribute.g] if attribute.HasField("g") else []
        return sum(in_graph(g) for g in [*graphs, *attribute.graphs])

    functions = sum(
        len(f.node) + sum(in_attribute(a) for n in f.node for a in n.attribute)
        for f in model.functions
    )
    return in_graph(model.graph) + functions


def _nested_model() -> onnx.ModelProto:
    """An If inside a Loop body, plus a local function: nodes at three depths."""
    leaf = helper.make_graph(
        [helper.make_node("Identity", ["v"], ["w"]), helper.make_node("Neg", ["w"], ["z"])],
        "leaf",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("If", ["c"], ["v_out"], then_branch=leaf, else_branch=leaf),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1]),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["n", "go", "x"], ["y"], body=body)],
        "nested",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [
            numpy_helper.from_array(np.array(2, np.int64), "n"),
            numpy_helper.from_array(np.array(True), "go"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.functions.append(
        helper.make_function(
            "custom", "twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], []
        )
    )
    return model


@pytest.mark.parametrize(
    "model", [onnx_models.digits_mlp(), onnx_models.two_heads(), _nested_model()]
)
def test_the_count_is_onnx_s_own(model: onnx.ModelProto) -> None:
    assert count_nodes_in(model.SerializeToString(), 1000) == _all_nodes(model)


def test_a_file_is_counted_through_a_memory_map(tmp_path: Path) -> None:
    path = onnx_models.save(onnx_models.digits_mlp(), tmp_path / "m.onnx")
    assert count_nodes(path, 100) == 5
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert count_nodes(tmp_path / "empty.onnx", 100) == 0


def test_ten_million_empty_nodes_stop_at_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "nodes.onnx"
    hostile_models.ten_million_empty_nodes(path)
    with pytest.raises(TooManyNodes, match="more than 1000 nodes"):
        count_nodes(path, 1000)


def test_other_fields_are_capped_too(tmp_path: Path) -> None:
    path = tmp_path / "initializers.onnx"
    hostile_models.ten_million_empty_initializers(path)
    with pytest.raises(TooManyNodes, match=f"more than {FIELDS_PER_NODE * 1000} protobuf fields"):
        count_nodes(path, 1000)


def test_a_truncated_file_is_malformed() -> None:
    whole = onnx_models.digits_mlp().SerializeToString()
    with pytest.raises(MalformedProtobuf):
        count_nodes_in(whole[: len(whole) // 2], 1000)


@pytest.mark.parametrize(
    "data", [b"\xff", b"\x0b\x00", b"\x3a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"]
)
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedProtobuf):
        count_nodes_in(data, 1000)
