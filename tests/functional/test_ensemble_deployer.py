"""The deployer verifies an uploaded ensemble manifest before promoting it, over moto S3:
members exist and agree, golden samples reproduce; the promotion policy is the models'."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from maas import metrics
from maas.documents import Manifest
from maas.ensemble.create import create_ensemble
from maas.ensemble.members import member_specs
from maas.registry import Registry
from maas.store import S3Store
from maas.upload_events import Deployer
from tests.support.ensembles import publish_members
from tests.support.make_events import EVENT_BUCKET, s3_put

PRODUCTION = {"alias": "production", "canary_weight": None}


@pytest.fixture
def registry() -> Any:
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=EVENT_BUCKET)
        yield Registry(S3Store(EVENT_BUCKET, client=boto3.client("s3")), actor="pytest")


@pytest.fixture
def deployer(registry: Registry) -> Deployer:
    return Deployer(registry, "staging", metrics.Telemetry(EphemeralMetrics(namespace="t")))


@pytest.fixture
def ensemble(registry: Registry, tmp_path: Path) -> Manifest:
    """Version 1 of ``ens``, committed without an alias (nothing deployed it)."""
    publish_members(registry, tmp_path)
    specs = member_specs(["digits-a@production", "digits-b:1"], [2.0, 1.0])
    return create_ensemble(registry, "ens", specs, "vote").manifest


def upload(registry: Registry, manifest: Manifest) -> int:
    """Commit ``manifest`` as the next version, asking for production, as an upload would."""
    version = (registry.latest_version("ens") or 0) + 1
    registry.commit_manifest({**manifest, "version": version, "deploy": PRODUCTION})
    return version


def deliver(deployer: Deployer, version: int) -> dict[str, Any]:
    event = s3_put(f"models/ens/versions/{version}/manifest.json", 100, "etag", "01")
    (outcome,) = deployer.handle_event(event)
    return outcome.as_json()


def test_a_good_ensemble_manifest_is_verified_and_promoted(
    registry: Registry, deployer: Deployer, ensemble: Manifest
) -> None:
    version = upload(registry, ensemble)
    outcome = deliver(deployer, version)
    assert outcome["status"] == "succeeded", outcome
    assert registry.get_alias("ens", "production")["version"] == version
    record = registry.read_record(registry.deployment_key("ens", version))
    assert record is not None
    assert [(c["name"], c["passed"]) for c in record["checks"]] == [
        ("schema", True),
        ("members", True),
        ("golden_samples", True),
    ]
    assert deliver(deployer, version)["status"] == "duplicate"


def broken(manifest: Manifest, how: str) -> Manifest:
    manifest = copy.deepcopy(manifest)
    if how == "golden":
        manifest["golden_samples"][0]["outputs"]["probabilities"]["data"][0] += 0.5
    elif how == "missing member":
        manifest["members"][1]["ref"] = "digits-z:1"
    elif how == "ensemble member":
        manifest["members"][1]["ref"] = "ens:1"
    elif how == "signature":
        manifest["inputs"][0]["shape"] = [-1, 4, 16]
    elif how == "sha256":
        manifest["lineage"]["members"][0]["sha256"] = "0" * 64
    elif how == "schema":
        del manifest["combiner"]
    return manifest


@pytest.mark.parametrize(
    ("how", "check", "detail"),
    [
        ("golden", "golden_samples", "sample 0 output 'probabilities' differs by 0.5"),
        ("missing member", "members", "member digits-z:1 does not exist"),
        ("ensemble member", "members", "itself an ensemble"),
        ("signature", "members", "the manifest declares a signature its members do not share"),
        ("sha256", "members", "lineage says 0000"),
        ("schema", "schema", "combiner"),
    ],
)
def test_a_broken_ensemble_manifest_fails_and_moves_nothing(
    registry: Registry, deployer: Deployer, ensemble: Manifest, how: str, check: str, detail: str
) -> None:
    registry.set_alias("ens", "production", 1)
    bad = broken(ensemble, how)
    version = (registry.latest_version("ens") or 0) + 1
    key = registry.manifest_key("ens", version)
    # Written as raw bytes: a malformed upload never passes the registry's own writer.
    registry.store.put(key, json.dumps({**bad, "version": version, "deploy": PRODUCTION}).encode())
    outcome = deliver(deployer, version)
    assert outcome["status"] == "failed", outcome
    assert outcome["reason"].startswith(f"{check}: ") and detail in outcome["reason"], outcome
    assert registry.get_alias("ens", "production")["version"] == 1
