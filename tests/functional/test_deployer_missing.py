"""Events for objects that are not there: ignored with a metric, never recorded, never retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from maas import metrics
from maas.registry import Registry
from maas.store import S3Store
from maas.upload_events import Deployer
from tests.support.make_events import EVENT_BUCKET, s3_put

PRODUCTION = {"alias": "production", "canary_weight": None}


@pytest.fixture
def registry() -> Any:
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=EVENT_BUCKET)
        yield Registry(S3Store(EVENT_BUCKET, client=boto3.client("s3")), actor="pytest")


@pytest.fixture
def telemetry() -> metrics.Telemetry:
    return metrics.Telemetry(EphemeralMetrics(namespace="maas-test"))


def deliver(registry: Registry, telemetry: metrics.Telemetry, key: str) -> dict[str, Any]:
    deployer = Deployer(registry, "staging", telemetry)
    (outcome,) = deployer.handle_event(s3_put(key, 100, "etag", "01"))
    return outcome.as_json()


def ignored_count(telemetry: metrics.Telemetry) -> Any:
    return telemetry.metrics.serialize_metric_set().get(metrics.DEPLOY_EVENTS_IGNORED)


def test_a_manifest_event_for_a_missing_version_is_ignored_and_never_recorded(
    registry: Registry, telemetry: metrics.Telemetry, onnx_model: Path
) -> None:
    registry.publish(onnx_model, "digits", details={"deploy": PRODUCTION})  # v1 exists
    for key in (
        "models/digits/versions/7/manifest.json",  # a version that does not exist
        "models/ghost/versions/1/manifest.json",  # a model that does not exist
    ):
        outcome = deliver(registry, telemetry, key)
        assert outcome["status"] == "ignored", outcome
        assert key in outcome["reason"] and "does not exist" in outcome["reason"]
    assert ignored_count(telemetry) == [1.0, 1.0]
    assert list(registry.store.list_keys("models/digits/deployments/")) == []
    assert list(registry.store.list_keys("models/ghost/")) == []
    # The real version 7, committed later, is deployed normally: nothing blocks it.
    for _ in range(6):
        registry.publish(onnx_model, "digits", details={"deploy": PRODUCTION})
    outcome = deliver(registry, telemetry, "models/digits/versions/7/manifest.json")
    assert outcome["status"] == "succeeded" and outcome["version"] == 7


def test_a_manifest_whose_model_file_is_missing_is_a_recorded_failure(
    registry: Registry, telemetry: metrics.Telemetry, onnx_model: Path
) -> None:
    version = registry.publish(onnx_model, "digits", details={"deploy": PRODUCTION}).version
    registry.store.client.delete_object(  # type: ignore[attr-defined]
        Bucket=EVENT_BUCKET, Key=Registry.model_key("digits", version)
    )
    outcome = deliver(registry, telemetry, f"models/digits/versions/{version}/manifest.json")
    assert outcome["status"] == "failed"
    assert outcome["reason"].startswith("integrity: models/digits/versions/1/model.onnx is missing")
    assert registry.read_record(Registry.deployment_key("digits", version)) is not None
    assert registry.list_aliases("digits") == {}


def test_every_ignored_key_counts_a_metric(
    registry: Registry, telemetry: metrics.Telemetry
) -> None:
    for key in ("README.md", "incoming/m.onnx", "incoming/Bad Name/m.onnx", "incoming/m/x.onnx"):
        assert deliver(registry, telemetry, key)["status"] == "ignored"
    assert ignored_count(telemetry) == [1.0, 1.0, 1.0, 1.0]
