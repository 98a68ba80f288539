"""Drift on real models: reference statistics recorded at publish, PSI through `maas drift`
and through the served path (EMF on stdout, also from `maas serve --log-format json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from maas.cli import main
from maas.config import ServingConfig
from maas.drift.reference import EPSILON, build_reference, feature_matrix, psi
from maas.lambda_entry import InferenceHandler, inference_handler
from maas.registry import open_registry
from tests.support.ensembles import v2_body
from tests.support.serving import call


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return x_train, x_test, y_train, y_test


def classifier(x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """A trained digits classifier as ONNX: logistic regression, Flatten → Gemm → Softmax."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(max_iter=500).fit(x.reshape(len(x), -1), y)
    w = numpy_helper.from_array(fitted.coef_.T.astype(np.float32), "w")
    b = numpy_helper.from_array(fitted.intercept_.astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "digits_logistic",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, 8, 8])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 10])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("drift")
    x_train, x_test, y_train, y_test = digits_split()
    model = classifier(x_train, y_train, root / "digits.onnx")
    np.savez(root / "train.npz", x=x_train, y=y_train)
    np.savez(root / "test.npz", x=x_test, y=y_test)
    np.savez(root / "shifted.npz", x=(x_test * 0.5 + 0.3).astype(np.float32))
    low = x_test[y_test <= 4]
    np.savez(root / "low.npz", x=low)
    registry = root / "reg"
    argv = ["publish", str(model), "--name", "digits", "--alias", "production"]
    assert (
        main([*argv, "--reference-data", str(root / "train.npz"), "--registry", str(registry)]) == 0
    )
    return {"root": root, "registry": registry, "x_test": x_test, "model": model}


def drift(
    capsys: pytest.CaptureFixture[str], world: dict[str, Any], data: str, *extra: str
) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(
        [
            "drift",
            "digits@production",
            "--data",
            str(world["root"] / data),
            "--registry",
            str(world["registry"]),
            "--json",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return code, json.loads(out) if out else None


def test_the_reference_is_small_and_handles_constant_features(world: dict[str, Any]) -> None:
    manifest = open_registry(str(world["registry"])).get_manifest("digits", 1)
    reference = manifest["monitoring"]["reference"]
    assert len(json.dumps(reference)) <= 16 * 1024
    assert reference["epsilon"] == EPSILON and reference["rows"] == 1347
    edges = reference["features"]["edges"]
    assert len(edges) == 64 and all(len(e) <= 9 and e == sorted(set(e)) for e in edges)
    assert any(len(e) == 0 for e in edges)  # constant pixels: one bin, never drifting
    assert len(reference["prediction"]["proportions"]) == 10


def test_maas_drift_scores_the_test_split_stable_and_a_shift_drifted(
    capsys: pytest.CaptureFixture[str], world: dict[str, Any]
) -> None:
    code, stable = drift(capsys, world, "test.npz")
    assert code == 0 and stable["psi_max"] < 0.1
    assert set(stable) == {
        "model",
        "version",
        "rows",
        "psi_max",
        "psi_mean",
        "drifted_features",
        "prediction_psi",
        "features",
    }
    assert len(stable["features"]) == 64
    psis = [f["psi"] for f in stable["features"]]
    assert psis == sorted(psis, reverse=True)
    code, shifted = drift(capsys, world, "shifted.npz", "--fail-above", "0.25")
    assert code == 6 and shifted["psi_max"] > 0.25 and shifted["drifted_features"] > 30
    code, low = drift(capsys, world, "low.npz")
    assert code == 0 and low["prediction_psi"] > 0.1


def test_maas_drift_exit_codes(
    capsys: pytest.CaptureFixture[str], world: dict[str, Any], tmp_path: Path
) -> None:
    np.savez(tmp_path / "wrong.npz", x=np.zeros((5, 4, 4), np.float32))
    code = main(
        [
            "drift",
            "digits",
            "--data",
            str(tmp_path / "wrong.npz"),
            "--registry",
            str(world["registry"]),
        ]
    )
    assert code == 2 and "has shape [5, 4, 4]" in capsys.readouterr().err
    assert (
        main(
            ["publish", str(world["model"]), "--name", "bare", "--registry", str(world["registry"])]
        )
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "drift",
            "bare:1",
            "--data",
            str(world["root"] / "test.npz"),
            "--registry",
            str(world["registry"]),
        ]
    )
    assert code == 4 and "has no reference statistics" in capsys.readouterr().err


def test_the_served_path_emits_drift_every_window(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ServingConfig(
        registry_url=str(world["registry"]), cache_dir=tmp_path / "c", drift_window=500
    )
    handler = inference_handler(config)
    assert isinstance(handler, InferenceHandler)
    shifted = (world["x_test"] * 0.5 + 0.3).astype(np.float32)
    capsys.readouterr()
    for start in range(0, 450, 50):  # 450 rows: no window yet
        rows = shifted[start : start + 50]
        body = v2_body(rows)
        assert call(handler, "POST", "/v2/models/digits/infer", body).status == 200
    assert "DriftPSI" not in capsys.readouterr().out
    rows = shifted[:60]
    body = v2_body(rows)
    assert call(handler, "POST", "/v2/models/digits/infer", body).status == 200
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "DriftPSI" in line
    ]
    assert len(records) == 1
    (record,) = records
    assert record["model"] == "digits" and record["version"] == "1"
    # EMF values are lists (Powertools' format).
    assert record["DriftPSI"][0] > 0.25 and record["DriftedFeatures"][0] > 30
    assert "PredictionDriftPSI" in record and "DriftPSIMean" in record
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["model", "version"]]


def test_drift_off_emits_nothing(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ServingConfig(
        registry_url=str(world["registry"]), cache_dir=tmp_path / "c", drift=False, drift_window=10
    )
    handler = inference_handler(config)
    assert isinstance(handler, InferenceHandler)
    rows = world["x_test"][:50]
    body = v2_body(rows)
    capsys.readouterr()
    assert call(handler, "POST", "/v2/models/digits/infer", body).status == 200
    assert "DriftPSI" not in capsys.readouterr().out


def test_maas_serve_log_format_json_prints_the_drift_record(
    world: dict[str, Any], tmp_path: Path
) -> None:
    import subprocess
    import sys
    import time
    import urllib.request

    out = tmp_path / "out.txt"
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "maas.cli",
                "serve",
                "--port",
                "0",
                "--json",
                "--log-format",
                "json",
                "--registry",
                str(world["registry"]),
            ],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            env={
                **__import__("os").environ,
                "MAAS_DRIFT_WINDOW": "200",
                "MAAS_CACHE_DIR": str(tmp_path / "c"),
            },
        )
        try:
            deadline = time.monotonic() + 60
            while not out.read_text().strip():
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            url = json.loads(out.read_text().splitlines()[0])["url"]
            rows = (world["x_test"][:250] * 0.5 + 0.3).astype(np.float32)
            body = json.dumps(v2_body(rows)).encode()
            with urllib.request.urlopen(
                urllib.request.Request(f"{url}/v2/models/digits/infer", data=body), timeout=30
            ) as reply:
                assert reply.status == 200
            deadline = time.monotonic() + 10
            while "DriftPSI" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(timeout=10)
    records = [json.loads(line) for line in out.read_text().splitlines() if "DriftPSI" in line]
    assert records and records[0]["DriftPSI"][0] > 0.25


def test_a_wide_image_input_keeps_the_reference_under_64_kb() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((300, 32, 32, 3), dtype=np.float32)
    features = feature_matrix({"image": images}, [{"name": "image", "datatype": "FP32"}])
    assert features is not None and features.shape[1] == 3072
    reference = build_reference(features, None, None)
    assert len(json.dumps(reference)) < 64 * 1024
    assert len(reference["summary"]["indices"]) == 256 and reference["prediction"] is None


def test_psi_is_zero_for_equal_distributions_and_clips_empty_bins() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(
        2 * (1 - EPSILON) * np.log(1 / EPSILON)
    )


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        ("npy", "is not an .npz archive"),
        ("nan", "holds NaN or infinite values"),
        ("empty", "holds no rows"),
    ],
)
def test_bad_reference_data_is_exit_2_and_publishes_nothing(
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    mentions: str,
) -> None:
    path = tmp_path / "ref.npz"
    x = world["x_test"][:20].copy()
    if content == "npy":
        path = tmp_path / "ref.npy"
        np.save(path, x)
    elif content == "nan":
        x[3, 2, 2] = np.nan
        np.savez(path, x=x)
    else:
        np.savez(path, x=x[:0])
    registry = tmp_path / "reg"
    argv = ["publish", str(world["model"]), "--name", "d", "--reference-data", str(path)]
    assert main([*argv, "--registry", str(registry)]) == 2
    err = capsys.readouterr().err
    assert mentions in err and err.count("\n") == 1
    assert not (registry / "models" / "d").exists()


def test_rows_of_another_width_are_not_counted(world: dict[str, Any]) -> None:
    from maas.drift.monitor import DriftMonitor

    manifest = open_registry(str(world["registry"])).get_manifest("digits", 1)
    emitted: list[Any] = []
    monitor = DriftMonitor(10, lambda *scores: emitted.append(scores))
    manifest = {**manifest, "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, -1]}]}
    monitor.observe("digits", 1, manifest, {"input": np.zeros((50, 3), np.float32)}, [])
    assert emitted == []
    monitor.observe("digits", 1, manifest, {"input": np.zeros((50, 64), np.float32)}, [])
    assert len(emitted) == 1
