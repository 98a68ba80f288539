"""Upload a file to S3 only if its key is absent: ``If-None-Match: *`` on the write that creates it.

Version files are write-once, and the registry bucket's policy enforces it:
S3 refuses a ``PutObject`` or ``CompleteMultipartUpload`` under
``models/*/versions/`` that lacks ``If-None-Match``. boto3's transfer manager
(``client.upload_file``) cannot send that header on ``CompleteMultipartUpload``,
so this module drives the multipart API itself. It is hand-written for that
reason only; it follows the transfer manager in everything else it does (part
sizes within S3's limits, CRC32 checksums on every part, abort on failure), but
sends one part at a time: memory stays at one part, and the model files maas
publishes are at most a few hundred MB.

botocore's exceptions propagate unchanged: a key that already exists is a
``ClientError`` with code ``PreconditionFailed`` (HTTP 412), or
``ConditionalRequestConflict`` (409) when a concurrent write to the key is in
flight. The store translates them into the maas error hierarchy.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the previous call."""

#: S3's limits on multipart uploads.
MIN_PART_SIZE = 5 * 2**20  # every part but the last
MAX_PARTS = 10_000
MAX_SINGLE_PUT = 5 * 2**30

#: The transfer manager's default is 8 MB for both; larger parts mean fewer
#: requests for model files, and a 16 MiB part still fits any Lambda's memory.
DEFAULT_MULTIPART_THRESHOLD = 16 * 2**20
DEFAULT_PART_SIZE = 16 * 2**20

#: The checksum botocore's default (``when_supported``) computes on every upload.
#: Named explicitly so that the upload declares it and the completion lists each
#: part's value, as S3 requires of an upload created with a checksum algorithm.
CHECKSUM_ALGORITHM: Final[Literal["CRC32"]] = "CRC32"


def upload_file_if_absent(
    client: S3Client,
    bucket: str,
    key: str,
    path: Path,
    progress: Progress | None = None,
    *,
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    part_size: int = DEFAULT_PART_SIZE,
) -> str:
    """Create ``key`` from the file at ``path`` unless it exists; return the new ETag.

    Files smaller than ``multipart_threshold`` go in one ``PutObject``, larger
    ones as a multipart upload of ``part_size`` parts (grown if the file would
    need more than S3's 10,000). Either way the object appears whole or not at
    all, and a failed multipart upload is aborted so that no parts stay behind.
    ``progress`` is called once per part (once for a single put) with its size.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size {part_size} is below S3's minimum part size {MIN_PART_SIZE}")
    if not 0 < multipart_threshold <= MAX_SINGLE_PUT:
        raise ValueError(
            f"multipart_threshold {multipart_threshold} must be in 1..{MAX_SINGLE_PUT}"
        )
    size = path.stat().st_size
    if size < multipart_threshold:
        return _put_if_absent(client, bucket, key, path, size, progress)
    part_size = max(part_size, math.ceil(size / MAX_PARTS))
    return _multipart_if_absent(client, bucket, key, path, part_size, progress)


def _put_if_absent(
    client: S3Client, bucket: str, key: str, path: Path, size: int, progress: Progress | None
) -> str:
    with path.open("rb") as body:
        response = client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            IfNoneMatch="*",
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
    if progress is not None:
        progress(size)
    return response["ETag"]


def _multipart_if_absent(
    client: S3Client, bucket: str, key: str, path: Path, part_size: int, progress: Progress | None
) -> str:
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm=CHECKSUM_ALGORITHM
    )["UploadId"]
    try:
        parts: list[CompletedPartTypeDef] = []
        with path.open("rb") as source:
            while chunk := source.read(part_size):
                number = len(parts) + 1
                response = client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                    ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                )
                part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
                if "ChecksumCRC32" in response:
                    part["ChecksumCRC32"] = response["ChecksumCRC32"]
                parts.append(part)
                if progress is not None:
                    progress(len(chunk))
        completed = client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except BaseException:
        # The error that stopped the upload is the one to report. Should the
        # abort fail too, the bucket's lifecycle rule removes the parts later.
        from botocore.exceptions import BotoCoreError, ClientError

        with contextlib.suppress(BotoCoreError, ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return completed["ETag"]
