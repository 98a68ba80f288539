"""The storage interface the registry is written against, and its two backends.

A store is a flat key space of immutable-or-swapped blobs with exactly the
guarantees S3 gives: atomic whole-object writes, create-if-absent
(``If-None-Match: *``) and compare-and-swap on the ETag (``If-Match``).
:class:`S3Store` maps them onto S3; :class:`LocalStore` gives the same
guarantees on a local directory and is the real store for local use.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from maas.errors import InvalidInput, NotFound, PreconditionFailed, StoreUnavailable

if TYPE_CHECKING:
    from botocore.config import _RetryDict
    from mypy_boto3_s3 import S3Client

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
        """Store a (possibly large) file; readers never see a partial object."""

    @abstractmethod
    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        """Fetch an object into ``path``; ``path`` never holds a partial object."""


def check_key(key: str) -> str:
    """Keys are built by the registry from checked names; this is defence in depth."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid storage key {key!r}")
    return key


# --------------------------------------------------------------------------- S3

#: The one place botocore's retry behaviour is configured. Standard mode retries
#: throttling and transient errors with jittered backoff; the short timeouts
#: keep a Lambda from hanging on S3 past API Gateway's 30 s integration limit.
S3_RETRY_MODE = "standard"
S3_MAX_ATTEMPTS = 5
S3_CONNECT_TIMEOUT = 5.0
S3_READ_TIMEOUT = 20.0


def s3_retries() -> _RetryDict:
    """Standard mode unless the operator set AWS_RETRY_MODE / AWS_MAX_ATTEMPTS,
    the environment variables botocore documents for exactly this."""
    mode = os.environ.get("AWS_RETRY_MODE", S3_RETRY_MODE)
    if mode not in ("standard", "adaptive", "legacy"):
        raise InvalidInput(f"AWS_RETRY_MODE={mode!r}: use standard or adaptive")
    return {
        "mode": mode,  # type: ignore[typeddict-item]
        "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", S3_MAX_ATTEMPTS)),
    }


def default_s3_client() -> S3Client:
    """An S3 client with maas's retry policy.

    boto3 itself honours ``AWS_ENDPOINT_URL_S3`` (and ``AWS_ENDPOINT_URL``), so
    the same code runs against moto server, MinIO or LocalStack unchanged.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries=s3_retries(), connect_timeout=S3_CONNECT_TIMEOUT, read_timeout=S3_READ_TIMEOUT
    )
    return boto3.client("s3", config=config)


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        if not bucket:
            raise InvalidInput("an s3:// registry URL needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client

    @property
    def client(self) -> S3Client:
        # Built on first use, not at import or construction: Lambda init stays
        # cheap and tests can inject a client (or set the endpoint) first.
        if self._client is None:
            self._client = default_s3_client()
        return self._client

    def reset_client(self) -> None:
        """Forget the client (e.g. after a SnapStart restore); the next call builds one."""
        self._client = None

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    @contextlib.contextmanager
    def _translate(self, key: str) -> Iterator[None]:
        """Turn botocore's exceptions into the maas hierarchy, in one place."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            where = f"{self.url}/{key}"
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"{where} does not exist") from exc
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (
                409,
                412,
            ):
                raise PreconditionFailed(f"conditional write to {where} did not apply") from exc
            if code == "NoSuchBucket":
                raise StoreUnavailable(f"bucket {self.bucket!r} does not exist") from exc
            raise StoreUnavailable(
                f"S3 {code or status} on {where}: {error.get('Message', exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"registry {self.url} unreachable: {exc}") from exc

    def get(self, key: str) -> StoredObject:
        with self._translate(key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return StoredObject(response["Body"].read(), response["ETag"])

    def get_if_changed(self, key: str, etag: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        with self._translate(key):
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=self._key(key), IfNoneMatch=etag
                )
            except ClientError as exc:
                # 304 Not Modified: S3 sent no body, and nothing needs reloading.
                if exc.response.get("Error", {}).get("Code") in ("304", "NotModified"):
                    return None
                raise
            return StoredObject(response["Body"].read(), response["ETag"])

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        conditions: dict[str, str] = {}
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        if if_match is not None:
            conditions["IfMatch"] = if_match
        try:
            with self._translate(key):
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=data,
                    ContentType="application/json"
                    if key.endswith(".json")
                    else "binary/octet-stream",
                    **conditions,  # type: ignore[arg-type]
                )
        except NotFound as exc:
            # S3 answers If-Match on an absent key with 404: the swap did not apply.
            raise PreconditionFailed(str(exc)) from exc
        return response["ETag"]

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._translate(key):
                response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            return None
        return ObjectInfo(response["ContentLength"], response["ETag"])

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        with self._translate(prefix or "."):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    yield self._relative(item["Key"])

    def list_dirs(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        names: list[str] = []
        with self._translate(prefix or "."):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(full) :].rstrip("/"))
        return sorted(names)

    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        # boto3's transfer manager: multipart and parallel for large models.
        # S3 only makes an object visible once its upload completes.
        with self._translate(key):
            self.client.upload_file(str(path), self.bucket, self._key(key), Callback=progress)

    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        # The transfer manager writes to a temporary name and renames on success.
        with self._translate(key):
            self.client.download_file(self.bucket, self._key(key), str(path), Callback=progress)


# ------------------------------------------------------------------------ local


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(Store):
    """A directory with S3's guarantees.

    Writes go to a hidden temporary file in the target directory, are fsynced,
    then appear atomically: ``os.link`` for create-if-absent (it fails if the
    name exists), ``os.replace`` otherwise. Compare-and-swap holds an exclusive
    ``flock`` on a per-key lock file while it compares and replaces, so it is
    safe across threads and processes on one machine. Names starting with ``.``
    are internal and never listed.
    """

    _CHUNK = 1 << 20

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextlib.contextmanager
    def _io(self, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise NotFound(f"{self.url}/{key} does not exist") from exc
        except NotADirectoryError as exc:
            raise NotFound(f"{self.url}/{key} does not exist") from exc
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise PreconditionFailed(f"{self.url}/{key} already exists") from exc
            raise StoreUnavailable(f"I/O error on {self.url}/{key}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        with (locks / f"{name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _temp_beside(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.parent / f".tmp-{path.name}-{uuid.uuid4().hex}"

    def _publish(
        self, temp: Path, path: Path, key: str, if_none_match: bool, if_match: str | None
    ) -> None:
        if if_none_match:
            os.link(temp, path)  # atomic create-if-absent; EEXIST if taken
        else:
            with self._locked(key):
                if if_match is not None:
                    current = self.head(key)
                    if current is None or current.etag != if_match:
                        raise PreconditionFailed(
                            f"{self.url}/{key} changed since it was read (ETag mismatch)"
                        )
                temp.replace(path)
        _fsync_dir(path.parent)

    def get(self, key: str) -> StoredObject:
        with self._io(key):
            data = self._path(key).read_bytes()
        return StoredObject(data, _etag(data))

    def get_if_changed(self, key: str, etag: str) -> StoredObject | None:
        found = self.get(key)
        return None if found.etag == etag else found

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        path = self._path(key)
        with self._io(key):
            temp = self._temp_beside(path)
            try:
                with temp.open("wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                self._publish(temp, path, key, if_none_match, if_match)
            finally:
                temp.unlink(missing_ok=True)
        return _etag(data)

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            with self._io(key):
                digest = hashlib.md5(usedforsecurity=False)
                size = 0
                with path.open("rb") as handle:
                    while chunk := handle.read(self._CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
        except NotFound:
            return None
        return ObjectInfo(size, f'"{digest.hexdigest()}"')

    def list_keys(self, prefix: str) -> Iterator[str]:
        # Walk only the directory the prefix names, then filter like S3 does.
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        found: list[str] = []
        for directory, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def list_dirs(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        try:
            entries = list(base.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StoreUnavailable(f"I/O error listing {self.url}/{prefix}: {exc}") from exc
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))

    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        target = self._path(key)
        with self._io(key):
            temp = self._temp_beside(target)
            try:
                _copy(path, temp, progress)
                self._publish(temp, target, key, if_none_match=False, if_match=None)
            finally:
                temp.unlink(missing_ok=True)

    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        source = self._path(key)
        with self._io(key):
            if not source.is_file():
                raise FileNotFoundError(source)
            temp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex}"
            try:
                _copy(source, temp, progress)
                temp.replace(path)
            finally:
                temp.unlink(missing_ok=True)


def _copy(source: Path, target: Path, progress: Progress | None) -> None:
    with source.open("rb") as reader, target.open("wb") as writer:
        if progress is None:
            shutil.copyfileobj(reader, writer, LocalStore._CHUNK)
        else:
            while chunk := reader.read(LocalStore._CHUNK):
                writer.write(chunk)
                progress(len(chunk))
        writer.flush()
        os.fsync(writer.fileno())


# ----------------------------------------------------------------- addressing

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
