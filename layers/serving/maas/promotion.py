"""Promotion: verify → publish → deploy, with one result that every caller renders alike.

:func:`release` is what `maas publish`, `maas convert --publish` and the
deployer's raw uploads call; :func:`deploy_version` is what the deployer calls
for a version that is already committed. Both promote by the same rules:

- a version that fails verification never moves anything;
- the alias then moves as :mod:`maas.deploy_policy` decides;
- the outcome is written once to ``models/{name}/deployments/{v}.json``; a
  version that already has a record is not deployed again (S3 delivers events
  at least once).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from maas.deploy_policy import Status, apply_policy
from maas.documents import AliasDoc, Manifest, iso, manifest_kind, utc_now
from maas.ensemble.verify import verify_ensemble
from maas.errors import IntegrityError, ModelRefused, NotFound
from maas.labels import check_labels
from maas.model_checks import Check, Verification, verify_model
from maas.names import check_writable_alias, check_writable_name
from maas.onnxfile import inspect_onnx
from maas.registry import Registry, VersionArchived
from maas.signature_guard import SignatureMismatch, refusal
from maas.store import Progress

log = logging.getLogger(__name__)

AliasStatus = Literal["moved", "skipped", "failed"]


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
    #: What verifying cost (peak RSS, the session's footprint, load time), measured in
    #: the bounded child; the manifest is immutable by then, so it lives in the record.
    resources: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "checks": self.checks,
            "at": iso(utc_now()),
        }
        if self.resources is not None:
            document["resources"] = self.resources
        return document


@dataclass(frozen=True)
class Release:
    """A published version and, when an alias was asked for, what happened to it."""

    name: str
    version: int
    manifest: Manifest
    alias_name: str | None = None
    deployment: Deployment | None = None

    @property
    def alias(self) -> AliasDoc | None:
        return self.deployment.alias if self.deployment is not None else None

    @property
    def alias_status(self) -> AliasStatus | None:
        if self.deployment is None:
            return None
        if self.deployment.status == "failed":
            return "failed"
        return "skipped" if self.deployment.status == "skipped" else "moved"

    def alias_report(self) -> dict[str, Any] | None:
        """``{"name", "status": moved|skipped|failed, "reason"}``, as ``--json`` prints it."""
        if self.deployment is None:
            return None
        return {
            "name": self.alias_name,
            "status": self.alias_status,
            "reason": self.deployment.reason,
        }


def release(
    registry: Registry,
    path: Path,
    name: str,
    *,
    alias: str | None = None,
    details: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    reason: str | None = None,
    force: bool = False,
) -> Release:
    """Verify a model file, publish it as the next version, then deploy it to ``alias``.

    The verification the deployer runs happens first, on the local file and a
    draft manifest (placeholder version), so a bad model or bad metadata is
    refused with :class:`ModelRefused` before anything is written. The deploy
    step then verifies the registry's own bytes, exactly as the deployer would;
    when the deployer later sees this manifest, it finds the record and does
    nothing.
    """
    check_writable_name(name)
    merged = dict(details or {})
    if alias is not None:
        check_writable_alias(alias)
        merged.setdefault("deploy", {"alias": alias, "canary_weight": None})
    _refuse_unconverted(path, name)
    info = inspect_onnx(path)
    if merged.get("labels") is not None:
        check_labels(merged["labels"], [spec.as_json() for spec in info.outputs])
    draft = registry.build_manifest(name, 1, info, merged)
    verification = verify_model(path, draft, info)
    if not verification.passed:
        raise ModelRefused(f"{path} refused: {verification.reason}")
    if alias is not None and not force:
        why = signature_refusal(registry, name, alias, draft, "the new version")
        if why is not None:
            raise SignatureMismatch(why)  # before anything is written
    published = registry.publish(path, name, details=merged, progress=progress, info=info)
    if alias is None:
        return Release(name, published.version, published.manifest)
    deployment = deploy_version(
        registry, name, published.version, reason=reason or "publish", force=force
    )
    return Release(name, published.version, published.manifest, alias, deployment)


#: Sources `maas convert` takes, which `maas publish` cannot: it publishes ONNX only.
_CONVERTIBLE = {".keras": "Keras", ".h5": "Keras (HDF5)", ".tflite": "TFLite"}


def _refuse_unconverted(path: Path, name: str) -> None:
    kind = _CONVERTIBLE.get(path.suffix.lower())
    if kind is None and path.is_dir() and (path / "saved_model.pb").is_file():
        kind = "SavedModel"
    if kind is not None:
        raise ModelRefused(
            f"{path} is a {kind} model, not ONNX: run `maas convert {path} --name {name} "
            "--publish` first, which converts, validates and publishes it"
        )


def signature_refusal(
    registry: Registry, name: str, alias: str, candidate: Manifest, label: str | None = None
) -> str | None:
    """Why moving ``name@alias`` to ``candidate`` would break its clients, if it would.
    ``label`` names a draft (its version is a placeholder); a committed candidate
    that the alias already serves is compatible with itself."""
    found = registry.read_alias(name, alias)
    if found is None or (label is None and found[0]["version"] == candidate["version"]):
        return None
    current = registry.get_manifest(name, found[0]["version"])
    return refusal(name, alias, current, candidate, label)


def deploy_version(
    registry: Registry, name: str, version: int, reason: str = "deploy", force: bool = False
) -> Deployment:
    """Verify a committed version from the registry's bytes, then apply its policy.

    Idempotent: a version with a deployment record is left alone. I/O errors
    propagate (to be retried); only a model that fails a check is 'failed'.
    """
    key = Registry.deployment_key(name, version)
    earlier = registry.read_record(key)
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
        deployment.recorded = registry.write_record(key, deployment.as_json())
        return deployment
    if manifest_kind(manifest) == "ensemble":
        verification = verify_ensemble(registry, manifest)  # no bytes: its members'
    else:
        verification = _verify_registry_bytes(registry, manifest)
    alias = manifest["deploy"]["alias"]
    why = None
    if verification.passed and alias is not None:
        why = signature_refusal(registry, name, alias, manifest)
        if why is not None and not force:
            verification.checks.append(Check("signature", False, why))
    return _finish(registry, manifest, verification, key, reason, forced=why is not None)


def _verify_registry_bytes(registry: Registry, manifest: Manifest) -> Verification:
    name, version = manifest["name"], manifest["version"]
    with tempfile.TemporaryDirectory(prefix="maas-deploy-") as scratch:
        path = Path(scratch) / "model.onnx"
        model_key = Registry.model_key(name, version)
        try:
            registry.download(model_key, path)
        except NotFound:
            missing = Check("integrity", False, f"{model_key} is missing; the manifest names it")
            return Verification([missing])
        return verify_model(path, manifest)


def _finish(
    registry: Registry,
    manifest: Manifest,
    verification: Verification,
    key: str,
    reason: str,
    forced: bool = False,
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
        try:
            status, why, document = apply_policy(registry, manifest, reason, forced=forced)
        except VersionArchived as exc:
            verification.checks.append(Check("archived", False, str(exc)))
            return _finish(registry, manifest, verification, key, reason)
        deployment = Deployment(
            name, version, status, why, verification.as_json(), document, verification.seconds
        )
        log.info("deployment of %s:%s %s: %s", name, version, status, why)
    if verification.peak_rss_bytes:
        deployment.resources = verification.resources_json()
    deployment.recorded = registry.write_record(key, deployment.as_json())
    return deployment
