"""`maas convert` records drift reference statistics from --train-data, else --eval-data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from maas.onnxfile import file_sha256
from maas.registry import open_registry
from tests.convert.conftest import run_cli
from tests.support.onnx_models import digits_mlp


def test_the_reference_comes_from_train_data_else_eval_data(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    np.savez(tmp_path / "eval.npz", x=x[:300], y=digits.target[:300])
    np.savez(tmp_path / "train.npz", x=x[300:1300], y=digits.target[300:1300])
    model = tmp_path / "digits.onnx"
    onnx.save_model(digits_mlp(), str(model))
    registry = tmp_path / "reg"
    common: list[str | Path] = ["convert", model, "--name", "d", "--precision", "fp32", "--publish"]
    common += ["--eval-data", tmp_path / "eval.npz", "--registry", registry, "--json"]
    assert run_cli(*common).code == 0
    assert run_cli(*common, "--train-data", tmp_path / "train.npz").code == 0
    assert (
        run_cli(
            "convert",
            model,
            "--name",
            "d",
            "--precision",
            "fp32",
            "--publish",
            "--registry",
            registry,
            "--json",
        ).code
        == 0
    )
    opened = open_registry(str(registry))
    from_eval = opened.get_manifest("d", 1)["monitoring"]["reference"]
    from_train = opened.get_manifest("d", 2)["monitoring"]["reference"]
    assert from_eval["rows"] == 300 and from_train["rows"] == 1000
    assert from_eval["data_sha256"] == file_sha256(tmp_path / "eval.npz")[0]
    assert from_train["data_sha256"] == file_sha256(tmp_path / "train.npz")[0]
    assert len(from_train["features"]["edges"]) == 64
    assert len(from_train["prediction"]["proportions"]) == 10
    assert "monitoring" not in opened.get_manifest("d", 3)  # generated inputs: no reference


def test_renamed_inputs_and_outputs_keep_the_reference(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "eval.npz", x=(digits.images[:200] / 16.0).astype(np.float32))
    model = tmp_path / "digits.onnx"
    onnx.save_model(digits_mlp(), str(model))
    registry = tmp_path / "reg"
    outcome = run_cli(
        "convert", model, "--name", "d", "--precision", "fp32", "--publish",
        "--eval-data", tmp_path / "eval.npz", "--input-names", "pixels",
        "--output-names", "probs", "--registry", registry, "--json",
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    manifest = open_registry(str(registry)).get_manifest("d", 1)
    assert manifest["inputs"][0]["name"] == "pixels"
    reference = manifest["monitoring"]["reference"]
    assert reference["rows"] == 200 and reference["prediction"] is not None
