"""Versions: the key layout, reading committed versions, and publishing new ones.

Pure logic over a :class:`~maas.store.Store`; every key is built here (and in
:mod:`maas.registry.aliases`), from names checked before any I/O. Key layout
(under the store's root)::

    models/{name}/versions/{v}/claim.json          version-number claim, created exclusively
    models/{name}/versions/{v}/model.onnx          the model
    models/{name}/versions/{v}/manifest.json       the manifest, written last: the commit point
    models/{name}/aliases/{alias}.json             alias document, moved by compare-and-swap
    models/{name}/history/{time}-{alias}-{rnd}.json  one record per alias move, append-only
    models/{name}/deployments/{v}.json             the deployment record of a version
    models/{name}/deployments/incoming-{etag}.json the record of a raw upload
    incoming/{name}/{file}.onnx                    raw uploads for the deployer

A version exists for readers only once its manifest does; a claim without a
manifest (an abandoned or in-flight publish) is invisible and leaves a gap.
Publishing here is only inspect → claim → upload → commit: verifying a version
and moving aliases to it is :mod:`maas.promotion`'s job.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from maas import __version__
from maas.documents import (
    MANIFEST_SCHEMA,
    Manifest,
    ModelKind,
    decode,
    encode,
    iso,
    manifest_kind,
    utc_now,
    validate,
)
from maas.errors import Conflict, IntegrityError, InvalidInput, NotFound, PreconditionFailed
from maas.names import check_name
from maas.onnxfile import OnnxInfo, file_sha256, inspect_onnx
from maas.store import Progress, Store


def default_actor() -> str:
    """Who is moving things, for the history: explicit, the Lambda function, or user@host."""
    explicit = os.environ.get("MAAS_ACTOR")
    if explicit:
        return explicit
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        return f"lambda:{function}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


#: How a version is spelled in a key: ASCII decimal, no sign, no leading zero, and
#: short enough for int() (which refuses over 4,300 digits) and any real registry.
VERSION_SPELLING = re.compile(r"[1-9][0-9]{0,17}")


def version_number(text: str) -> int | None:
    """The version a key segment names, or ``None`` when it names none: ``01``,
    ``²`` or 5,000 digits are stray objects, not versions."""
    return int(text) if VERSION_SPELLING.fullmatch(text) else None


@dataclass(frozen=True)
class Published:
    name: str
    version: int
    manifest: Manifest


class Versions:
    """The versions and manifests of every model under one store."""

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        cas_attempts: int = 8,
        claim_attempts: int = 64,
    ) -> None:
        self.store = store
        self.actor = actor or default_actor()
        self.clock = clock
        self.cas_attempts = cas_attempts
        self.claim_attempts = claim_attempts

    @property
    def url(self) -> str:
        return self.store.url

    # ----------------------------------------------------------------- keys
    @staticmethod
    def versions_prefix(name: str) -> str:
        return f"models/{check_name(name)}/versions/"

    @classmethod
    def model_key(cls, name: str, version: int) -> str:
        return f"{cls.versions_prefix(name)}{version}/model.onnx"

    @classmethod
    def manifest_key(cls, name: str, version: int) -> str:
        return f"{cls.versions_prefix(name)}{version}/manifest.json"

    @classmethod
    def claim_key(cls, name: str, version: int) -> str:
        return f"{cls.versions_prefix(name)}{version}/claim.json"

    # -------------------------------------------------------------- the store
    def check_readable(self) -> None:
        """Raise :class:`StoreUnavailable` unless the registry answers a listing."""
        self.store.list_dirs("models/")

    def connect(self) -> None:
        """Open the store's connection now rather than on the first call (Lambda init)."""
        self.store.connect()

    def reconnect(self) -> None:
        """Fresh connections and credentials on the next call (after a SnapStart restore)."""
        self.store.reconnect()

    def key_for_event(self, bucket: str, key: str) -> str | None:
        """The registry key of an S3 notification's object; ``None`` when outside it."""
        return self.store.key_for_event(bucket, key)

    # -------------------------------------------------------------- reading
    def _version_keys(self, name: str) -> list[tuple[int, str]]:
        prefix = self.versions_prefix(name)
        found = []
        for key in self.store.list_keys(prefix):
            number, _, leaf = key[len(prefix) :].partition("/")
            version = version_number(number)
            if version is not None and leaf:
                found.append((version, leaf))
        return found

    def list_versions(self, name: str) -> list[int]:
        """Committed versions (those with a manifest), ascending."""
        return sorted({v for v, leaf in self._version_keys(name) if leaf == "manifest.json"})

    def latest_version(self, name: str) -> int | None:
        versions = self.list_versions(name)
        return versions[-1] if versions else None

    def list_models(self) -> list[str]:
        """Names that have at least one committed version."""
        names = []
        for name in self.store.list_dirs("models/"):
            try:
                check_name(name)
            except InvalidInput:
                continue  # not ours: never let a stray prefix break a listing
            if self.list_versions(name):
                names.append(name)
        return names

    def require_model(self, name: str) -> list[int]:
        versions = self.list_versions(name)
        if not versions:
            models = sorted(self.store.list_dirs("models/"))
            known = f"; it has {', '.join(models[:10])}" if models else "; it has no models"
            known += f" and {len(models) - 10} more" if len(models) > 10 else ""
            raise NotFound(f"model {name!r} not found in registry {self.url}{known}")
        return versions

    def get_manifest(self, name: str, version: int) -> Manifest:
        key = self.manifest_key(name, version)
        try:
            stored = self.store.get(key)
        except NotFound:
            self.require_model(name)
            raise NotFound(f"model {name!r} has no version {version}") from None
        manifest: Manifest = decode("manifest", stored.data, key)
        if manifest["name"] != name or manifest["version"] != version:
            raise IntegrityError(
                f"manifest {key} describes {manifest['name']}:{manifest['version']}, "
                f"not {name}:{version}"
            )
        return manifest

    def read_model(self, name: str, version: int, manifest: Manifest) -> bytes:
        """A version's model bytes, proven to be ``manifest``'s: one GET, nothing on disk.

        The serving path reads the model into memory anyway; the transfer
        manager's ``download_file`` would add a HEAD first, and re-reading the
        manifest another GET.
        """
        data = self.store.get(self.model_key(name, version)).data
        expected = manifest["model"]
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != expected["sha256"] or len(data) != expected["size"]:
            raise IntegrityError(
                f"{name}:{version} model bytes do not match the manifest "
                f"(got sha256 {sha256[:12]}..., {len(data)} bytes; manifest says "
                f"{expected['sha256'][:12]}..., {expected['size']} bytes): refusing to use it"
            )
        return data

    def kind(self, name: str, version: int | None = None) -> ModelKind:
        """What ``name`` is: the kind of ``version``, else of its latest version (an
        ensemble, or a model with bytes; one name may hold both, e.g. a fused version)."""
        if version is None:
            version = self.require_model(name)[-1]
        return manifest_kind(self.get_manifest(name, version))

    def fetch_model(
        self, name: str, version: int, dest: Path, progress: Progress | None = None
    ) -> Manifest:
        """Download a version's model to ``dest`` and prove it is the manifest's bytes.

        The bytes land in a temporary file beside ``dest`` and are renamed only
        once verified, so ``dest`` never holds an unverified model.
        """
        manifest = self.get_manifest(name, version)
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            self.store.download_file(self.model_key(name, version), partial, progress)
            sha256, size = file_sha256(partial)
            expected = manifest["model"]
            if sha256 != expected["sha256"] or size != expected["size"]:
                raise IntegrityError(
                    f"{name}:{version} model bytes do not match the manifest "
                    f"(got sha256 {sha256[:12]}..., {size} bytes; manifest says "
                    f"{expected['sha256'][:12]}..., {expected['size']} bytes): refusing to use it"
                )
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return manifest

    # ------------------------------------------------------------ publishing
    def build_manifest(
        self, name: str, version: int, info: OnnxInfo, details: Mapping[str, Any] | None = None
    ) -> Manifest:
        import onnxruntime

        manifest: Manifest = {
            "schema": MANIFEST_SCHEMA,
            "name": name,
            "version": version,
            "created_at": iso(self.clock()),
            "model": {"sha256": info.sha256, "size": info.size, "opset": info.opset},
            "inputs": [spec.as_json() for spec in info.inputs],
            "outputs": [spec.as_json() for spec in info.outputs],
            "precision": "fp32",
            "metrics": {},
            "labels": None,
            # A bare ONNX file comes with no reference outputs to check against.
            "golden_samples": [],
            "source": {
                "framework": "onnx",
                "file_sha256": info.sha256,
                "converter": None,
                "libraries": {"onnxruntime": onnxruntime.__version__, "maas": __version__},
            },
            "lineage": {"parent_version": None, "git_commit": None},
            "deploy": {"alias": None, "canary_weight": None},
        }
        manifest.update(details or {})
        return validate("manifest", manifest)  # type: ignore[no-any-return]

    def publish(
        self,
        path: Path,
        name: str,
        *,
        details: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        info: OnnxInfo | None = None,
    ) -> Published:
        """Inspect an ONNX file, claim the next version, upload it, commit its manifest.

        Nothing is visible to readers until the manifest is written, so a publish
        that fails at any step leaves at most an invisible claim behind. ``info``,
        when the caller already inspected these bytes, saves loading them again.
        """
        check_name(name)
        if info is None:
            info = inspect_onnx(path)
        # Bad metadata fails here, on a placeholder version, before anything is written.
        self.build_manifest(name, 1, info, details)
        version = self._claim_version(name)
        self.store.upload_file(self.model_key(name, version), path, progress)
        manifest = self.build_manifest(name, version, info, details)
        self.commit_manifest(manifest)
        return Published(name, version, manifest)

    def publish_manifest(self, name: str, details: Mapping[str, Any]) -> Published:
        """Claim the next version and commit a manifest that has no model bytes (an
        ensemble's). A manifest the schema refuses is refused before anything is written."""
        check_name(name)

        def manifest_for(version: int) -> Manifest:
            document = {
                "schema": MANIFEST_SCHEMA,
                "name": name,
                "version": version,
                "created_at": iso(self.clock()),
                **details,
            }
            return validate("manifest", document)  # type: ignore[no-any-return]

        manifest_for(1)
        version = self._claim_version(name)
        manifest = manifest_for(version)
        self.commit_manifest(manifest)
        return Published(name, version, manifest)

    def commit_manifest(self, manifest: Manifest) -> None:
        """Write a manifest exactly once: an existing version is never modified."""
        name, version = manifest["name"], manifest["version"]
        try:
            self.store.put(
                self.manifest_key(name, version), encode("manifest", manifest), if_none_match=True
            )
        except PreconditionFailed:
            raise Conflict(f"{name}:{version} already exists; versions are immutable") from None

    def _claim_version(self, name: str) -> int:
        """Allocate the next version number with an exclusive create.

        boto3's transfer manager cannot send If-None-Match, so the exclusivity
        lives in this small marker, claimed before the model is uploaded.
        """
        taken = [v for v, _ in self._version_keys(name)]
        candidate = max(taken, default=0) + 1
        # The id makes each claim's bytes unique, so the store can tell its own
        # write whose answer was lost from another publisher's claim.
        claim = {
            "by": self.actor,
            "at": iso(self.clock(), micro=True),
            "pid": os.getpid(),
            "id": uuid.uuid4().hex,
        }
        for _ in range(self.claim_attempts):
            try:
                self.store.put(
                    self.claim_key(name, candidate), encode_json(claim), if_none_match=True
                )
                return candidate
            except PreconditionFailed:
                candidate += 1
        raise Conflict(
            f"could not claim a version of {name!r} after "
            f"{self.claim_attempts} attempts: too many concurrent publishers"
        )


def encode_json(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")
