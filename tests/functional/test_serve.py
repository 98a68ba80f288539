"""`maas serve` driven by real clients over HTTP: tritonclient.http and a plain
HTTP client reading responses the way KServe's REST client does."""

from __future__ import annotations

import gzip
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from maas.config import ServingConfig
from maas.lambda_entry import inference_handler
from maas.local_server import LocalApiServer, LocalContext, build_event, response_body
from maas.promotion import release
from maas.registry import Registry
from maas.store import S3Store


@pytest.fixture
def registry(s3_bucket: str, onnx_model: Path, onnx_model_b: Path) -> Registry:
    registry = Registry(S3Store(s3_bucket, "serve", client=boto3.client("s3")))
    release(registry, onnx_model, "digits", alias="production")
    registry.publish(onnx_model_b, "digits")
    return registry


@pytest.fixture
def handler(registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MAAS_MAX_BODY_BYTES", str(2**20))
    config = ServingConfig.from_env()  # MAAS_MAX_BODY_BYTES is read here
    return inference_handler(replace(config, registry_url=registry.url, cache_dir=tmp_path))


@pytest.fixture
def server(handler: Any) -> Iterator[LocalApiServer]:
    server = LocalApiServer(("127.0.0.1", 0), handler, max_body_bytes=2**20)
    server.start_background()
    yield server
    server.shutdown()
    server.server_close()


def direct(
    handler: Any, method: str, path: str, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """What the handler answers when called directly with the equivalent event."""
    response = handler(build_event(method, path, headers, body), LocalContext())
    return {"status": response["statusCode"], "body": response_body(response)}


def test_tritonclient_binary_json_version_and_gzip(server: LocalApiServer, handler: Any) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits")
    metadata = client.get_model_metadata("digits")
    assert metadata["inputs"][0]["shape"] == [-1, 8, 8]

    x = np.random.default_rng(1).random((3, 8, 8), dtype=np.float32)
    expected = json.loads(
        direct(
            handler,
            "POST",
            "/v2/models/digits/infer",
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": [3, 8, 8],
                            "datatype": "FP32",
                            "data": x.flatten().tolist(),
                        }
                    ]
                }
            ).encode(),
            {"content-type": "application/json"},
        )["body"]
    )
    want = np.asarray(expected["outputs"][0]["data"], dtype=np.float32).reshape(3, 10)

    for binary in (True, False):
        tensor = triton.InferInput("input", [3, 8, 8], "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        output = triton.InferRequestedOutput("probabilities", binary_data=binary)
        result = client.infer("digits", [tensor], outputs=[output])
        np.testing.assert_array_equal(result.as_numpy("probabilities"), want)
        assert result.get_response()["model_version"] == "1"

    tensor = triton.InferInput("input", [3, 8, 8], "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(
        "digits",
        [tensor],
        model_version="2",
        request_compression_algorithm="gzip",
        response_compression_algorithm="gzip",
    )
    assert result.get_response()["model_version"] == "2"
    assert result.as_numpy("probabilities").shape == (3, 10)
    with pytest.raises(triton.InferenceServerException, match="no version 7"):
        client.infer("digits", [tensor], model_version="7")
    client.close()


def _http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url, data=body, headers=headers or {}, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_plain_http_client_as_kserve_reads_it(server: LocalApiServer, handler: Any) -> None:
    status, headers, body = _http(f"{server.url}/v2/health/live")
    assert status == 200 and json.loads(body)["live"] is True
    status, headers, body = _http(f"{server.url}/v2/health/ready")
    assert status == 200 and json.loads(body)["ready"] is True
    status, headers, body = _http(f"{server.url}/v2/models/digits/ready")
    assert status == 200 and json.loads(body)["ready"] is True

    payload = json.dumps(
        {
            "id": "k-1",
            "inputs": [
                {"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.25] * 64}
            ],
        }
    ).encode()
    headers_in = {"content-type": "application/json"}
    status, headers, body = _http(f"{server.url}/v2/models/digits/infer", payload, headers_in)
    assert status == 200 and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["model_name"] == "digits" and answer["id"] == "k-1"
    same = direct(handler, "POST", "/v2/models/digits/infer", payload, headers_in)
    assert json.loads(same["body"]) == answer

    status, headers, body = _http(f"{server.url}/v2/models/ghost/infer", payload, headers_in)
    assert status == 404 and headers["content-type"] == "application/json"
    assert "ghost" in json.loads(body)["error"]

    zipped = gzip.compress(payload)
    status, _, body = _http(
        f"{server.url}/v2/models/digits/infer", zipped, {**headers_in, "content-encoding": "gzip"}
    )
    assert status == 200 and json.loads(body)["outputs"] == answer["outputs"]


def test_an_oversized_body_gets_413_not_a_broken_pipe(server: LocalApiServer) -> None:
    body = b"0" * (3 * 2**20)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        sock.sendall(body)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")
