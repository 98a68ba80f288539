"""The storage interface the registry is written against.

A store is a flat key space of immutable-or-swapped blobs with exactly the
guarantees S3 gives: atomic whole-object writes, create-if-absent
(``If-None-Match: *``) and compare-and-swap on the ETag (``If-Match``).
One backend per file, the Powertools way: :mod:`maas.store.s3` maps them onto
S3, :mod:`maas.store.local` gives the same guarantees on a local directory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from maas.errors import InvalidInput

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the previous call."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str


class Store(ABC):
    """Keys are ``/``-separated paths relative to the store's root (its URL)."""

    url: str

    @abstractmethod
    def get(self, key: str) -> StoredObject:
        """Read a whole object; :class:`NotFound` when it is absent."""

    @abstractmethod
    def get_if_changed(self, key: str, etag: str) -> StoredObject | None:
        """Conditional read: ``None`` when the object still has ``etag``."""

    @abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write a whole object atomically and return its new ETag.

        ``if_none_match`` creates only if the key is absent; ``if_match``
        replaces only if the current ETag equals it. Either failing raises
        :class:`PreconditionFailed` and changes nothing.
        """

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag of an object, or ``None`` when it is absent."""

    @abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix``, in lexicographic order."""

    @abstractmethod
    def list_dirs(self, prefix: str) -> list[str]:
        """The next path segment of every key under ``prefix`` (which ends in ``/``)."""

    @abstractmethod
    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        """Create ``key`` from a (possibly large) file, unless it exists
        (:class:`PreconditionFailed`); readers never see a partial object."""

    @abstractmethod
    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        """Fetch an object into ``path``; ``path`` never holds a partial object."""

    def connect(self) -> None:
        """Open what the first call would (the S3 client: boto3's imports, endpoint and
        credential resolution) now, at init, where SnapStart and provisioned
        concurrency keep it. Stores without connections have nothing to do."""
        return None

    def reconnect(self) -> None:
        """Drop connections and credentials (after a SnapStart restore); the next
        call opens fresh ones. Stores without connections have nothing to do."""
        return None

    def require_existing(self) -> None:
        """Raise :class:`NotFound` when this store is plainly not a registry (a local
        path that does not exist); stores that cannot tell cheaply accept."""
        return None

    def key_for_event(self, bucket: str, key: str) -> str | None:
        """The store key of an S3 notification's object, or ``None`` when the
        object lies outside this store (another bucket or prefix)."""
        return key


def check_key(key: str) -> str:
    """Keys are built by the registry from checked names; this is defence in depth."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid storage key {key!r}")
    return key
