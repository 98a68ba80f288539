"""Where a registry lives: URL parsing and :func:`open_store`, over one backend per file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from maas.errors import InvalidInput
from maas.store.base import ObjectInfo, Progress, Store, StoredObject, check_key
from maas.store.local import LocalStore
from maas.store.s3 import S3Store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_REGISTRY",
    "LocalStore",
    "ObjectInfo",
    "Progress",
    "S3Store",
    "Store",
    "StoredObject",
    "check_key",
    "open_store",
    "registry_url",
]


DEFAULT_REGISTRY = ".maas/registry"


def registry_url(flag: str | None = None) -> str:
    """``--registry`` wins, then ``MAAS_REGISTRY``, then ``.maas/registry`` in the cwd."""
    return flag or os.environ.get("MAAS_REGISTRY") or DEFAULT_REGISTRY


def open_store(url: str, s3_client: S3Client | None = None) -> Store:
    """``s3://BUCKET[/PREFIX]``, ``file://PATH`` or a plain directory path."""
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if parsed.query or parsed.fragment:
            raise InvalidInput(f"invalid registry URL {url!r}: no query or fragment allowed")
        return S3Store(parsed.netloc, parsed.path, client=s3_client)
    if url.startswith("file://"):
        path = url[len("file://") :]
        if not path:
            raise InvalidInput(f"invalid registry URL {url!r}: file:// needs a path")
        return LocalStore(path)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidInput(
            f"unsupported registry URL scheme {scheme!r}: use s3://BUCKET[/PREFIX], "
            "file://PATH or a directory path"
        )
    return LocalStore(url)
