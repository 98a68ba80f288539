"""The model registry: immutable integer versions, manifests, aliases and their history.

Pure logic over a :class:`~maas.store.Store`; every key it touches is built
here, from names checked before any I/O. Key layout (under the store's root)::

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
"""

from __future__ import annotations

import getpass
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas import __version__
from maas.documents import (
    MANIFEST_SCHEMA,
    AliasDoc,
    HistoryRecord,
    Manifest,
    decode,
    encode,
    iso,
    utc_now,
    validate,
)
from maas.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelRefused,
    NotFound,
    PreconditionFailed,
)
from maas.names import ModelRef, check_alias, check_name
from maas.onnxfile import OnnxInfo, file_sha256, inspect_onnx
from maas.store import Progress, Store, open_store, registry_url

if TYPE_CHECKING:
    from maas.promotion import Deployment

DEFAULT_ALIAS = "production"


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


@dataclass(frozen=True)
class Published:
    name: str
    version: int
    manifest: Manifest
    alias: AliasDoc | None = None
    deployment: Deployment | None = None  # with --alias: the in-process deployment


class Registry:
    """Versions, manifests and aliases of every model under one store."""

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

    @staticmethod
    def alias_key(name: str, alias: str) -> str:
        return f"models/{check_name(name)}/aliases/{check_alias(alias)}.json"

    @staticmethod
    def history_prefix(name: str) -> str:
        return f"models/{check_name(name)}/history/"

    @staticmethod
    def deployment_key(name: str, version: int) -> str:
        return f"models/{check_name(name)}/deployments/{version}.json"

    # -------------------------------------------------------------- reading
    def _version_keys(self, name: str) -> list[tuple[int, str]]:
        prefix = self.versions_prefix(name)
        found = []
        for key in self.store.list_keys(prefix):
            number, _, leaf = key[len(prefix) :].partition("/")
            if number.isdigit() and leaf:
                found.append((int(number), leaf))
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
            raise NotFound(f"model {name!r} not found in registry {self.url}")
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

    def read_alias(self, name: str, alias: str) -> tuple[AliasDoc, str] | None:
        """The alias document and its ETag, or ``None`` when the alias does not exist."""
        key = self.alias_key(name, alias)
        try:
            stored = self.store.get(key)
        except NotFound:
            return None
        return decode("alias", stored.data, key), stored.etag

    def get_alias(self, name: str, alias: str) -> AliasDoc:
        found = self.read_alias(name, alias)
        if found is None:
            self.require_model(name)
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        return found[0]

    def list_aliases(self, name: str) -> dict[str, AliasDoc]:
        prefix = f"models/{check_name(name)}/aliases/"
        aliases: dict[str, AliasDoc] = {}
        for key in self.store.list_keys(prefix):
            alias = key[len(prefix) :].removesuffix(".json")
            found = self.read_alias(name, alias) if key.endswith(".json") else None
            if found is not None:
                aliases[alias] = found[0]
        return aliases

    def resolve(
        self, ref: ModelRef, default_alias: str = DEFAULT_ALIAS
    ) -> tuple[int, AliasDoc | None]:
        """The version a reference names. A bare name goes through ``default_alias``;
        when that alias is missing this is NotFound, never "the highest version"."""
        if ref.version is not None:
            self.get_manifest(ref.name, ref.version)
            return ref.version, None
        alias = ref.alias or default_alias
        found = self.read_alias(ref.name, alias)
        if found is None:
            self.require_model(ref.name)
            raise NotFound(
                f"model {ref.name!r} has no alias {alias!r}"
                + ("" if ref.alias else " (the default alias for a bare model name)")
            )
        return found[0]["version"], found[0]

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

    def history(self, name: str, alias: str | None = None) -> list[HistoryRecord]:
        """Alias moves, oldest first (keys sort by time)."""
        prefix = self.history_prefix(name)
        records: list[HistoryRecord] = []
        for key in self.store.list_keys(prefix):
            record: HistoryRecord = decode("history", self.store.get(key).data, key)
            if alias is None or record["alias"] == alias:
                records.append(record)
        return records

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
        alias: str | None = None,
        details: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        reason: str | None = None,
    ) -> Published:
        """Vet an ONNX file, claim the next version, upload it, commit its manifest.

        Nothing is visible to readers until the manifest is written, so a publish
        that fails at any step leaves at most an invisible claim behind.
        """
        check_name(name)
        if alias is not None:
            check_alias(alias)
        from maas.model_checks import verify_model
        from maas.promotion import deploy_version

        info = inspect_onnx(path)
        merged = dict(details or {})
        if alias is not None:
            merged.setdefault("deploy", {"alias": alias, "canary_weight": None})
        # The same verification the deployer runs, on the local file and a draft
        # manifest (placeholder version), so a bad model or bad metadata is
        # refused before anything is written.
        verification = verify_model(path, self.build_manifest(name, 1, info, merged), info)
        if not verification.passed:
            raise ModelRefused(f"{path} refused: {verification.reason}")
        version = self._claim_version(name)
        self.store.upload_file(self.model_key(name, version), path, progress)
        manifest = self.build_manifest(name, version, info, merged)
        self.commit_manifest(manifest)
        if alias is None:
            return Published(name, version, manifest)
        # Deploy in-process with the deployer's own code; when the deployer later
        # sees this manifest, it finds the deployment record and does nothing.
        deployment = deploy_version(self, name, version, reason=reason or "publish")
        return Published(name, version, manifest, deployment.alias, deployment)

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
        claim = {"by": self.actor, "at": iso(self.clock(), micro=True), "pid": os.getpid()}
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

    # -------------------------------------------------------------- aliases
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        canary: int | None = None,
        weight: float | None = None,
        reason: str | None = None,
    ) -> AliasDoc:
        """Point ``alias`` at ``version`` (optionally with a canary) by compare-and-swap.

        Setting an alias without a canary clears any canary.
        """
        check_alias(alias)
        self.get_manifest(name, version)
        canary_doc: dict[str, Any] | None = None
        if (canary is None) != (weight is None):
            raise InvalidInput("a canary needs both a version and a weight")
        if canary is not None and weight is not None:
            if not 0.0 < weight < 1.0:
                raise InvalidInput(f"canary weight {weight} must be strictly between 0 and 1")
            if canary == version:
                raise InvalidInput(f"canary version {canary} is the alias's own version")
            self.get_manifest(name, canary)
            canary_doc = {"version": canary, "weight": weight}

        def change(current: AliasDoc | None) -> AliasDoc:
            if current is None:
                previous = None
            elif current["version"] == version:
                previous = current["previous"]  # only the canary changes
            else:
                previous = current["version"]
            return self.alias_document(alias, version, canary_doc, previous)

        return self.swap_alias(name, alias, change, action="move", reason=reason)

    def rollback(
        self, name: str, alias: str = DEFAULT_ALIAS, reason: str | None = None
    ) -> AliasDoc:
        """Move ``alias`` back to its ``previous`` version and clear any canary.

        The new ``previous`` is the target before that one, found by replaying
        the alias's history as a stack (moves push, rollbacks pop), so repeated
        rollbacks walk back one step at a time.
        """
        check_alias(alias)

        def change(current: AliasDoc | None) -> AliasDoc:
            if current is None:
                self.require_model(name)
                raise NotFound(f"model {name!r} has no alias {alias!r} to roll back")
            target = current["previous"]
            if target is None:
                raise NotFound(
                    f"alias {alias!r} of {name!r} has no previous version to roll back to"
                )
            stack = self._alias_stack(name, alias)
            if stack and stack[-1] == current["version"]:
                stack.pop()
            while stack and stack[-1] != target:
                stack.pop()
            previous = stack[-2] if len(stack) >= 2 else None
            return self.alias_document(alias, target, None, previous)

        return self.swap_alias(name, alias, change, action="rollback", reason=reason or "rollback")

    def rolled_back_from(self, name: str, alias: str) -> set[int]:
        """Versions this alias was rolled back away from."""
        return {
            r["from"]
            for r in self.history(name, alias)
            if r.get("action") == "rollback" and r["from"] is not None
        }

    def alias_document(
        self, alias: str, version: int, canary: dict[str, Any] | None, previous: int | None
    ) -> AliasDoc:
        return {
            "alias": alias,
            "version": version,
            "canary": canary,
            "previous": previous,
            "updated_at": iso(self.clock(), micro=True),
        }

    def _alias_stack(self, name: str, alias: str) -> list[int]:
        stack: list[int] = []
        for record in self.history(name, alias):
            if record.get("action") == "rollback":
                if stack:
                    stack.pop()
            elif not stack or stack[-1] != record["to"]:
                stack.append(record["to"])
        return stack

    def swap_alias(
        self,
        name: str,
        alias: str,
        change: Callable[[AliasDoc | None], AliasDoc],
        *,
        action: str,
        reason: str | None,
    ) -> AliasDoc:
        """Compare-and-swap the alias document to ``change(current)``, retrying on races.

        ``change`` sees the document as just read; it may raise to abandon the
        move, in which case nothing is written.
        """
        key = self.alias_key(name, alias)
        for attempt in range(self.cas_attempts):
            found = self.read_alias(name, alias)
            current, etag = found if found is not None else (None, None)
            document = change(current)
            try:
                if etag is None:
                    self.store.put(key, encode("alias", document), if_none_match=True)
                else:
                    self.store.put(key, encode("alias", document), if_match=etag)
            except PreconditionFailed:
                # Someone else moved it between our read and write: re-read and retry.
                time.sleep(random.uniform(0, min(0.2, 0.01 * (2**attempt))))
                continue
            self._record(name, alias, current, document, action, reason)
            return document
        raise Conflict(
            f"alias {alias!r} of {name!r} kept changing under us; "
            f"gave up after {self.cas_attempts} compare-and-swap attempts"
        )

    def _record(
        self,
        name: str,
        alias: str,
        before: AliasDoc | None,
        after: AliasDoc,
        action: str,
        reason: str | None,
    ) -> None:
        # The move's time is the alias document's, stamped before its compare-and-swap:
        # a clock read here, after the write, could order two racing moves backwards.
        moved_at = datetime.fromisoformat(after["updated_at"].replace("Z", "+00:00"))
        record: HistoryRecord = {
            "alias": alias,
            "from": before["version"] if before else None,
            "to": after["version"],
            "canary": after["canary"],
            "at": after["updated_at"],
            "by": self.actor,
            "reason": reason,
            "action": action,
        }
        stamp = moved_at.strftime("%Y%m%dT%H%M%S.%fZ")
        key = f"{self.history_prefix(name)}{stamp}-{alias}-{uuid.uuid4().hex[:12]}.json"
        self.store.put(key, encode("history", record), if_none_match=True)


def encode_json(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def open_registry(url: str | None = None) -> Registry:
    """The registry named by ``url``, else ``MAAS_REGISTRY``, else ``.maas/registry``."""
    return Registry(open_store(registry_url(url)))
