"""Small models built inside the tests, in well under a second each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.convert.api import tfimport


def keras_mlp(
    path: Path,
    *,
    input_shape: tuple[int, ...] = (8, 8),
    hidden: tuple[int, ...] = (32,),
    classes: int = 10,
    seed: int = 0,
    weight_scale: float | None = None,
    input_name: str = "input",
    output_name: str = "probabilities",
) -> Any:
    """An untrained Flatten → Dense… → softmax model, saved to ``path`` (.keras)."""
    keras = tfimport.keras()
    keras.utils.set_random_seed(seed)

    def init() -> Any:
        if weight_scale is None:
            return "glorot_uniform"
        return keras.initializers.RandomNormal(stddev=weight_scale, seed=seed)

    layers = [keras.Input(shape=input_shape, name=input_name), keras.layers.Flatten()]
    layers += [keras.layers.Dense(h, activation="relu", kernel_initializer=init()) for h in hidden]
    layers.append(
        keras.layers.Dense(
            classes, activation="softmax", name=output_name, kernel_initializer=init()
        )
    )
    model = keras.Sequential(layers)
    model.save(path)
    return model


def save_npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def onnx_without_inputs(path: Path) -> Path:
    """A valid ONNX model whose output is a constant: it has no inputs at all."""
    value = numpy_helper.from_array(np.ones((1, 10), np.float32), "value")
    node = helper.make_node("Constant", [], ["probabilities"], value=value)
    graph = helper.make_graph(
        [node],
        "no_inputs",
        [],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path
