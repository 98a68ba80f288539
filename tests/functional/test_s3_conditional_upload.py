"""upload_file_if_absent on moto: every object-creating request carries If-None-Match.

The registry bucket's policy denies PutObject and CompleteMultipartUpload under
models/*/versions/ without that header (tests/infra/test_bucket_policy.py), so
these tests watch the requests botocore signs, not only the results.

moto 5 (checked with 5.2.5) honours If-None-Match on both PutObject and
CompleteMultipartUpload: a completion onto an existing key answers 412
PreconditionFailed, as S3 does, and leaves the multipart upload pending (S3
keeps it too until it is aborted), which is why the function aborts it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from maas.store import s3_upload as s3_conditional_upload
from maas.store.s3_upload import MIN_PART_SIZE, upload_file_if_absent
from tests.support import onnx_models


class Sizes(TypedDict, total=False):
    multipart_threshold: int
    part_size: int


KEY = "models/digits/versions/1/model.onnx"
#: Parts of S3's minimum size keep the multipart files small (moto enforces it too).
PART = MIN_PART_SIZE
MULTIPART: Sizes = {"multipart_threshold": PART, "part_size": PART}


class Requests:
    """The S3 operations a client signs, with their If-None-Match header."""

    def __init__(self, client: Any) -> None:
        self.seen: list[tuple[str, str | None]] = []
        client.meta.events.register("before-sign.s3", self._record)

    def _record(self, request: Any, event_name: str, **_: Any) -> None:
        self.seen.append((event_name.rsplit(".", 1)[-1], request.headers.get("If-None-Match")))

    def operations(self) -> list[str]:
        return [name for name, _ in self.seen]

    def header(self, operation: str) -> list[str | None]:
        return [value for name, value in self.seen if name == operation]


@pytest.fixture
def client(s3_bucket: str) -> Any:
    return boto3.client("s3")


@pytest.fixture(scope="module")
def large_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX model of about 11.8 MB: three parts of 5 MiB, the last shorter."""
    path = onnx_models.save(
        onnx_models.digits_mlp(seed=3, hidden=40_000),
        tmp_path_factory.mktemp("large") / "large.onnx",
    )
    assert 2 * PART < path.stat().st_size < 3 * PART
    return path


@pytest.fixture(scope="module")
def other_large_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_models.save(
        onnx_models.digits_mlp(seed=4, hidden=40_000),
        tmp_path_factory.mktemp("large-b") / "large-b.onnx",
    )


def stored(client: Any, bucket: str, key: str = KEY) -> bytes:
    data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def pending_uploads(client: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_small_file_is_one_put_with_if_none_match(
    client: Any, s3_bucket: str, onnx_model: Path
) -> None:
    requests = Requests(client)
    moved: list[int] = []
    etag = upload_file_if_absent(client, s3_bucket, KEY, onnx_model, moved.append)
    assert requests.seen == [("PutObject", "*")]
    assert stored(client, s3_bucket) == onnx_model.read_bytes()
    assert etag == client.head_object(Bucket=s3_bucket, Key=KEY)["ETag"]
    assert sum(moved) == onnx_model.stat().st_size


def test_large_file_is_multipart_completed_with_if_none_match(
    client: Any, s3_bucket: str, large_model: Path
) -> None:
    requests = Requests(client)
    moved: list[int] = []
    etag = upload_file_if_absent(client, s3_bucket, KEY, large_model, moved.append, **MULTIPART)
    assert requests.operations() == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    assert requests.header("CompleteMultipartUpload") == ["*"]
    size = large_model.stat().st_size
    assert moved == [PART, PART, size - 2 * PART]  # one call per part
    assert hashlib.sha256(stored(client, s3_bucket)).hexdigest() == sha256(large_model)
    assert etag.endswith('-3"')  # S3's multipart ETag: digest of the parts' digests, "-N"
    assert pending_uploads(client, s3_bucket) == []


@pytest.mark.parametrize("path_kind", ["single put", "multipart"])
def test_a_second_upload_to_the_key_is_refused_and_changes_nothing(
    client: Any,
    s3_bucket: str,
    large_model: Path,
    other_large_model: Path,
    path_kind: str,
) -> None:
    options: Sizes = MULTIPART if path_kind == "multipart" else {"multipart_threshold": 64 * 2**20}
    upload_file_if_absent(client, s3_bucket, KEY, large_model, **options)
    with pytest.raises(ClientError) as refused:
        upload_file_if_absent(client, s3_bucket, KEY, other_large_model, **options)
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert hashlib.sha256(stored(client, s3_bucket)).hexdigest() == sha256(large_model)
    assert pending_uploads(client, s3_bucket) == []  # the refused multipart upload was aborted


@pytest.fixture
def fail_second_part(client: Any) -> Iterator[list[int]]:
    """A connection lost on the second UploadPart (raised before botocore sends it)."""
    parts: list[int] = []

    def fail(params: dict[str, Any], **_: Any) -> None:
        parts.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    client.meta.events.register("before-parameter-build.s3.UploadPart", fail)
    yield parts
    client.meta.events.unregister("before-parameter-build.s3.UploadPart", fail)


def test_a_failure_mid_upload_leaves_no_object_and_no_pending_upload(
    client: Any, s3_bucket: str, large_model: Path, fail_second_part: list[int]
) -> None:
    requests = Requests(client)
    moved: list[int] = []
    with pytest.raises(EndpointConnectionError):
        upload_file_if_absent(client, s3_bucket, KEY, large_model, moved.append, **MULTIPART)
    assert fail_second_part == [1, 2]
    assert moved == [PART]  # progress counts only the part that arrived
    assert "AbortMultipartUpload" in requests.operations()
    assert "CompleteMultipartUpload" not in requests.operations()
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket)
    assert pending_uploads(client, s3_bucket) == []


def test_a_failed_abort_does_not_hide_the_error_that_stopped_the_upload(
    client: Any, s3_bucket: str, large_model: Path, fail_second_part: list[int]
) -> None:
    def abort_fails(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://abort.example")

    client.meta.events.register("before-parameter-build.s3.AbortMultipartUpload", abort_fails)
    with pytest.raises(EndpointConnectionError) as raised:
        upload_file_if_absent(client, s3_bucket, KEY, large_model, **MULTIPART)
    assert "s3.amazonaws.com" in str(raised.value)  # the part's error, not the abort's
    # The upload stays pending for the bucket's AbortIncompleteMultipartUpload rule.
    assert pending_uploads(client, s3_bucket) == [KEY]


def test_parts_grow_to_stay_within_the_part_limit(
    client: Any, s3_bucket: str, large_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_conditional_upload, "MAX_PARTS", 2)
    moved: list[int] = []
    upload_file_if_absent(client, s3_bucket, KEY, large_model, moved.append, **MULTIPART)
    assert len(moved) == 2 and sum(moved) == large_model.stat().st_size
    assert stored(client, s3_bucket) == large_model.read_bytes()


def test_an_empty_file_is_created(client: Any, s3_bucket: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    moved: list[int] = []
    upload_file_if_absent(client, s3_bucket, KEY, empty, moved.append)
    assert stored(client, s3_bucket) == b""
    assert moved == [0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"part_size": PART - 1}, "minimum part size"),
        ({"multipart_threshold": 0}, "multipart_threshold"),
        ({"multipart_threshold": 5 * 2**30 + 1}, "multipart_threshold"),
    ],
)
def test_limits_s3_would_refuse_are_refused_before_any_request(
    client: Any, s3_bucket: str, onnx_model: Path, options: Sizes, message: str
) -> None:
    requests = Requests(client)
    with pytest.raises(ValueError, match=message):
        upload_file_if_absent(client, s3_bucket, KEY, onnx_model, **options)
    assert requests.seen == []


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_registry_store_writes_model_files_with_if_none_match(
    client: Any, s3_bucket: str, onnx_model: Path, large_model: Path, size: str
) -> None:
    from maas.store import S3Store

    requests = Requests(client)
    path = (
        onnx_model if size == "small" else large_model
    )  # 11.8 MB: the transfer manager's multipart
    S3Store(s3_bucket, client=client).upload_file(KEY, path)
    creating = [h for op, h in requests.seen if op in ("PutObject", "CompleteMultipartUpload")]
    assert creating == ["*"]
