"""maas convert, end to end: sources → ONNX → variants → validation → gate → moto S3 registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from maas.onnxfile import file_sha256
from maas.registry import Registry, open_registry
from tests.convert.api import quality_gate, tfimport
from tests.convert.conftest import BUCKET, Reference, run_cli
from tests.convert.models import keras_mlp, save_npz
from tests.support.onnx_models import digits_mlp

REPO = Path(__file__).resolve().parents[2]
ALL = "fp32,int8-dynamic,fp16,int8-static"
ROW_KEYS = {
    "precision",
    "sparsity",  # issue 12: 0 for a dense variant
    "size_bytes",
    "gzip_bytes",  # issue 12
    "accuracy",
    "agreement",
    "max_abs_diff",
    "latency_ms_b1",
    "latency_ms_b64",
    "passed",
    "reason",
    "version",
    "alias",
}


@dataclass
class Published:
    """One convert --publish run of the reference model, with what it left in the registry."""

    rows: list[dict[str, Any]]
    manifests: dict[int, dict[str, Any]]
    models: dict[int, Path]
    aliases: dict[str, int]
    history: list[dict[str, Any]]
    source_accuracy: float
    code: int


def _predict_onnx(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


@pytest.fixture(scope="module")
def published(
    reference: Reference, s3_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Published]:
    import boto3
    from moto import mock_aws

    keep = tmp_path_factory.mktemp("published")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        outcome = run_cli(
            "convert",
            reference.model,
            "--name",
            "digits",
            "--eval-data",
            reference.eval_data,
            "--calib-data",
            reference.calib_data,
            "--precision",
            ALL,
            "--publish",
            "--alias",
            "production",
            "--prefer",
            "smallest",
            "--registry",
            f"s3://{BUCKET}",
            "--json",
        )
        assert outcome.err == ""
        registry: Registry = open_registry(f"s3://{BUCKET}")
        versions = registry.list_versions("digits")
        manifests = {v: registry.get_manifest("digits", v) for v in versions}
        models = {}
        for v in versions:
            models[v] = keep / f"{v}.onnx"
            registry.fetch_model("digits", v, models[v])
        aliases = {a: doc["version"] for a, doc in registry.list_aliases("digits").items()}
        history = registry.history("digits")
    keras = tfimport.keras()
    with np.load(reference.eval_data) as ev:
        scores = keras.models.load_model(reference.model, compile=False).predict(ev["x"], verbose=0)
        source_accuracy = float((scores.argmax(1) == ev["y"]).mean())
    yield Published(
        outcome.json(), manifests, models, aliases, history, source_accuracy, outcome.code
    )


def test_reference_model_passes_every_precision(published: Published) -> None:
    assert published.code == 0
    rows = published.rows
    assert [r["precision"] for r in rows] == ["fp32", "int8-dynamic", "fp16", "int8-static"]
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["passed"] is True and row["reason"] is None
        assert row["size_bytes"] > 0 and row["latency_ms_b1"] > 0 and row["latency_ms_b64"] > 0
        assert 0.0 <= row["agreement"] <= 1.0
    by = {r["precision"]: r for r in rows}
    assert by["fp32"]["max_abs_diff"] <= 1e-5
    assert by["fp32"]["agreement"] == 1.0
    assert by["fp32"]["accuracy"] == pytest.approx(published.source_accuracy)
    # The acceptance bar: int8-dynamic within one point of the Keras model.
    assert by["int8-dynamic"]["accuracy"] >= published.source_accuracy - 0.01
    assert by["int8-dynamic"]["size_bytes"] < 0.5 * by["fp32"]["size_bytes"]
    assert by["fp16"]["size_bytes"] < 0.7 * by["fp32"]["size_bytes"]


def test_publishes_fp32_first_then_the_given_order(published: Published) -> None:
    assert sorted(published.manifests) == [1, 2, 3, 4]
    precisions = [published.manifests[v]["precision"] for v in (1, 2, 3, 4)]
    assert precisions == ["fp32", "int8-dynamic", "fp16", "int8-static"]
    assert [r["version"] for r in published.rows] == [1, 2, 3, 4]


def test_alias_points_at_the_smallest_passing_variant(published: Published) -> None:
    smallest = min(published.rows, key=lambda r: r["size_bytes"])
    assert published.aliases == {"production": smallest["version"]}
    assert [(h["alias"], h["to"]) for h in published.history] == [
        ("production", smallest["version"])
    ]
    manifest = published.manifests[smallest["version"]]
    assert manifest["deploy"]["alias"] == "production"
    reports = {r["version"]: r["alias"] for r in published.rows}
    assert reports.pop(smallest["version"]) == {
        "name": "production",
        "status": "moved",
        "reason": f"production -> {smallest['version']}",
    }
    assert set(reports.values()) == {None}


def test_manifests_carry_signature_metrics_and_lineage(
    published: Published, reference: Reference
) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    for version, manifest in published.manifests.items():
        row = next(r for r in published.rows if r["version"] == version)
        assert manifest["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}]
        assert manifest["outputs"] == [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
        ]
        metrics = manifest["metrics"]
        for key in ("size_bytes", "accuracy", "agreement", "max_abs_diff", "latency_ms_b1"):
            assert metrics[key] == row[key]
        assert metrics["source_accuracy"] == pytest.approx(published.source_accuracy)
        assert metrics["eval_data_sha256"] == file_sha256(reference.eval_data)[0]
        if manifest["precision"] == "int8-static":
            assert metrics["calib_data_sha256"] == file_sha256(reference.calib_data)[0]
        assert manifest["labels"] == [str(i) for i in range(10)]
        source = manifest["source"]
        assert source["framework"] == "keras"
        assert source["file_sha256"] == file_sha256(reference.model)[0]
        assert source["converter"].startswith("tf2onnx ")
        assert {"tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"} <= set(source["libraries"])
        lineage = manifest["lineage"]
        assert lineage["training"] == reference.settings
        assert lineage["parent_version"] == (None if version == 1 else 1)
        if head.returncode == 0:  # the tests run inside the checkout
            assert lineage["git_commit"] == head.stdout.strip()


def test_golden_samples_hold_for_each_published_model(published: Published) -> None:
    for version, manifest in published.manifests.items():
        samples = manifest["golden_samples"]
        assert 1 <= len(samples) <= 3
        for sample in samples:
            assert sample["atol"] >= 1e-4
            if manifest["precision"] == "fp32":
                assert sample["atol"] == 1e-4
            tensor = sample["inputs"]["input"]
            feeds = {"input": np.array(tensor["data"], np.float32).reshape(tensor["shape"])}
            expected = sample["outputs"]["probabilities"]
            got = _predict_onnx(published.models[version], feeds)
            assert got.shape == tuple(expected["shape"])
            want = np.array(expected["data"], np.float32).reshape(expected["shape"])
            assert np.abs(got - want).max() <= sample["atol"]


def test_fp16_keeps_fp32_inputs_and_outputs(published: Published) -> None:
    version = next(v for v, m in published.manifests.items() if m["precision"] == "fp16")
    model = onnx.load_model(str(published.models[version]))
    float32 = onnx.TensorProto.FLOAT
    assert [v.type.tensor_type.elem_type for v in model.graph.input] == [float32]
    assert [v.type.tensor_type.elem_type for v in model.graph.output] == [float32]
    weights = [t for t in model.graph.initializer if len(t.dims) == 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)


def test_static_quantization_is_qdq(published: Published) -> None:
    version = next(v for v, m in published.manifests.items() if m["precision"] == "int8-static")
    ops = {n.op_type for n in onnx.load_model(str(published.models[version])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_human_table(reference: Reference) -> None:
    outcome = run_cli(
        "convert", reference.model, "--name", "digits", "--eval-data", reference.eval_data
    )
    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert lines[1].split()[:2] == ["PRECISION", "SIZE"]
    assert lines[2].startswith("fp32") and "passed" in lines[2]
    assert lines[3].startswith("int8-dynamic") and "passed" in lines[3]
    assert any(line.startswith("source accuracy:") for line in lines)


def test_int8_dynamic_is_small_when_weights_dominate(tmp_path: Path) -> None:
    keras_mlp(tmp_path / "wide.keras", input_shape=(64,), hidden=(256, 256))
    outcome = run_cli("convert", tmp_path / "wide.keras", "--name", "wide", "--json")
    assert outcome.code == 0, outcome.err
    rows = {r["precision"]: r for r in outcome.json()}
    assert rows["int8-dynamic"]["size_bytes"] <= 0.35 * rows["fp32"]["size_bytes"]
    # Without --eval-data, parity is checked on generated inputs; accuracy is null.
    assert rows["fp32"]["accuracy"] is None and rows["int8-dynamic"]["accuracy"] is None
    assert rows["fp32"]["max_abs_diff"] <= 1e-5


def test_gate_refuses_what_cannot_meet_the_threshold(tmp_path: Path, s3_registry: str) -> None:
    # Calibration data 100x narrower than the evaluation data: int8-static clips
    # almost every activation, so it cannot stay within a point of the source
    # (whose accuracy is 100%: the labels are its own predictions).
    model = keras_mlp(tmp_path / "m.keras", hidden=(32,), seed=6)
    rng = np.random.default_rng(1)
    x = rng.random((300, 8, 8), dtype=np.float32)
    labels = np.asarray(model.predict(x, verbose=0)).argmax(1).astype(np.int64)
    save_npz(tmp_path / "eval.npz", x=x, y=labels)
    save_npz(tmp_path / "calib.npz", x=0.01 * rng.random((64, 8, 8), dtype=np.float32))
    outcome = run_cli(
        "convert",
        tmp_path / "m.keras",
        "--name",
        "clipped",
        "--eval-data",
        tmp_path / "eval.npz",
        "--calib-data",
        tmp_path / "calib.npz",
        "--precision",
        "int8-static,fp32",
        "--publish",
        "--registry",
        s3_registry,
        "--json",
    )
    assert outcome.code == 2
    fp32, static = outcome.json()  # fp32 first, whatever the order given
    assert fp32["passed"] is True and fp32["accuracy"] == 1.0 and fp32["version"] == 1
    assert static["passed"] is False and static["version"] is None
    assert static["accuracy"] < 0.9
    assert static["reason"] == (
        f"accuracy {static['accuracy']:.2%} is {(1 - static['accuracy']) * 100:.2f} points "
        "below the source's 100.00%; --max-accuracy-drop is 1"
    )
    # The passing variant is still published; the refused one is not.
    registry = open_registry(s3_registry)
    assert registry.list_versions("clipped") == [1]
    assert registry.get_manifest("clipped", 1)["precision"] == "fp32"


def test_gate_threshold_zero_refuses_any_loss(tmp_path: Path) -> None:
    model = keras_mlp(tmp_path / "m.keras", hidden=(32,), seed=3)
    x = np.random.default_rng(1).random((300, 8, 8), dtype=np.float32)
    labels = np.asarray(model.predict(x, verbose=0)).argmax(1).astype(np.int64)
    labels[0] = (labels[0] + 1) % 10  # the source now scores 299/300
    save_npz(tmp_path / "eval.npz", x=x, y=labels)
    outcome = run_cli(
        "convert",
        tmp_path / "m.keras",
        "--name",
        "m",
        "--eval-data",
        tmp_path / "eval.npz",
        "--precision",
        "fp32",
        "--max-accuracy-drop",
        "0",
        "--json",
    )
    # fp32 matches the source exactly, so even a zero drop passes.
    assert outcome.code == 0, outcome.err
    assert outcome.json()[0]["accuracy"] == pytest.approx(299 / 300)


def test_savedmodel_source_converts_with_parity(tmp_path: Path) -> None:
    model = keras_mlp(tmp_path / "m.keras", hidden=(16,))
    model.export(str(tmp_path / "saved"), verbose=False)
    outcome = run_cli(
        "convert",
        tmp_path / "saved",
        "--name",
        "saved",
        "--precision",
        "fp32",
        "--out",
        tmp_path / "out",
        "--json",
    )
    assert outcome.code == 0, outcome.err
    (row,) = outcome.json()
    assert row["passed"] and row["max_abs_diff"] <= 1e-5
    converted = onnx.load_model(str(tmp_path / "out" / "saved-fp32.onnx"))
    assert [v.name for v in converted.graph.input] == ["input"]
    assert converted.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.default_rng(0).random((5, 8, 8), dtype=np.float32)
    got = _predict_onnx(tmp_path / "out" / "saved-fp32.onnx", {"input": x})
    assert np.abs(got - np.asarray(model.predict(x, verbose=0))).max() <= 1e-5


def test_tflite_source_converts_with_parity(tmp_path: Path) -> None:
    tf = tfimport.tensorflow()
    model = keras_mlp(tmp_path / "m.keras", hidden=(16,))
    model.export(str(tmp_path / "saved"), verbose=False)
    flat = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    (tmp_path / "m.tflite").write_bytes(flat)
    x = np.random.default_rng(0).random((70, 8, 8), dtype=np.float32)
    save_npz(tmp_path / "eval.npz", x=x)
    outcome = run_cli(
        "convert",
        tmp_path / "m.tflite",
        "--name",
        "lite",
        "--precision",
        "fp32,int8-dynamic",
        "--eval-data",
        tmp_path / "eval.npz",
        "--out",
        tmp_path / "out",
        "--json",
    )
    assert outcome.code == 0, outcome.err
    fp32 = outcome.json()[0]
    assert fp32["passed"] and fp32["max_abs_diff"] <= 1e-5 and fp32["accuracy"] is None
    converted = tmp_path / "out" / "lite-fp32.onnx"
    session = ort.InferenceSession(str(converted), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    assert ":" not in name  # sanitized tflite tensor name
    got = np.asarray(session.run(None, {name: x})[0])
    assert np.abs(got - np.asarray(model.predict(x, verbose=0))).max() <= 1e-5


def test_fixed_batch_tflite_is_refused_clearly(tmp_path: Path) -> None:
    tf = tfimport.tensorflow()
    model = keras_mlp(tmp_path / "m.keras", hidden=(16,))
    model.export(
        str(tmp_path / "saved"),
        verbose=False,
        input_signature=[tf.TensorSpec([1, 8, 8], tf.float32, name="input")],
    )
    flat = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    (tmp_path / "one.tflite").write_bytes(flat)
    outcome = run_cli("convert", tmp_path / "one.tflite", "--name", "one", "--precision", "fp32")
    assert outcome.code == 2 and outcome.err.count("\n") == 1
    assert "maas needs a dynamic batch dimension" in outcome.err


def test_tflite_conversion_keeps_the_real_stderr_empty(tmp_path: Path) -> None:
    """tf2onnx builds a tf.lite.Interpreter whose C++ side prints to fd 2."""
    tf = tfimport.tensorflow()
    model = keras_mlp(tmp_path / "m.keras", hidden=(16,))
    model.export(str(tmp_path / "saved"), verbose=False)
    flat = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    (tmp_path / "m.tflite").write_bytes(flat)
    script = (
        "import sys\nfrom tests.convert.conftest import run_cli\n"
        "o = run_cli(*sys.argv[1:])\n"
        "sys.stdout.write(o.out); sys.stderr.write(o.err); sys.exit(o.code)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "convert",
            str(tmp_path / "m.tflite"),
            "--name",
            "lite",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert [r["precision"] for r in json.loads(done.stdout)] == ["fp32", "int8-dynamic"]


def test_onnx_source_goes_through_the_same_validation(tmp_path: Path) -> None:
    path = tmp_path / "digits.onnx"
    onnx.save_model(digits_mlp(), str(path))
    outcome = run_cli("convert", path, "--name", "plain", "--precision", "fp32,fp16", "--json")
    assert outcome.code == 0, outcome.err
    fp32, fp16 = outcome.json()
    assert fp32["max_abs_diff"] <= 1e-6 and fp16["max_abs_diff"] < 1e-2
    assert fp32["agreement"] == 1.0


def test_gate_unit_fp32_parity_and_derived_variants(tmp_path: Path) -> None:
    def row(precision: str, diff: float, acc: float | None = 0.9) -> Any:
        return quality_gate.Row(precision, tmp_path, 1, acc, 1.0, diff, 0.1, 0.2)

    fp32 = quality_gate.gate(row("fp32", 3e-4), 0.9, 1.0)
    assert not fp32.passed and fp32.reason is not None
    assert "max abs diff 0.0003" in fp32.reason and "limit 0.0001" in fp32.reason
    derived = quality_gate.gate(row("int8-dynamic", 1e-2), 0.9, 1.0, fp32)
    assert not derived.passed and "fp32 conversion" in str(derived.reason)
    ok = quality_gate.gate(row("fp32", 1e-6), 0.9, 1.0)
    assert ok.passed
    # Exactly at the threshold passes; just over fails.
    assert quality_gate.gate(row("int8-dynamic", 1e-2, 0.89), 0.9, 1.0, ok).passed
    assert not quality_gate.gate(row("int8-dynamic", 1e-2, 0.8889), 0.9, 1.0, ok).passed
    # Without labels, no accuracy gate applies.
    assert quality_gate.gate(row("fp16", 1e-2, None), None, 0.0, ok).passed


def test_preferred_variant() -> None:
    def row(precision: str, size: int, acc: float, b1: float) -> quality_gate.Row:
        return quality_gate.Row(precision, Path(precision), size, acc, 1.0, 0.0, b1, b1 * 2)

    fp32, small, fast = (
        row("fp32", 400, 0.97, 0.3),
        row("int8-dynamic", 100, 0.96, 0.2),
        row("fp16", 200, 0.975, 0.1),
    )
    rows = [fp32, small, fast]
    assert quality_gate.preferred(rows, "smallest") is small
    assert quality_gate.preferred(rows, "accurate") is fast
    assert quality_gate.preferred(rows, "fastest") is fast
    small.refuse("no")
    assert quality_gate.preferred(rows, "smallest") is fast


def test_balanced_is_the_smallest_variant_not_much_slower_than_the_fastest() -> None:
    def row(precision: str, size: int, b64: float) -> quality_gate.Row:
        return quality_gate.Row(precision, Path(precision), size, 0.97, 1.0, 0.0, b64 / 10, b64)

    # The small CNN: int8-dynamic is smallest but 9x slower at batch 64.
    fp32, fp16, int8 = row("fp32", 400, 0.72), row("fp16", 200, 0.95), row("int8-dynamic", 100, 6.7)
    assert quality_gate.preferred([fp32, fp16, int8], "smallest") is int8
    assert quality_gate.preferred([fp32, fp16, int8], "balanced") is fp32  # 0.95 > 1.25 x 0.72
    fp16.latency_ms_b64 = 0.88  # within 1.25x the fastest: balanced takes the smaller
    assert quality_gate.preferred([fp32, fp16, int8], "balanced") is fp16
    table = quality_gate.report_table([fp32, fp16, int8], 0.97, fp16)
    marked = [line for line in table.splitlines() if line.startswith("* ") and "passed" in line]
    assert len(marked) == 1 and marked[0].startswith("* fp16")
    assert "P50 B1 / P50 B64: median onnxruntime latency" in table
    assert "* the variant the alias points at (fp16)" in table
