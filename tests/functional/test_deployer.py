"""The deployer over moto S3: verify, promote by policy, record; refuse bad uploads."""

from __future__ import annotations

import copy
import json
import runpy
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import onnx
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics
from onnx import TensorProto, helper, numpy_helper

from maas import metrics
from maas.cli import main
from maas.config import ServingConfig
from maas.deploy_policy import Skip, plan_move
from maas.documents import Manifest
from maas.errors import StoreUnavailable
from maas.lambda_entry import inference_handler
from maas.local_server import LocalContext, build_event, response_body
from maas.registry import Registry
from maas.store import S3Store
from maas.upload_events import Deployer
from tests.support import onnx_models
from tests.support.make_events import EVENT_BUCKET, s3_put

EVENTS = Path(__file__).resolve().parents[2] / "events" / "deployer"
PRODUCTION = {"alias": "production", "canary_weight": None}


@pytest.fixture
def bucket() -> Any:
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=EVENT_BUCKET)
        yield EVENT_BUCKET


@pytest.fixture
def registry(bucket: str) -> Registry:
    return Registry(S3Store(bucket, client=boto3.client("s3")), actor="pytest")


@pytest.fixture
def telemetry() -> metrics.Telemetry:
    return metrics.Telemetry(EphemeralMetrics(namespace="maas-test"))


@pytest.fixture
def deployer(registry: Registry, telemetry: metrics.Telemetry) -> Deployer:
    return Deployer(registry, "staging", telemetry)


def manifest_event(name: str, version: int) -> dict[str, Any]:
    return s3_put(f"models/{name}/versions/{version}/manifest.json", 100, "etag", "01")


def deliver(deployer: Deployer, event: dict[str, Any]) -> dict[str, Any]:
    (outcome,) = deployer.handle_event(event)
    return outcome.as_json()


def publish(registry: Registry, path: Path, deploy: dict[str, Any] | None = None) -> int:
    """Commit a version whose manifest asks for a deploy, without deploying it."""
    return registry.publish(path, "digits", details={"deploy": deploy or PRODUCTION}).version


def production(registry: Registry) -> int:
    return int(registry.get_alias("digits", "production")["version"])


def record(registry: Registry, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(registry.store.get(key).data)
    return document


def emitted(telemetry: metrics.Telemetry) -> dict[str, Any]:
    found: dict[str, Any] = {
        name: value
        for name, value in telemetry.metrics.serialize_metric_set().items()
        if name
        in (metrics.DEPLOYMENT_SUCCEEDED, metrics.DEPLOYMENT_FAILED, metrics.DEPLOY_VALIDATION_TIME)
    }
    return found


# --------------------------------------------------------------- promotion


def test_a_good_version_is_promoted(
    registry: Registry, deployer: Deployer, onnx_model: Path, telemetry: metrics.Telemetry
) -> None:
    version = publish(registry, onnx_model)
    assert registry.read_alias("digits", "production") is None  # nothing moved yet
    outcome = deliver(deployer, manifest_event("digits", version))
    assert outcome["status"] == "succeeded" and outcome["reason"] == "production -> 1"
    assert production(registry) == 1
    saved = record(registry, "models/digits/deployments/1.json")
    assert saved["status"] == "succeeded" and saved["version"] == 1
    assert [c["name"] for c in saved["checks"]] == [
        "schema",
        "integrity",
        "model",
        "signature",
        "golden_samples",
    ]
    assert all(c["passed"] for c in saved["checks"])
    assert emitted(telemetry)[metrics.DEPLOYMENT_SUCCEEDED] == [1.0]


def test_a_canary_policy_sets_the_canary(
    registry: Registry, deployer: Deployer, onnx_model: Path, onnx_model_b: Path
) -> None:
    deliver(deployer, manifest_event("digits", publish(registry, onnx_model)))
    v2 = publish(registry, onnx_model_b, {"alias": "production", "canary_weight": 0.1})
    outcome = deliver(deployer, manifest_event("digits", v2))
    assert outcome["status"] == "succeeded"
    alias = registry.get_alias("digits", "production")
    assert alias["version"] == 1 and alias["canary"] == {"version": 2, "weight": 0.1}


def test_duplicate_events_promote_once(
    registry: Registry, deployer: Deployer, onnx_model: Path
) -> None:
    deliver(deployer, manifest_event("digits", publish(registry, onnx_model)))
    v2 = publish(registry, onnx_model)
    assert deliver(deployer, manifest_event("digits", v2))["status"] == "succeeded"
    assert deliver(deployer, manifest_event("digits", v2))["status"] == "duplicate"
    moves = [(r["from"], r["to"]) for r in registry.history("digits", "production")]
    assert moves == [(None, 1), (1, 2)]


def test_an_out_of_order_older_version_does_nothing(
    registry: Registry, deployer: Deployer, onnx_model: Path
) -> None:
    v1, v2, v3 = (publish(registry, onnx_model) for _ in range(3))
    assert deliver(deployer, manifest_event("digits", v3))["status"] == "succeeded"
    late = deliver(deployer, manifest_event("digits", v2))
    assert (
        late["status"] == "skipped"
        and "older than production's current version 3" in late["reason"]
    )
    assert production(registry) == 3
    assert record(registry, "models/digits/deployments/2.json")["status"] == "skipped"
    assert v1 == 1


def test_a_rolled_back_version_is_not_promoted_again(
    registry: Registry, deployer: Deployer, onnx_model: Path
) -> None:
    deliver(deployer, manifest_event("digits", publish(registry, onnx_model)))
    v2 = publish(registry, onnx_model)
    deliver(deployer, manifest_event("digits", v2))
    registry.rollback("digits")
    assert production(registry) == 1
    assert deliver(deployer, manifest_event("digits", v2))["status"] == "duplicate"
    assert production(registry) == 1
    # Even without its record (say, lost), the history says it was rolled back from.
    registry.store.put("models/digits/deployments/2.json", b"{}")
    manifest = registry.get_manifest("digits", v2)
    skip = plan_move(
        manifest,
        registry.get_alias("digits", "production"),
        registry.rolled_back_from("digits", "production"),
    )
    assert isinstance(skip, Skip) and "rolled back from version 2" in skip.reason


def test_transient_errors_raise_and_record_nothing(
    registry: Registry, deployer: Deployer, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = publish(registry, onnx_model)

    def outage(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("S3 SlowDown: please reduce your request rate")

    monkeypatch.setattr(S3Store, "download_file", outage)
    with pytest.raises(StoreUnavailable):
        deliver(deployer, manifest_event("digits", version))
    assert registry.store.head("models/digits/deployments/1.json") is None
    monkeypatch.undo()
    assert deliver(deployer, manifest_event("digits", version))["status"] == "succeeded"


def test_local_publish_and_the_deployer_agree(
    registry: Registry, deployer: Deployer, onnx_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "publish",
                str(onnx_model),
                "--name",
                "digits",
                "--alias",
                "production",
                "--registry",
                registry.url,
            ]
        )
        == 0
    )
    capsys.readouterr()
    saved = record(registry, "models/digits/deployments/1.json")
    assert saved["status"] == "succeeded"
    assert deliver(deployer, manifest_event("digits", 1))["status"] == "duplicate"
    assert len(registry.history("digits")) == 1


# ---------------------------------------------------------------- refusals


def _plant(registry: Registry, model: bytes, edit: Any = None) -> int:
    """Commit a version directly (as a hostile or broken uploader could), bypassing publish."""
    good = registry.get_manifest("digits", 1)
    version = registry._claim_version("digits")
    registry.store.put(Registry.model_key("digits", version), model)
    manifest: Manifest = copy.deepcopy(good)
    manifest["version"] = version
    import hashlib

    manifest["model"]["sha256"] = hashlib.sha256(model).hexdigest()
    manifest["model"]["size"] = len(model)
    manifest["deploy"] = dict(PRODUCTION)
    if edit is not None:
        edit(manifest)
    registry.commit_manifest(manifest)
    return version


def _external(location: str) -> bytes:
    model = onnx_models.digits_mlp()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return bytes(model.SerializeToString())


def _external_constant() -> bytes:
    model = onnx_models.digits_mlp()
    value = numpy_helper.from_array(np.zeros(4, np.float32), "leak")
    value.ClearField("raw_data")
    value.data_location = TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "../../../proc/self/environ"
    model.graph.node.append(helper.make_node("Constant", [], ["leaked"], value=value))
    return bytes(model.SerializeToString())


def _wrong_golden(manifest: Manifest) -> None:
    manifest["golden_samples"] = [
        {
            "inputs": {"input": {"shape": [1, 8, 8], "data": [0.5] * 64}},
            "outputs": {"probabilities": {"shape": [1, 10], "data": [0.1] * 10}},
            "atol": 1e-4,
        }
    ]


def _false_signature(manifest: Manifest) -> None:
    manifest["inputs"] = [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]


REFUSALS: dict[str, tuple[Callable[[bytes], bytes], Callable[[Manifest], None] | None, str]] = {
    "sha256 mismatch": (
        lambda good: good,
        lambda m: m["model"].update(sha256="0" * 64),
        "integrity",
    ),
    "not ONNX": (lambda good: b"\x00\x01 definitely not a protobuf \xff", None, "model"),
    "external data, relative": (lambda good: _external("../../etc/passwd"), None, "external data"),
    "external data, absolute": (lambda good: _external("/etc/passwd"), None, "external data"),
    "external data in a Constant": (lambda good: _external_constant(), None, "external data"),
    "golden sample disagrees": (lambda good: good, _wrong_golden, "golden_samples"),
    "false signature": (lambda good: good, _false_signature, "signature"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_versions_are_refused_and_nothing_moves(
    registry: Registry,
    deployer: Deployer,
    onnx_model: Path,
    telemetry: metrics.Telemetry,
    case: str,
) -> None:
    deliver(deployer, manifest_event("digits", publish(registry, onnx_model)))
    telemetry.metrics.clear_metrics()
    make_bytes, edit, mentions = REFUSALS[case]
    version = _plant(registry, make_bytes(onnx_model.read_bytes()), edit)
    outcome = deliver(deployer, manifest_event("digits", version))
    assert outcome["status"] == "failed", outcome
    assert mentions in outcome["reason"]
    saved = record(registry, f"models/digits/deployments/{version}.json")
    assert saved["status"] == "failed" and mentions in saved["reason"]
    assert saved["checks"][-1]["passed"] is False
    assert production(registry) == 1  # serving goes on with the previous version
    assert len(registry.history("digits")) == 1
    assert emitted(telemetry)[metrics.DEPLOYMENT_FAILED] == [1.0]


# ------------------------------------------------------------- raw uploads


def _upload(bucket: str, key: str, body: bytes) -> dict[str, Any]:
    client = boto3.client("s3")
    etag = client.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    from urllib.parse import quote_plus

    return s3_put(quote_plus(key, safe="/"), len(body), etag.strip('"'), "02")


def test_a_raw_upload_becomes_a_served_version(
    registry: Registry, deployer: Deployer, bucket: str, onnx_model: Path, tmp_path: Path
) -> None:
    event = _upload(bucket, "incoming/digits/my model.onnx", onnx_model.read_bytes())
    outcome = deliver(deployer, event)
    assert outcome["status"] == "succeeded" and outcome["version"] == 1, outcome
    alias = registry.get_alias("digits", "staging")
    assert alias["version"] == 1
    manifest = registry.get_manifest("digits", 1)
    etag = (
        boto3.client("s3")
        .head_object(Bucket=bucket, Key="incoming/digits/my model.onnx")["ETag"]
        .strip('"')
    )
    assert manifest["source"]["upload"] == {"key": "incoming/digits/my model.onnx", "etag": etag}
    assert manifest["inputs"][0]["shape"] == [-1, 8, 8]
    saved = record(registry, f"models/digits/deployments/incoming-{etag}.json")
    assert saved["status"] == "succeeded" and saved["version"] == 1
    assert "smoke_test" in [c["name"] for c in saved["checks"]]

    # Redelivered: no second version.
    assert deliver(deployer, event)["status"] == "duplicate"
    assert registry.list_versions("digits") == [1]
    # The manifest event of the version it created is a duplicate too.
    assert deliver(deployer, manifest_event("digits", 1))["status"] == "duplicate"

    handler = inference_handler(ServingConfig(registry_url=registry.url, cache_dir=tmp_path))
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]}
    ).encode()
    response = handler(
        build_event(
            "POST",
            "/v2/models/digits/versions/staging/infer",
            {"content-type": "application/json"},
            body,
        ),
        LocalContext(),
    )
    assert response["statusCode"] == 200
    assert json.loads(response_body(response))["model_version"] == "1"


def test_a_redelivered_upload_without_its_record_creates_nothing(
    registry: Registry, deployer: Deployer, bucket: str, onnx_model: Path
) -> None:
    event = _upload(bucket, "incoming/digits/m.onnx", onnx_model.read_bytes())
    deliver(deployer, event)
    for key in list(registry.store.list_keys("models/digits/deployments/")):
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)
    assert deliver(deployer, event)["status"] == "duplicate"
    assert registry.list_versions("digits") == [1]


def test_a_refused_raw_upload_creates_no_version(
    registry: Registry, deployer: Deployer, bucket: str, telemetry: metrics.Telemetry
) -> None:
    event = _upload(bucket, "incoming/digits/broken.onnx", b"not an onnx file at all")
    outcome = deliver(deployer, event)
    assert outcome["status"] == "failed" and "not an ONNX model" in outcome["reason"]
    assert registry.list_versions("digits") == []
    etag = event["Records"][0]["s3"]["object"]["eTag"]
    saved = record(registry, f"models/digits/deployments/incoming-{etag}.json")
    assert saved["status"] == "failed" and saved["version"] is None
    assert emitted(telemetry)[metrics.DEPLOYMENT_FAILED] == [1.0]


def test_a_raw_upload_that_fails_the_smoke_test_is_refused(
    registry: Registry, deployer: Deployer, bucket: str, tmp_path: Path
) -> None:
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["x", "two"], ["shifted"]),
            helper.make_node("Log", ["shifted"], ["y"]),
        ],
        "nan_on_ordinary_input",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    outcome = deliver(deployer, _upload(bucket, "incoming/logs/m.onnx", model.SerializeToString()))
    assert outcome["status"] == "failed" and "smoke_test" in outcome["reason"]
    assert "not finite" in outcome["reason"]
    assert registry.list_versions("logs") == []


def test_objects_outside_the_registry_are_ignored(deployer: Deployer) -> None:
    assert deliver(deployer, s3_put("models/digits/README.md", 1, "e", "1"))["status"] == "ignored"
    other = s3_put("models/digits/versions/1/manifest.json", 1, "e", "1")
    other["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    assert deliver(deployer, other)["status"] == "ignored"


# ---------------------------------------------------------- events, handler


def test_sample_events_replay_through_the_function(
    registry: Registry, bucket: str, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAAS_REGISTRY", f"s3://{bucket}")
    module = runpy.run_path(str(Path(__file__).resolve().parents[2] / "functions/deployer/app.py"))
    handler = module["handler"]
    publish(registry, onnx_model)
    manifest = json.loads((EVENTS / "manifest-put.json").read_text())
    result = handler(manifest, LocalContext())
    assert [r["status"] for r in result["results"]] == ["succeeded"]
    assert production(registry) == 1

    boto3.client("s3").put_object(
        Bucket=bucket, Key="incoming/digits/new model.onnx", Body=onnx_model.read_bytes()
    )
    incoming = json.loads((EVENTS / "incoming-put.json").read_text())
    result = handler(incoming, LocalContext())
    assert [(r["status"], r["version"]) for r in result["results"]] == [("succeeded", 2)]
    assert registry.get_alias("digits", "staging")["version"] == 2


def test_clients_see_no_failed_request_while_the_alias_moves(
    registry: Registry, deployer: Deployer, onnx_model: Path, onnx_model_b: Path, tmp_path: Path
) -> None:
    deliver(deployer, manifest_event("digits", publish(registry, onnx_model)))
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.25] * 64}]}
    ).encode()
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()

    def client(index: int) -> None:
        # One handler per thread: like Lambda, one environment answers one request at a time.
        handler = inference_handler(
            ServingConfig(
                registry_url=registry.url, cache_dir=tmp_path / str(index), alias_ttl_seconds=0.05
            ),
            telemetry=metrics.Telemetry(EphemeralMetrics(namespace="t")),
        )
        while not stop.is_set():
            response = handler(
                build_event(
                    "POST", "/v2/models/digits/infer", {"content-type": "application/json"}, body
                ),
                LocalContext(),
            )
            statuses.append(response["statusCode"])
            if response["statusCode"] == 200:
                versions.add(json.loads(response_body(response))["model_version"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for path in (onnx_model_b, onnx_model, onnx_model_b):
        time.sleep(0.3)
        version = publish(registry, path)
        assert deliver(deployer, manifest_event("digits", version))["status"] == "succeeded"
    time.sleep(0.3)
    registry.rollback("digits")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert len(versions) >= 2  # the moves were seen while requests kept flowing
