"""Deployment records, written once per version (and per raw upload), and raw uploads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maas.errors import NotFound, PreconditionFailed
from maas.names import check_name
from maas.registry.versions import Versions
from maas.store import ObjectInfo


class Deployments(Versions):
    """What the deployer decided about each version, and the uploads it reads."""

    @staticmethod
    def deployment_key(name: str, version: int) -> str:
        return f"models/{check_name(name)}/deployments/{version}.json"

    @staticmethod
    def incoming_record_key(name: str, etag: str) -> str:
        # An ETag is quoted hex, or hex-N for multipart; keep only what a key may hold.
        clean = "".join(ch for ch in etag if ch.isalnum() or ch == "-")
        return f"models/{check_name(name)}/deployments/incoming-{clean or 'unknown'}.json"

    def read_record(self, key: str) -> dict[str, Any] | None:
        """A deployment record, or ``None`` when there is none yet."""
        try:
            document: dict[str, Any] = json.loads(self.store.get(key).data)
        except NotFound:
            return None
        return document

    def write_record(self, key: str, document: dict[str, Any]) -> bool:
        """Write a record once; False when a concurrent delivery wrote it first."""
        body = (json.dumps(document, indent=2) + "\n").encode()
        try:
            self.store.put(key, body, if_none_match=True)
        except PreconditionFailed:
            return False
        return True

    def upload_info(self, key: str) -> ObjectInfo | None:
        """Size and ETag of a raw upload, or ``None`` when it no longer exists."""
        return self.store.head(key)

    def download(self, key: str, path: Path) -> None:
        """Fetch a raw upload (or any registry object) into ``path``."""
        self.store.download_file(key, path)
