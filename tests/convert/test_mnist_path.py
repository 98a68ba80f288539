"""The seed's own example, unchanged: MNIST in Keras' format → the exact reference model
→ `maas convert`. A small synthetic mnist.npz stands in; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.convert.api import tfimport
from tests.convert.conftest import run_cli


def test_train_example_on_mnist_then_convert(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist.npz"
    np.savez(
        data,
        x_train=rng.integers(0, 256, (120, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 120, dtype=np.uint8),
        x_test=rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 40, dtype=np.uint8),
    )
    out = tmp_path / "mnist"
    trained = run_cli(
        "train-example", "--dataset", "mnist", "--data", data, "--epochs", "5", "--out", out
    )
    assert trained.code == 0, trained.err
    keras = tfimport.keras()
    model = keras.models.load_model(out / "model.keras")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert model.input_shape == (None, 28, 28)
    assert model.layers[1].units == 128 and model.layers[1].activation.__name__ == "relu"
    assert model.layers[2].rate == 0.2
    assert model.layers[3].units == 10 and model.layers[3].activation.__name__ == "softmax"
    assert type(model.optimizer).__name__ == "Adam"
    assert (out / "train.npz").is_file()

    converted = run_cli(
        "convert",
        out / "model.keras",
        "--name",
        "mnist",
        "--eval-data",
        out / "eval.npz",
        "--precision",
        "fp32,int8-dynamic",
        "--min-agreement",
        "0",
        "--max-accuracy-drop",
        "100",
        "--json",
    )
    assert converted.code == 0, converted.err
    fp32, int8 = converted.json()
    assert fp32["passed"] and fp32["max_abs_diff"] <= 1e-4 and int8["passed"]
