"""Deploying a version: verify it, then apply its deploy policy, and record the outcome.

Used in-process by `maas publish --alias` (and `maas convert --publish
--alias`) and by the deployer Lambda on an S3 upload, so both promote by the
same rules:

- a version that fails verification never moves anything;
- a version older than the alias's current target never moves it;
- nor does a version the alias was rolled back from (only an explicit
  `maas models alias` does that);
- a manifest with ``deploy.canary_weight`` sets the canary instead of moving
  the alias;
- the outcome is written once to ``models/{name}/deployments/{v}.json``; a
  version that already has a record is not deployed again (S3 delivers events
  at least once).
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from maas.documents import AliasDoc, Manifest, iso, utc_now
from maas.errors import IntegrityError, NotFound, PreconditionFailed
from maas.model_checks import Check, Verification, verify_model
from maas.registry import Registry

log = logging.getLogger(__name__)

Status = Literal["succeeded", "failed", "skipped"]


class SkipMove(Exception):
    """Raised inside the alias compare-and-swap to leave the alias as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Deployment:
    name: str
    version: int | None
    status: Status
    reason: str
    checks: list[dict[str, Any]]
    alias: AliasDoc | None = None
    validation_seconds: float = 0.0
    recorded: bool = True  # False when an earlier record made this a duplicate

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "checks": self.checks,
            "at": iso(utc_now()),
        }


def deployment_record(registry: Registry, key: str) -> dict[str, Any] | None:
    try:
        document: dict[str, Any] = json.loads(registry.store.get(key).data)
    except NotFound:
        return None
    return document


def write_record(registry: Registry, key: str, deployment: Deployment) -> bool:
    """Write the record once; False when a concurrent delivery of the same event wrote it first."""
    body = (json.dumps(deployment.as_json(), indent=2) + "\n").encode()
    try:
        registry.store.put(key, body, if_none_match=True)
    except PreconditionFailed:
        return False
    return True


def plan_move(
    manifest: Manifest, current: AliasDoc | None, rolled_back_from: set[int]
) -> AliasDoc | None:
    """The alias document the deploy policy asks for, ``None`` if nothing changes,
    or :class:`SkipMove` naming why this version must not move the alias."""
    alias = manifest["deploy"]["alias"]
    weight = manifest["deploy"]["canary_weight"]
    version = manifest["version"]
    if version in rolled_back_from:
        raise SkipMove(
            f"{alias} was rolled back from version {version}; only an explicit "
            "`maas models alias` promotes it again"
        )
    if current is None:
        return {"version": version, "canary": None, "previous": None}
    if version < current["version"]:
        raise SkipMove(
            f"version {version} is older than {alias}'s current version {current['version']}"
        )
    if weight is None:
        if version == current["version"] and current["canary"] is None:
            return None  # already there: a redelivered event
        previous = current["previous"] if version == current["version"] else current["version"]
        return {"version": version, "canary": None, "previous": previous}
    if version == current["version"]:
        raise SkipMove(f"version {version} is already {alias}'s main version; no canary to set")
    canary = {"version": version, "weight": weight}
    if current["canary"] == canary:
        return None
    return {"version": current["version"], "canary": canary, "previous": current["previous"]}


def apply_policy(
    registry: Registry, manifest: Manifest, reason: str
) -> tuple[Status, str, AliasDoc | None]:
    name, version = manifest["name"], manifest["version"]
    alias = manifest["deploy"]["alias"]
    if alias is None:
        return "skipped", "verified; the manifest names no deploy alias", None
    rolled_back = registry.rolled_back_from(name, alias)
    outcome: dict[str, Any] = {}

    def change(current: AliasDoc | None) -> AliasDoc:
        planned = plan_move(manifest, current, rolled_back)
        if planned is None:
            raise SkipMove("already applied")
        outcome["canary"] = planned["canary"] is not None
        return registry.alias_document(
            alias, planned["version"], planned["canary"], planned["previous"]
        )

    try:
        document = registry.swap_alias(name, alias, change, action="move", reason=reason)
    except SkipMove as skip:
        if skip.reason == "already applied":
            return (
                "succeeded",
                f"{alias} already serves version {version}",
                registry.get_alias(name, alias),
            )
        return "skipped", f"verified, not promoted: {skip.reason}", None
    if outcome.get("canary"):
        weight = manifest["deploy"]["canary_weight"]
        return "succeeded", f"{alias} canary -> {version} at weight {weight}", document
    return "succeeded", f"{alias} -> {version}", document


def deploy_version(
    registry: Registry, name: str, version: int, reason: str = "deploy"
) -> Deployment:
    """Verify a committed version from the registry's bytes, then apply its policy.

    Idempotent: a version with a deployment record is left alone. I/O errors
    propagate (to be retried); only a model that fails a check is 'failed'.
    """
    key = Registry.deployment_key(name, version)
    earlier = deployment_record(registry, key)
    if earlier is not None:
        return Deployment(
            name,
            version,
            earlier["status"],
            earlier["reason"],
            earlier.get("checks", []),
            recorded=False,
        )
    try:
        manifest = registry.get_manifest(name, version)
    except IntegrityError as exc:
        deployment = Deployment(
            name, version, "failed", f"schema: {exc}", [Check("schema", False, str(exc)).as_json()]
        )
        deployment.recorded = write_record(registry, key, deployment)
        return deployment
    with tempfile.TemporaryDirectory(prefix="maas-deploy-") as scratch:
        path = Path(scratch) / "model.onnx"
        registry.store.download_file(Registry.model_key(name, version), path)
        verification = verify_model(path, manifest)
    return finish(registry, manifest, verification, key, reason)


def finish(
    registry: Registry, manifest: Manifest, verification: Verification, key: str, reason: str
) -> Deployment:
    name, version = manifest["name"], manifest["version"]
    if not verification.passed:
        deployment = Deployment(
            name,
            version,
            "failed",
            verification.reason,
            verification.as_json(),
            validation_seconds=verification.seconds,
        )
        log.error("deployment of %s:%s failed: %s", name, version, verification.reason)
    else:
        status, why, document = apply_policy(registry, manifest, reason)
        deployment = Deployment(
            name, version, status, why, verification.as_json(), document, verification.seconds
        )
        log.info("deployment of %s:%s %s: %s", name, version, status, why)
    deployment.recorded = write_record(registry, key, deployment)
    return deployment


def incoming_record_key(name: str, etag: str) -> str:
    clean = "".join(ch for ch in etag if ch.isalnum() or ch == "-") or uuid.uuid4().hex
    return f"models/{name}/deployments/incoming-{clean}.json"
