from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from maas.errors import InvalidInput, ModelRefused
from maas.onnxfile import file_sha256, inspect_onnx
from tests.support import hostile_models, onnx_models


def test_signature_hash_and_opset_come_from_the_file(onnx_model: Path) -> None:
    info = inspect_onnx(onnx_model)
    assert (info.sha256, info.size) == file_sha256(onnx_model)
    assert info.size == onnx_model.stat().st_size
    assert info.opset == 17
    assert [s.as_json() for s in info.inputs] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}
    ]
    assert [s.as_json() for s in info.outputs] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
    ]


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        inspect_onnx(tmp_path / "absent.onnx")


@pytest.mark.parametrize("content", [b"", b"this is not a protobuf \xff\xfe", b"\x08\x07" * 3])
def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelRefused, match="not an ONNX model"):
        inspect_onnx(path)


def test_a_model_that_onnxruntime_cannot_load_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelRefused, match="(does not load in onnxruntime|ONNX checker)"):
        inspect_onnx(onnx_models.unloadable(tmp_path))


def test_initializers_in_external_data_are_refused(tmp_path: Path) -> None:
    path = onnx_models.with_external_data(onnx_models.digits_mlp(), tmp_path)
    with pytest.raises(ModelRefused, match="external data"):
        inspect_onnx(path)


def _external(name: str, location: str = "../../../../etc/passwd") -> TensorProto:
    return hostile_models.external_tensor(name, location)


def _write(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_hidden_in_a_subgraph_constant_is_refused(tmp_path: Path) -> None:
    """A Constant inside an If branch: not an initializer, still a path to the file system."""
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["k"], value=_external("hidden"))],
        "then",
        [],
        [helper.make_tensor_value_info("k", TensorProto.FLOAT, [4])],
    )
    other = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["k2"], value=numpy_helper.from_array(np.ones(4, np.float32))
            )
        ],
        "else",
        [],
        [helper.make_tensor_value_info("k2", TensorProto.FLOAT, [4])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=other)],
        "hostile",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelRefused, match="external data.*hidden"):
        inspect_onnx(_write(model, tmp_path / "hostile.onnx"))


def test_external_data_in_a_sparse_initializer_is_refused(tmp_path: Path) -> None:
    model = onnx_models.digits_mlp()
    sparse = helper.make_sparse_tensor(
        _external("values"), numpy_helper.from_array(np.arange(4, dtype=np.int64), "i"), [8]
    )
    model.graph.sparse_initializer.append(sparse)
    with pytest.raises(ModelRefused, match="external data"):
        inspect_onnx(_write(model, tmp_path / "sparse.onnx"))


def test_external_data_in_a_local_function_is_refused(tmp_path: Path) -> None:
    model = onnx_models.digits_mlp()
    function = helper.make_function(
        "custom",
        "leak",
        [],
        ["y"],
        [helper.make_node("Constant", [], ["y"], value=_external("in_function"))],
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.functions.append(function)
    with pytest.raises(ModelRefused, match="external data.*in_function"):
        inspect_onnx(_write(model, tmp_path / "function.onnx"))


def test_non_tensor_inputs_are_refused(tmp_path: Path) -> None:
    seq = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
    out = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    graph = helper.make_graph(
        [helper.make_node("SequenceLength", ["s"], ["n"])], "seq", [seq], [out]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(ModelRefused, match="Open Inference Protocol cannot carry"):
        inspect_onnx(_write(model, tmp_path / "seq.onnx"))
