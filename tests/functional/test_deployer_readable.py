"""The deployer, run by hand: no context needed, and every reason names the S3 key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from maas.lambda_entry import deployer_handler
from maas.registry import Registry
from maas.store import S3Store
from tests.support.make_events import EVENT_BUCKET, s3_put

EVENTS = Path(__file__).resolve().parents[2] / "events" / "deployer"


@pytest.fixture
def registry(s3_env: Any) -> Any:
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=EVENT_BUCKET)
        yield Registry(S3Store(EVENT_BUCKET, client=boto3.client("s3")))


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)


def test_the_handler_takes_no_context_and_names_keys(
    registry: Registry, onnx_model: Path, tmp_path: Path
) -> None:
    handler = deployer_handler(f"s3://{EVENT_BUCKET}")
    s3 = boto3.client("s3")
    event = json.loads((EVENTS / "incoming-put.json").read_text())
    key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])  # as S3 encodes it
    s3.upload_file(str(onnx_model), EVENT_BUCKET, key)
    (result,) = handler(event)["results"]  # no context: a replay by hand
    assert result["status"] == "succeeded", result

    s3.put_object(Bucket=EVENT_BUCKET, Key="incoming/digits/broken.onnx", Body=b"not onnx")
    (broken,) = handler(s3_put("incoming/digits/broken.onnx", 8, "e2", "02"), None)["results"]
    assert broken["status"] == "failed"
    assert "incoming/digits/broken.onnx" in broken["reason"] and "/tmp" not in broken["reason"]
    record = registry.read_record(Registry.incoming_record_key("digits", s3.head_object(
        Bucket=EVENT_BUCKET, Key="incoming/digits/broken.onnx")["ETag"].strip('"')))  # fmt: skip
    assert record is not None and "/tmp" not in json.dumps(record)

    (misplaced,) = handler(s3_put("incoming/m.onnx", 8, "e3", "03"))["results"]
    assert misplaced["status"] == "ignored"
    assert "incoming/NAME/FILE.onnx" in misplaced["reason"]
