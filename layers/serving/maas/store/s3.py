"""The S3 backend: boto3 behind the :class:`~maas.store.base.Store` interface."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from maas.errors import InvalidInput, NotFound, PreconditionFailed, StoreUnavailable
from maas.store.base import ObjectInfo, Progress, Store, StoredObject, check_key
from maas.store.s3_upload import upload_file_if_absent

if TYPE_CHECKING:
    from botocore.config import _RetryDict
    from mypy_boto3_s3 import S3Client


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
    raw = os.environ.get("AWS_MAX_ATTEMPTS") or str(S3_MAX_ATTEMPTS)
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"AWS_MAX_ATTEMPTS={raw!r} must be a positive integer")
    # AWS_MAX_ATTEMPTS counts every attempt; Config's "max_attempts" would count
    # retries only (one attempt more), so the total is passed as botocore names it.
    return {"mode": mode, "total_max_attempts": int(raw)}  # type: ignore[typeddict-item]


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
        # Built by connect() (the Lambda entry calls it at init) or on first use,
        # never at import or construction: tests can inject a client (or set the
        # endpoint) first.
        if self._client is None:
            self._client = default_s3_client()
        return self._client

    def connect(self) -> None:
        if self._client is None:
            self._client = default_s3_client()

    def reconnect(self) -> None:
        self._client = None

    def key_for_event(self, bucket: str, key: str) -> str | None:
        if bucket != self.bucket:
            return None
        prefix = f"{self.prefix}/" if self.prefix else ""
        return key[len(prefix) :] if key.startswith(prefix) else None

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    @contextlib.contextmanager
    def _translate(self, key: str) -> Iterator[None]:
        """Turn botocore's exceptions into the maas hierarchy, in one place."""
        from boto3.exceptions import RetriesExceededError, S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except RetriesExceededError as exc:
            # boto3's transfer manager re-tries a download's read timeouts itself,
            # then wraps the last one in its own class, which is no BotoCoreError.
            cause = getattr(exc, "last_exception", exc)
            raise StoreUnavailable(f"registry {self.url} unreachable: {cause}") from exc
        except S3UploadFailedError as exc:
            # ... and wraps an upload's ClientError (SlowDown, InternalError, ...).
            raise StoreUnavailable(f"upload to {self.url}/{key} failed: {exc}") from exc
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
        except PreconditionFailed as exc:
            etag = self._own_write(key, data, exc)
            if etag is None:
                raise
            return etag
        return response["ETag"]

    def _own_write(self, key: str, data: bytes, refused: PreconditionFailed) -> str | None:
        """The ETag of ``data`` at ``key`` when a conditional write was refused only
        because an earlier attempt of the same call applied it.

        A timeout can strike after S3 wrote the object; botocore then retries the
        same conditional PUT, which S3 refuses (412). A refusal on a retry that
        finds exactly our bytes is our own write: what maas writes conditionally
        carries a time or a random id, so other bytes than ours would differ.
        """
        from botocore.exceptions import ClientError

        cause = refused.__cause__
        if not isinstance(cause, ClientError):
            return None
        if not cause.response.get("ResponseMetadata", {}).get("RetryAttempts"):
            return None
        try:
            current = self.get(key)
        except NotFound:
            return None
        return current.etag if current.data == data else None

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
        # Model files live under the write-once versions/ prefix, whose bucket policy
        # refuses any creation without If-None-Match: boto3's transfer manager cannot
        # send it, so the upload is our own PutObject or multipart (see s3_upload).
        try:
            with self._translate(key):
                upload_file_if_absent(self.client, self.bucket, self._key(key), path, progress)
        except PreconditionFailed:
            # A retry after S3 applied our write but its answer was lost meets our
            # own object: the same bytes mean the upload happened.
            if not self._holds_file(key, path):
                raise

    def _holds_file(self, key: str, path: Path) -> bool:
        import hashlib

        local = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                local.update(chunk)
        stored = hashlib.sha256()
        with self._translate(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            while chunk := body.read(1 << 20):
                stored.update(chunk)
        return stored.digest() == local.digest()

    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        # The transfer manager writes to a temporary name and renames on success.
        with self._translate(key):
            self.client.download_file(self.bucket, self._key(key), str(path), Callback=progress)
