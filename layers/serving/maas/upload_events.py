"""The deployer: S3 upload events → verify → promote, for the deployer Lambda.

Two kinds of upload arrive (see template.yaml's bucket notifications):

- ``models/{name}/versions/{v}/manifest.json``: a version committed by
  `maas publish` or `maas convert --publish`; deploy it (:mod:`maas.promotion`).
- ``incoming/{name}/{file}.onnx``: a raw file copied with `aws s3 cp`. It
  becomes the next version of ``name`` (signature read from the model, a smoke
  test on random in-range inputs) and is deployed to ``MAAS_INCOMING_ALIAS``.

S3 delivers at least once and in any order: every path is idempotent (records
keyed by version, and by the upload's ETag for raw files). Transient I/O
errors propagate so that Lambda retries the event; they are never recorded as
a failed verification.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import onnxruntime

from maas import __version__, metrics
from maas.errors import InvalidInput, MaasError, NotFound
from maas.model_checks import Check, vet_upload
from maas.names import check_name
from maas.onnxfile import file_sha256
from maas.promotion import Deployment, deploy_version, release
from maas.registry import Registry, version_number
from maas.signature_guard import SignatureMismatch

log = logging.getLogger(__name__)

# Matched with fullmatch: `$` would also accept a trailing newline.
MANIFEST_KEY = re.compile(r"models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/manifest\.json")
INCOMING_KEY = re.compile(r"incoming/(?P<name>[^/]+)/(?P<file>[^/]+\.onnx)")


@dataclass(frozen=True)
class Outcome:
    key: str
    status: str  # succeeded | failed | skipped | duplicate | ignored
    name: str | None = None
    version: int | None = None
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "name": self.name,
            "version": self.version,
            "reason": self.reason,
        }


class Deployer:
    def __init__(
        self,
        registry: Registry,
        incoming_alias: str = "staging",
        telemetry: metrics.Telemetry | None = None,
    ) -> None:
        self.registry = registry
        self.incoming_alias = incoming_alias
        self.telemetry = telemetry or metrics.Telemetry()

    # ------------------------------------------------------------ events
    def handle_event(self, event: Any) -> list[Outcome]:
        """One outcome per record. The runtime passes whatever JSON it was sent:
        anything that is not an S3 notification is one ignored outcome."""
        records = event.get("Records") if isinstance(event, dict) else None
        if not isinstance(records, list):
            return [self._ignored("", "not an S3 event notification: no Records list")]
        outcomes = []
        for record in records:
            found = created_object(record)
            if isinstance(found, str):
                outcomes.append(self._ignored("", found))
            else:
                outcomes.append(self.on_object(*found))
        return outcomes

    def on_object(self, bucket: str, key: str) -> Outcome:
        relative = self.registry.key_for_event(bucket, key)
        if relative is None:
            return self._ignored(key, "not under this registry")
        if match := MANIFEST_KEY.fullmatch(relative):
            version = version_number(match["version"])
            if version is None:
                return self._ignored(key, "its version is not a version number")
            return self.on_manifest(key, match["name"], version)
        if match := INCOMING_KEY.fullmatch(relative):
            return self.on_incoming(key, relative, match["name"])
        return self._ignored(
            key,
            "neither a manifest (models/NAME/versions/V/manifest.json) nor a raw upload "
            "(incoming/NAME/FILE.onnx, NAME matching [a-z0-9][a-z0-9._-]{0,63})",
        )

    # --------------------------------------------------------- manifests
    def on_manifest(self, key: str, name: str, version: int) -> Outcome:
        try:
            check_name(name)
        except InvalidInput as exc:
            return self._ignored(key, str(exc))
        try:
            deployment = deploy_version(self.registry, name, version, reason="deployer")
        except NotFound as exc:
            # Deleted since, or a stale or forged event. Writing a record here would
            # block the real manifest when it arrives, so nothing is written.
            return self._ignored(key, f"{key} does not exist: {exc}", name)
        return self._report(key, deployment)

    def _ignored(self, key: str, reason: str, name: str | None = None) -> Outcome:
        log.warning("deployer ignored %s: %s", key, reason)
        self.telemetry.ignored_event()
        return Outcome(key, "ignored", name, reason=reason)

    def _report(self, key: str, deployment: Deployment) -> Outcome:
        if not deployment.recorded:
            return Outcome(
                key,
                "duplicate",
                deployment.name,
                deployment.version,
                f"already {deployment.status}: {deployment.reason}",
            )
        self.telemetry.deployment(deployment.status, deployment.validation_seconds * 1000)
        return Outcome(
            key, deployment.status, deployment.name, deployment.version, deployment.reason
        )

    # ------------------------------------------------------ raw uploads
    def on_incoming(self, key: str, relative: str, name: str) -> Outcome:
        try:
            check_name(name)
        except InvalidInput as exc:
            return self._ignored(key, str(exc))
        head = self.registry.upload_info(relative)
        if head is None:
            return self._ignored(key, "the upload no longer exists", name)
        # The event's ETag can be stale (the key may have been overwritten since).
        etag = head.etag.strip('"')
        record_key = Registry.incoming_record_key(name, etag)
        earlier = self.registry.read_record(record_key)
        if earlier is not None:
            return Outcome(
                key,
                "duplicate",
                name,
                earlier.get("version"),
                f"upload {etag} already handled: {earlier['status']}",
            )
        existing = self._version_from_upload(name, etag)
        if existing is not None:
            deployment = deploy_version(self.registry, name, existing, reason="deployer")
            self.registry.write_record(record_key, deployment.as_json())
            return Outcome(
                key, "duplicate", name, existing, f"upload {etag} is already version {existing}"
            )
        with tempfile.TemporaryDirectory(prefix="maas-incoming-") as scratch:
            path = Path(scratch) / "model.onnx"
            self.registry.download(relative, path)
            deployment = self._publish_upload(path, name, relative, etag)
        # Reasons name the upload, never the scratch file it was checked as.
        deployment.reason = deployment.reason.replace(str(path), relative)
        for check in deployment.checks:
            check["detail"] = str(check.get("detail", "")).replace(str(path), relative)
        self.registry.write_record(record_key, deployment.as_json())
        return self._report(key, deployment)

    def _publish_upload(self, path: Path, name: str, relative: str, etag: str) -> Deployment:
        checks: list[dict[str, Any]] = []
        try:
            # One bounded child vets and smoke-tests it; the publish that follows reuses it.
            _, smoke = vet_upload(path)
        except MaasError as exc:
            return self._refused(name, Check("model", False, str(exc)), checks)
        checks.append(Check("model", True, "self-contained ONNX that loads").as_json())
        if not smoke.passed:
            return self._refused(name, smoke, checks)
        checks.append(smoke.as_json())
        sha256, _ = file_sha256(path)
        details = {
            "source": {
                "framework": "onnx",
                "file_sha256": sha256,
                "converter": None,
                "libraries": {"onnxruntime": onnxruntime.__version__, "maas": __version__},
                "upload": {"key": relative, "etag": etag},
            },
        }
        try:
            released = release(
                self.registry,
                path,
                name,
                alias=self.incoming_alias,
                details=details,
                reason="incoming upload",
            )
        except SignatureMismatch as exc:
            return self._refused(name, Check("signature", False, str(exc)), checks)
        except InvalidInput as exc:
            return self._refused(name, Check("verification", False, str(exc)), checks)
        deployment = released.deployment
        assert deployment is not None  # release deploys whenever it is given an alias
        deployment.checks = checks + deployment.checks
        return deployment

    def _refused(self, name: str, check: Check, checks: list[dict[str, Any]]) -> Deployment:
        log.error("raw upload for %s refused: %s: %s", name, check.name, check.detail)
        return Deployment(
            name, None, "failed", f"{check.name}: {check.detail}", [*checks, check.as_json()]
        )

    def _version_from_upload(self, name: str, etag: str) -> int | None:
        """A redelivered upload whose version was created but not yet recorded."""
        for version in reversed(self.registry.list_versions(name)):
            upload = self.registry.get_manifest(name, version)["source"].get("upload") or {}
            if upload.get("etag") == etag:
                return version
        return None


def created_object(record: Any) -> tuple[str, str] | str:
    """The bucket and URL-decoded key of an ObjectCreated record, or why it has none."""
    if not isinstance(record, dict):
        return "not an S3 event record"
    event_name = record.get("eventName")
    if not isinstance(event_name, str) or not event_name.startswith("ObjectCreated:"):
        return f"not an ObjectCreated event: {str(event_name)[:40]!r}"
    s3 = record.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    found = s3.get("object") if isinstance(s3, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = found.get("key") if isinstance(found, dict) else None
    if not isinstance(name, str) or not isinstance(key, str) or not key:
        return "no s3.bucket.name or s3.object.key string"
    return name, unquote_plus(key)
