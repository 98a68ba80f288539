"""The registry over real HTTP: moto in server mode, reached through AWS_ENDPOINT_URL_S3,
exactly as maas reaches MinIO, LocalStack or S3 itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from maas.errors import Conflict, IntegrityError
from maas.registry import Registry
from maas.store import S3Store
from maas.store.s3 import default_s3_client

BUCKET = "maas-http-registry"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def http_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    return dict(os.environ)


def test_default_client_follows_the_endpoint_variable(
    http_env: dict[str, str], endpoint: str
) -> None:
    client = default_s3_client()
    assert client.meta.endpoint_url == endpoint
    assert client.meta.config.retries["mode"] == "standard"  # type: ignore[attr-defined]


def test_cli_round_trip_over_http(
    http_env: dict[str, str], onnx_model: Path, onnx_model_b: Path, tmp_path: Path
) -> None:
    maas = str(Path(sys.executable).with_name("maas"))
    url = f"s3://{BUCKET}/http"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [maas, *argv, "--registry", url],
            env=http_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    assert (
        run("publish", str(onnx_model), "--name", "digits", "--alias", "production").stdout == "1\n"
    )
    assert (
        run("publish", str(onnx_model_b), "--name", "digits", "--alias", "production").stdout
        == "2\n"
    )
    shown = json.loads(run("models", "show", "digits@production", "--json").stdout)
    assert shown["version"] == 2 and shown["alias"]["previous"] == 1
    assert run("models", "rollback", "digits").returncode == 0
    history = json.loads(run("models", "history", "digits", "--json").stdout)
    assert [(r["from"], r["to"]) for r in history] == [(None, 1), (1, 2), (2, 1)]
    out = tmp_path / "pulled.onnx"
    assert run("models", "pull", "digits", "--out", str(out)).returncode == 0
    assert out.read_bytes() == onnx_model.read_bytes()
    missing = run("models", "show", "digits:5")
    assert missing.returncode == 4 and missing.stderr.count("\n") == 1


def test_concurrent_publishers_over_http(http_env: dict[str, str], onnx_model: Path) -> None:
    registry = Registry(S3Store(BUCKET, "race"))
    barrier = threading.Barrier(6)

    def publish(_: int) -> int:
        barrier.wait()
        return registry.publish(onnx_model, "digits").version

    with ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(publish, range(6))) == [1, 2, 3, 4, 5, 6]


def test_immutability_and_integrity_over_http(
    http_env: dict[str, str], onnx_model: Path, tmp_path: Path
) -> None:
    registry = Registry(S3Store(BUCKET))
    manifest = registry.publish(onnx_model, "digits").manifest
    with pytest.raises(Conflict):
        registry.commit_manifest(manifest)
    registry.store.put(Registry.model_key("digits", 1), b"\x08\x08tampered")
    with pytest.raises(IntegrityError):
        registry.fetch_model("digits", 1, tmp_path / "x.onnx")
