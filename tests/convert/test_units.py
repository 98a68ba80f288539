"""The small pieces: names, precisions, data binding, renaming, the report, progress."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from maas.errors import InvalidInput
from tests.convert.api import data, pipeline, progress, quality_gate, sources, tfimport, to_onnx
from tests.convert.conftest import run_cli
from tests.convert.models import keras_mlp, save_npz

F32 = np.dtype(np.float32)


def spec(name: str, *shape: int | None, dtype: np.dtype[np.generic] = F32) -> sources.IOSpec:
    return sources.IOSpec(name, (None, *shape), dtype, name)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("input", "input"),
        ("serving_default_input:0", "serving_default_input"),
        ("StatefulPartitionedCall_1:0", "StatefulPartitionedCall_1"),
        ("model/dense 1:1", "model_dense_1_1"),
        (":::", "fallback"),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sources.sanitize(raw, "fallback") == clean


def test_unique_names() -> None:
    assert sources.unique(["a", "a", "b", "a"]) == ["a", "a_2", "b", "a_3"]


def test_parse_precisions() -> None:
    assert pipeline.parse_precisions("int8-static, FP32,fp32") == ["int8-static", "fp32"]
    assert pipeline.publish_order(["int8-static", "fp16", "fp32"]) == [
        "fp32",
        "int8-static",
        "fp16",
    ]
    with pytest.raises(InvalidInput, match="unknown precision 'fp8'"):
        pipeline.parse_precisions("fp32,fp8")


def test_bind_single_input_accepts_x_or_its_name() -> None:
    inputs = [spec("input", 8, 8)]
    x = np.zeros((3, 8, 8), np.float64)
    for key in ("x", "input"):
        bound = data.bind({key: x, "y": np.array([1, 2, 3])}, inputs, "test")
        assert bound.feeds["input"].dtype == np.float32 and len(bound) == 3
        assert bound.labels is not None and bound.labels.dtype == np.int64


def test_bind_multi_input_by_name_and_checks_lengths() -> None:
    inputs = [spec("a", 4), spec("b", 2)]
    bound = data.bind(
        {"a": np.zeros((2, 4), np.float32), "b": np.ones((2, 2), np.float32)}, inputs, "test"
    )
    assert set(bound.feeds) == {"a", "b"} and bound.labels is None
    with pytest.raises(InvalidInput, match="different lengths"):
        data.bind(
            {"a": np.zeros((2, 4), np.float32), "b": np.ones((3, 2), np.float32)}, inputs, "test"
        )
    with pytest.raises(InvalidInput, match="no array 'b'"):
        data.bind(
            {"a": np.zeros((2, 4), np.float32), "x": np.ones((2, 2), np.float32)}, inputs, "test"
        )
    with pytest.raises(InvalidInput, match="holds no samples"):
        data.bind(
            {"a": np.zeros((0, 4), np.float32), "b": np.ones((0, 2), np.float32)}, inputs, "test"
        )


def test_generated_inputs_are_deterministic() -> None:
    inputs = [spec("input", 8, None), spec("ids", 3, dtype=np.dtype(np.int64))]
    one, two = data.generated(inputs), data.generated(inputs)
    assert one.generated and len(one) == data.GENERATED_SAMPLES
    assert one.feeds["input"].shape == (64, 8, 1)
    assert np.array_equal(one.feeds["input"], two.feeds["input"])
    assert one.feeds["ids"].dtype == np.int64


def test_rename_and_dynamic_batch(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["in:0"], ["mid"]), helper.make_node("Neg", ["mid"], ["out:0"])],
        "g",
        [helper.make_tensor_value_info("in:0", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("out:0", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    to_onnx.rename(model, {"in:0": "x", "out:0": "y"})
    source = sources.Source(tmp_path, "onnx", None, [], [], "0" * 64, lambda f: f)
    to_onnx.finalize(model, source)
    assert [v.name for v in model.graph.input] == ["x"]
    assert [v.name for v in model.graph.output] == ["y"]
    assert list(model.graph.node[0].input) == ["x"] and list(model.graph.node[1].output) == ["y"]
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    onnx.checker.check_model(model)


def test_report_table_names_refusals(tmp_path: Path) -> None:
    rows = [
        quality_gate.Row("fp32", tmp_path, 40_000, 0.975, 1.0, 3e-7, 0.01, 0.05, version=1),
        quality_gate.Row("int8-static", tmp_path, 16_000, 0.95, 0.97, 2e-2, 0.01, 0.04),
    ]
    quality_gate.gate(rows[1], 0.975, 1.0)
    text = quality_gate.report_table(rows, 0.975)
    lines = text.splitlines()
    assert lines[1].startswith("fp32") and "passed" in lines[1] and lines[1].endswith(" 1")
    assert lines[2].startswith("int8-static") and "REFUSED" in lines[2]
    assert lines[-1].startswith("int8-static refused: accuracy 95.00% is 2.50 points below")
    assert set(rows[0].as_json()) == set(quality_gate.ROW_KEYS)


def test_reporter_shows_steps_only_when_enabled() -> None:
    Reporter = progress.Reporter
    stream = io.StringIO()
    with Reporter(True, stream).step("converting"):
        pass
    with Reporter(True, stream).bar(3, "calibrating") as update:
        assert update is not None
        update(3)
    assert stream.getvalue().startswith("converting… done in")
    quiet = io.StringIO()
    with Reporter(False, quiet).step("x"), Reporter(False, quiet).bar(1, "y") as none:
        assert none is None
    assert quiet.getvalue() == ""
    assert not Reporter.for_cli(json_output=True).enabled


def test_multi_input_multi_output_onnx_source(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("Mul", ["a", "b"], ["product"]),
        ],
        "two_heads",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in "ab"],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4])
            for n in ("sum", "product")
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(tmp_path / "heads.onnx"))
    rng = np.random.default_rng(0)
    save_npz(
        tmp_path / "eval.npz",
        a=rng.random((10, 4), dtype=np.float32),
        b=rng.random((10, 4), dtype=np.float32),
    )
    outcome = run_cli(
        "convert",
        tmp_path / "heads.onnx",
        "--name",
        "heads",
        "--eval-data",
        tmp_path / "eval.npz",
        "--precision",
        "fp32,fp16",
        "--json",
    )
    assert outcome.code == 0, outcome.err
    fp32, fp16 = outcome.json()
    assert fp32["max_abs_diff"] == 0.0 and fp32["accuracy"] is None
    assert fp16["max_abs_diff"] < 1e-2 and fp16["passed"]


def test_keras_model_with_several_named_outputs(tmp_path: Path) -> None:
    keras = tfimport.keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(6,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inp)
    model = keras.Model(
        inp,
        {
            "digit": keras.layers.Dense(3, activation="softmax", name="digit")(hidden),
            "score": keras.layers.Dense(1, name="score")(hidden),
        },
    )
    model.save(tmp_path / "two.keras")
    outcome = run_cli(
        "convert",
        tmp_path / "two.keras",
        "--name",
        "two",
        "--precision",
        "fp32",
        "--out",
        tmp_path / "out",
        "--json",
    )
    assert outcome.code == 0, outcome.err
    assert outcome.json()[0]["max_abs_diff"] <= 1e-5
    converted = onnx.load_model(str(tmp_path / "out" / "two-fp32.onnx"))
    assert [v.name for v in converted.graph.input] == ["features"]
    assert sorted(v.name for v in converted.graph.output) == ["digit", "score"]
    x = np.random.default_rng(1).random((4, 6), dtype=np.float32)
    session = ort.InferenceSession(
        str(tmp_path / "out" / "two-fp32.onnx"), providers=["CPUExecutionProvider"]
    )
    got = dict(
        zip(
            [o.name for o in session.get_outputs()], session.run(None, {"features": x}), strict=True
        )
    )
    expected = model(x, training=False)
    for name in ("digit", "score"):
        assert np.abs(got[name] - np.asarray(expected[name])).max() <= 1e-5


def test_pipeline_reports_progress_of_the_long_steps(tmp_path: Path) -> None:
    keras_mlp(tmp_path / "m.keras", hidden=(8,))
    save_npz(
        tmp_path / "calib.npz", x=np.random.default_rng(0).random((40, 8, 8), dtype=np.float32)
    )
    stream = io.StringIO()
    options = pipeline.ConvertOptions(
        source=tmp_path / "m.keras",
        name="m",
        precisions=["fp32", "int8-static"],
        calib_data=tmp_path / "calib.npz",
        publish=True,
        alias="production",
        prefer="smallest",
        registry=str(tmp_path / "registry"),
        out=tmp_path / "out",
    )
    result = pipeline.convert_model(options, progress.Reporter(True, stream))
    shown = stream.getvalue()
    for step in (
        "loading",
        "converting with tf2onnx",
        "optimizing",
        "calibrating int8-static",
        "validating fp32",
        "validating int8-static",
        "uploading fp32",
        "uploading int8-static",
    ):
        assert step in shown, step
    assert result.exit_code == 0 and result.published == [1, 2]
    smallest = min(result.rows, key=lambda r: r.size_bytes)
    assert result.alias_version == smallest.version
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "m-fp32.onnx",
        "m-int8-static.onnx",
    ]
