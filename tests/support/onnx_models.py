"""Small, real ONNX models built with onnx.helper, for tests and the registry demo.

Run as ``python -m tests.support.onnx_models OUT.onnx`` to write the demo model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def digits_mlp(seed: int = 0, hidden: int = 32) -> onnx.ModelProto:
    """Flatten → Dense(hidden, relu) → Dense(10, softmax) on (-1, 8, 8) FP32 input,
    with the names train-example models use (``input`` → ``probabilities``)."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(0, 0.1, (64, hidden)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(hidden, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.1, (hidden, 10)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.zeros(10, np.float32), "b2")
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [w1, b1, w2, b2],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="maas-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def constant_classifier(
    probabilities: list[float],
    *,
    input_name: str = "input",
    input_type: int = TensorProto.FLOAT,
    input_shape: tuple[int | str, ...] = ("batch", 8, 8),
    output_name: str = "probabilities",
    opset: int = 17,
) -> onnx.ModelProto:
    """A classifier answering ``probabilities`` for every row, whatever the input:
    Flatten → Gemm (zero weights, bias log p) → Softmax. Its signature is set by the
    keywords (the digits models' by default), to build members that agree or differ."""
    features = int(np.prod([d for d in input_shape[1:] if isinstance(d, int)]))
    classes = len(probabilities)
    bias = np.log(np.asarray(probabilities, np.float64)).astype(np.float32)
    nodes = [helper.make_node("Flatten", [input_name], ["flat"], axis=1)]
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["flat"], ["flat_f"], to=TensorProto.FLOAT))
    nodes += [
        helper.make_node("Gemm", ["flat_f" if len(nodes) > 1 else "flat", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output_name], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_classifier",
        [helper.make_tensor_value_info(input_name, input_type, list(input_shape))],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", classes])],
        [
            numpy_helper.from_array(np.zeros((features, classes), np.float32), "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="maas-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def two_heads() -> onnx.ModelProto:
    """Inputs ``a`` and ``b`` (FP32, [-1, 4]); outputs ``sum`` and ``product``."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("Mul", ["a", "b"], ["product"]),
        ],
        "two_heads",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("product", TensorProto.FLOAT, ["batch", 4]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def string_identity() -> onnx.ModelProto:
    """A string model: ``text`` (BYTES, [-1]) comes back unchanged as ``echo`` and as
    ``echo_bytes`` (the name TF Serving's convention always answers in base64)."""
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["text"], ["echo"]),
            helper.make_node("Identity", ["text"], ["echo_bytes"]),
        ],
        "string_identity",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [
            helper.make_tensor_value_info("echo", TensorProto.STRING, ["batch"]),
            helper.make_tensor_value_info("echo_bytes", TensorProto.STRING, ["batch"]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def filled(value: float = 0.0) -> onnx.ModelProto:
    """``dims`` (INT64, [2]) → ``filled`` (FP32, dims[0] x dims[1], every element ``value``):
    a few bytes in, an answer as large as the client asks for."""
    fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [value])
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["dims"], ["filled"], value=fill)],
        "filled",
        [helper.make_tensor_value_info("dims", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("filled", TensorProto.FLOAT, ["rows", "cols"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def with_external_data(model: onnx.ModelProto, directory: Path) -> Path:
    """Save ``model`` with its weights in a side file (what publish must refuse)."""
    path = directory / "external.onnx"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return path


def unloadable(directory: Path) -> Path:
    """Valid protobuf, passes no runtime: an Add whose inputs disagree in type."""
    nodes = [helper.make_node("Add", ["a", "b"], ["c"])]
    graph = helper.make_graph(
        nodes,
        "broken",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = directory / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "model.onnx")
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print(save(digits_mlp(seed), target))
