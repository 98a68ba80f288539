"""Verification as strict as serving, and bounded: the defects of issue 10, end to end.

Each test here failed on the code before the bounded verification: the memory
bomb and the endless loop deployed, parsing ten million empty nodes took the
caller to 3.5 GB, the cache could not know a model's real footprint, the smoke
test choked on a scalar BOOL, and a run had no deadline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import onnx
import pytest
from onnx import TensorProto, helper

from maas import model_sandbox
from maas.cli import main
from maas.config import ServingConfig, VerifyLimits
from maas.datatypes import ORT_TO_V2
from maas.errors import ModelRefused
from maas.lambda_entry import inference_handler
from maas.local_server import LocalContext, build_event, response_body
from maas.model_checks import smoke_check, verify_model, vet_upload
from maas.onnxfile import OnnxInfo, TensorSpec, file_sha256, inspect_onnx
from maas.promotion import release
from maas.registry import Registry
from maas.serving.runtime import estimate_footprint
from maas.store import LocalStore, S3Store
from maas.upload_events import Deployer
from tests.support import hostile_models, onnx_models
from tests.support.hostile_models import CALLER_GROWTH_BOUND, PEAK_BOUND, WALL_BOUND, caller_rss

PRODUCTION = {"alias": "production", "canary_weight": None}
ONE_FLOAT = [TensorSpec("x", "FP32", [1])], [TensorSpec("y", "FP32", [1])]


@pytest.fixture
def s3_registry(s3_bucket: str) -> Registry:
    return Registry(S3Store(s3_bucket, client=boto3.client("s3")), actor="pytest")


def plant(registry: Registry, path: Path, deploy: dict[str, Any] | None = None) -> int:
    """Commit a version directly, as an uploader bypassing publish could."""
    sha256, size = file_sha256(path)
    inputs, outputs = ONE_FLOAT
    info = OnnxInfo(sha256, size, 17, inputs, outputs)
    version = registry._claim_version("hostile")
    registry.store.upload_file(Registry.model_key("hostile", version), path, None)
    details = {"deploy": deploy} if deploy else None
    registry.commit_manifest(registry.build_manifest("hostile", version, info, details))
    return version


def deployment(registry: Registry, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(registry.store.get(key).data)
    return document


# ------------------------------------------------------ the memory bomb


def publish_with_the_cli(path: Path, registry: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`maas publish PATH --alias production`: it must refuse, in bounded time, writing
    nothing; the error it printed."""
    started = time.perf_counter()
    flags = ["--name", "hostile", "--alias", "production", "--registry", str(registry)]
    code = main(["publish", str(path), *flags])
    assert time.perf_counter() - started < WALL_BOUND
    assert code == 2
    assert Registry(LocalStore(registry)).list_versions("hostile") == []
    return capsys.readouterr().err


def test_publish_refuses_the_memory_bomb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bomb.onnx"
    hostile_models.memory_bomb(path)
    assert path.stat().st_size < 512
    error = publish_with_the_cli(path, tmp_path / "registry", capsys)
    assert "exceeded the 1024 MB verification memory limit" in error


def test_the_deployer_refuses_the_memory_bomb(s3_registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "bomb.onnx"
    hostile_models.memory_bomb(path)
    version = plant(s3_registry, path, PRODUCTION)
    deployer = Deployer(s3_registry)
    key = f"models/hostile/versions/{version}/manifest.json"
    outcome = deployer.on_object(s3_registry.store.bucket, key)  # type: ignore[attr-defined]
    assert outcome.status == "failed" and "memory limit" in outcome.reason, outcome
    saved = deployment(s3_registry, f"models/hostile/deployments/{version}.json")
    assert saved["status"] == "failed" and "MAAS_VERIFY_MEMORY_MB" in saved["reason"]
    assert s3_registry.read_alias("hostile", "production") is None


# ------------------------------------------------------ the endless loop


def test_publish_refuses_the_endless_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAAS_VERIFY_TIMEOUT_S", "3")
    path = tmp_path / "loop.onnx"
    hostile_models.endless_loop(path)
    error = publish_with_the_cli(path, tmp_path / "registry", capsys)
    assert "did not finish within 3 s (MAAS_VERIFY_TIMEOUT_S)" in error


def test_a_raw_upload_of_the_endless_loop_is_refused_in_bounded_time(
    s3_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the smoke test ran it to the deployer's 300 s timeout, three times."""
    monkeypatch.setenv("MAAS_VERIFY_TIMEOUT_S", "3")
    path = tmp_path / "loop.onnx"
    hostile_models.endless_loop(path)
    bucket = s3_registry.store.bucket  # type: ignore[attr-defined]
    boto3.client("s3").upload_file(str(path), bucket, "incoming/hostile/loop.onnx")
    started = time.perf_counter()
    outcome = Deployer(s3_registry).on_object(bucket, "incoming/hostile/loop.onnx")
    assert time.perf_counter() - started < WALL_BOUND
    assert outcome.status == "failed" and "did not finish within 3 s" in outcome.reason
    assert s3_registry.list_versions("hostile") == []


# --------------------------------------------------- parse amplification


def test_ten_million_empty_nodes_never_reach_the_parser(tmp_path: Path) -> None:
    """Before: onnx.load and the checker took the caller to 3.5 GB before refusing."""
    path = tmp_path / "nodes.onnx"
    hostile_models.ten_million_empty_nodes(path)
    rss_before = caller_rss()
    with pytest.raises(ModelRefused, match=r"more than 100000 nodes \(MAAS_MAX_NODES\)") as err:
        inspect_onnx(path)
    assert caller_rss() - rss_before < CALLER_GROWTH_BOUND
    assert err.value.resources is not None
    assert err.value.resources["peak_rss_bytes"] < 256 * 2**20  # the child never parsed it


def test_a_file_over_the_size_limit_is_refused_without_parsing(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_child(*args: object) -> None:
        raise AssertionError("a child was started for a file over MAAS_MAX_MODEL_BYTES")

    monkeypatch.setattr(model_sandbox, "_spawn", no_child)
    monkeypatch.setenv("MAAS_MAX_MODEL_BYTES", "1000")
    with pytest.raises(ModelRefused, match="over the 1000 byte limit .MAAS_MAX_MODEL_BYTES."):
        inspect_onnx(onnx_model)


# ---------------------------------------------- as strict as serving


def test_inspection_runs_the_model_as_serving_would(tmp_path: Path) -> None:
    """Loads fine, fails on its first run (one element reshaped to two): before,
    inspection never ran anything."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "bad_reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [helper.make_tensor("shape", TensorProto.INT64, [1], [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = onnx_models.save(model, tmp_path / "bad_reshape.onnx")
    with pytest.raises(ModelRefused, match="does not run on a zero input"):
        inspect_onnx(path)


def _every_datatype_model() -> onnx.ModelProto:
    """One scalar and one [-1, 2] input per datatype publish accepts, each echoed back."""
    nodes, inputs, outputs = [], [], []
    for ort_type, v2 in ORT_TO_V2.items():
        element = TensorProto.DataType.Value(ort_type[len("tensor(") : -1].upper())
        shapes: list[tuple[str, list[str | int]]] = [("scalar", []), ("rows", ["batch", 2])]
        for suffix, shape in shapes:
            name = f"{v2.lower()}_{suffix}"
            inputs.append(helper.make_tensor_value_info(name, element, shape))
            outputs.append(helper.make_tensor_value_info(f"{name}_out", element, shape))
            nodes.append(helper.make_node("Identity", [name], [f"{name}_out"]))
    graph = helper.make_graph(nodes, "every_datatype", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_the_smoke_test_feeds_every_datatype_publish_accepts(tmp_path: Path) -> None:
    """Before: a scalar BOOL input passed publish and failed the smoke test."""
    path = onnx_models.save(_every_datatype_model(), tmp_path / "every.onnx")
    info = inspect_onnx(path)  # publish's inspection
    assert {s.datatype for s in info.inputs} == set(ORT_TO_V2.values())
    smoke = smoke_check(path, info)
    assert smoke.passed, smoke.detail
    vetted, combined = vet_upload(path, seed=3)
    assert combined.passed and vetted.inputs == info.inputs


# ---------------------------------------------------------- measurements


def test_verification_measures_what_the_model_costs(tmp_path: Path) -> None:
    """A 200-byte file that takes 64 MiB to load: before, the cache counted 400 bytes."""
    path = tmp_path / "heavy.onnx"
    hostile_models.constant_of_shape(path, 1 << 24)  # 64 MiB of float32 while folding
    info = inspect_onnx(path)
    manifest = Registry(LocalStore(tmp_path / "r")).build_manifest("heavy", 1, info)
    model_sandbox.forget_outcomes()
    verification = verify_model(path, manifest)
    assert verification.passed, verification.reason
    assert verification.load_seconds > 0
    assert verification.footprint_bytes >= 64 * 2**20
    assert PEAK_BOUND > verification.peak_rss_bytes > verification.footprint_bytes
    record = verification.resources_json()
    assert record["footprint_bytes"] == verification.footprint_bytes
    assert estimate_footprint(manifest) < 1024  # the file-size guess
    assert estimate_footprint(manifest, verification.footprint_bytes) >= 64 * 2**20


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every verification child started (the real one, counted)."""
    model_sandbox.forget_outcomes()
    started: list[object] = []
    real_spawn = model_sandbox._spawn

    def counting(*args: Any) -> Any:
        started.append(args)
        return real_spawn(*args)

    monkeypatch.setattr(model_sandbox, "_spawn", counting)
    return started


def test_publish_reuses_its_inspection(tmp_path: Path, spawned: list[object]) -> None:
    """publish inspects (one child), then verifies the draft manifest, and the deploy
    after the commit re-verifies the same bytes, without a second."""
    path = onnx_models.save(onnx_models.digits_mlp(seed=7), tmp_path / "m.onnx")
    published = release(Registry(LocalStore(tmp_path / "r")), path, "digits", alias="production")
    assert published.deployment is not None and published.deployment.status == "succeeded"
    assert len(spawned) == 1


def test_a_vetted_upload_publishes_without_a_second_child(
    tmp_path: Path, spawned: list[object]
) -> None:
    path = onnx_models.save(onnx_models.digits_mlp(seed=8), tmp_path / "m.onnx")
    info, smoke = vet_upload(path)
    assert smoke.passed and info.cost is not None
    release(Registry(LocalStore(tmp_path / "r")), path, "digits", alias="staging")
    assert len(spawned) == 1


# ------------------------------------------------------- the crash path


def test_a_child_that_dies_is_a_refusal_naming_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real child, killed by a signal we send it: the parent reports, never crashes."""
    original = model_sandbox._run_with_deadline

    def segfaulting(command: list[str], *args: Any) -> Any:
        return original(
            [command[0], "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
            *args,
        )

    monkeypatch.setattr(model_sandbox, "_run_with_deadline", segfaulting)
    path = onnx_models.save(onnx_models.digits_mlp(seed=11), tmp_path / "m.onnx")
    with pytest.raises(ModelRefused, match=r"crashed the verification process \(signal SIGSEGV\)"):
        inspect_onnx(path, VerifyLimits())


# ------------------------------------------------------- serving deadline


def test_a_run_past_the_deadline_answers_503_for_that_model_only(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a 2**62-trip Loop held its request for as long as Lambda let it."""
    monkeypatch.setenv("MAAS_RUN_TIMEOUT_MS", "300")
    registry = Registry(LocalStore(tmp_path / "registry"))
    loop = tmp_path / "loop.onnx"
    hostile_models.endless_loop(loop)
    registry.set_alias("hostile", "production", plant(registry, loop))
    release(registry, onnx_model, "digits", alias="production")
    handler = inference_handler(
        ServingConfig(registry_url=registry.url, cache_dir=tmp_path / "cache", run_timeout_ms=300)
    )

    def infer(model: str, inputs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps({"inputs": [inputs]}).encode()
        event = build_event(
            "POST", f"/v2/models/{model}/infer", {"content-type": "application/json"}, body
        )
        response = handler(event, LocalContext())
        return response["statusCode"], json.loads(response_body(response))

    digits = {"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}
    hostile = {"name": "x", "shape": [1], "datatype": "FP32", "data": [0.0]}
    infer("hostile", hostile)  # load it first: the deadline is the run's, not the load's
    for _ in range(2):
        started = time.perf_counter()
        status, body = infer("hostile", hostile)
        elapsed = time.perf_counter() - started
        assert status == 503
        assert "hostile:1 did not finish within 300 ms (MAAS_RUN_TIMEOUT_MS)" in body["error"]
        assert 0.3 <= elapsed < 10, elapsed
        assert infer("digits", digits)[0] == 200  # the other model is untouched
