"""`maas serve` as an HTTP/1.1 server, seen from raw sockets and kept-open connections:
no Nagle stall, socket timeouts, JSON errors for broken framing and for methods it
does not route, and concurrent invocations that do not wait for one another."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from maas.config import ServingConfig
from maas.lambda_entry import inference_handler
from maas.local_server import LocalApiServer
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore

DIGITS_BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]}
).encode()


def slow_loop() -> onnx.ModelProto:
    """``n`` (INT64 [1]) → ``y``: runs a 64x64 MatMul + Tanh ``n`` times, so a real
    onnxruntime session takes as long as the request asks (a model that hangs)."""
    weights = numpy_helper.from_array((np.eye(64) * 0.9).astype(np.float32), "w")
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state_in", "w"], ["product"]),
            helper.make_node("Tanh", ["product"], ["state_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, [1, 64]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [1, 64]),
        ],
    )
    scalar = numpy_helper.from_array(np.array([], np.int64), "scalar_shape")
    keep_going = numpy_helper.from_array(np.array(True), "keep_going")
    start = numpy_helper.from_array(np.ones((1, 64), np.float32), "start")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["n", "scalar_shape"], ["trips"]),
            helper.make_node("Loop", ["trips", "keep_going", "start"], ["y"], body=body),
        ],
        "slow_loop",
        [helper.make_tensor_value_info("n", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [weights, scalar, keep_going, start],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "slow.onnx"
    onnx.save_model(slow_loop(), str(path))
    return path


@pytest.fixture
def registry(tmp_path: Path, onnx_model: Path, slow_model: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "registry"), actor="pytest")
    release(registry, onnx_model, "digits", alias="production")
    release(registry, slow_model, "slow", alias="production")
    return registry


@pytest.fixture
def server(registry: Registry, tmp_path: Path) -> Iterator[LocalApiServer]:
    handler = inference_handler(ServingConfig(registry_url=registry.url, cache_dir=tmp_path / "c"))
    server = LocalApiServer(("127.0.0.1", 0), handler, max_body_bytes=2**20, timeout_seconds=1.0)
    server.start_background()
    yield server
    server.shutdown()
    server.server_close()


def address(server: LocalApiServer) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


def exchange(server: LocalApiServer, raw: bytes, shut_write: bool = False) -> Any:
    """Send raw bytes on a fresh connection; the parsed response (status, headers, body)."""
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(raw)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def assert_json_error(reply: Any, status: int, mentions: str = "") -> dict[str, Any]:
    code, headers, body = reply
    assert code == status, body
    assert headers["content-type"] == "application/json", body
    assert int(headers["content-length"]) == len(body)
    document = json.loads(body)
    assert isinstance(document["error"], str) and mentions.lower() in document["error"].lower()
    return dict(headers)


# ------------------------------------------------------------ kept-open connections


def test_a_kept_open_connection_does_not_stall_between_requests(server: LocalApiServer) -> None:
    """Headers and body used to go out in two small send()s with Nagle on: each
    response then waited ~40 ms for the client's delayed ACK."""
    connection = http.client.HTTPConnection(*address(server), timeout=10)
    connection.request("GET", "/v2/health/live")
    connection.getresponse().read()  # connect and warm up
    connection.request("POST", "/v2/models/digits/infer", DIGITS_BODY)
    connection.getresponse().read()  # loads the model
    started = time.perf_counter()
    for index in range(20):
        if index % 2:
            connection.request("GET", "/v2/health/live")
        else:
            connection.request(
                "POST", "/v2/models/digits/infer", DIGITS_BODY, {"content-type": "application/json"}
            )
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    # 20 stalls would be ≥ 800 ms; this bound detects the stall, not speed.
    assert elapsed < 0.4, f"20 requests on one connection took {elapsed * 1000:.0f} ms"


def test_an_idle_connection_is_closed_after_the_socket_timeout(server: LocalApiServer) -> None:
    with socket.create_connection(address(server), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # the server closed it, having said nothing
        assert time.monotonic() - started < 8


def test_a_body_that_stops_arriving_gets_408_then_the_connection_closes(
    server: LocalApiServer,
) -> None:
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        response = http.client.HTTPResponse(sock)
        response.begin()
        reply = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        assert_json_error(reply, 408, "timed out")
        assert sock.recv(1) == b""


# --------------------------------------------------------------- broken framing


@pytest.mark.parametrize(
    ("raw", "status", "mentions", "shut_write"),
    [
        (b"GARBAGE\r\n\r\n", 400, "request", False),
        (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "request", False),
        (b"GET /v2/health/live HTTP/9.9\r\nHost: x\r\n\r\n", 505, "version", False),
        (b"GET /v2/health/live HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "length", False),
        (b"GET /v2/health/live HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "length", False),
        (b"GET /v2/health/live HTTP/1.1\r\nContent-Length: +5\r\n\r\n12345", 400, "length", False),
        (
            b"POST /v2/health/live HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
            "content-length",
            False,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{",
            400,
            "ended",
            True,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "chunk",
            False,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"-5\r\nabc\r\n0\r\n\r\n",
            400,
            "chunk",
            False,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabcXY0\r\n\r\n",
            400,
            "chunk",
            False,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 5\r\n\r\n0\r\n\r\n",
            400,
            "both",
            False,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
            "chunked",
            False,
        ),
        (
            b"POST /v2/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            b"0\r\n\r\n",
            501,
            "gzip",
            False,
        ),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "request line", False),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "header", False),
        (
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
            431,
            "header",
            False,
        ),
    ],
    ids=[
        "bad-request-line",
        "request-line-with-four-words",
        "http-9.9",
        "content-length-not-a-number",
        "content-length-negative",
        "content-length-signed",
        "content-length-twice-differing",
        "body-cut-short",
        "chunk-size-not-hex",
        "chunk-size-negative",
        "chunk-without-crlf",
        "chunked-and-content-length",
        "chunked-not-last",
        "unknown-transfer-coding",
        "request-line-too-long",
        "header-line-too-long",
        "too-many-headers",
    ],
)
def test_broken_framing_gets_a_json_error_not_html_or_silence(
    server: LocalApiServer, raw: bytes, status: int, mentions: str, shut_write: bool
) -> None:
    headers = assert_json_error(exchange(server, raw, shut_write), status, mentions)
    assert headers.get("connection") == "close"


def test_a_valid_chunked_body_with_trailers_is_served(server: LocalApiServer) -> None:
    half = len(DIGITS_BODY) // 2
    parts = (DIGITS_BODY[:half], DIGITS_BODY[half:])
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts)
    raw = (
        b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"
    )
    status, _, body = exchange(server, raw)
    assert status == 200 and json.loads(body)["model_name"] == "digits"


# -------------------------------------------------------- methods not routed


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "FROBNICATE", "QUERY"])
def test_a_method_the_server_does_not_route_gets_json(server: LocalApiServer, method: str) -> None:
    target = b"127.0.0.1:443" if method == "CONNECT" else b"/v2/health/live"
    raw = method.encode() + b" " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    code, headers, body = exchange(server, raw)
    assert code in (404, 405) and headers["content-type"] == "application/json"
    assert method in json.loads(body)["error"]
    if code == 405:
        assert headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v2/health/live", "GET"),
        ("POST", "/v2/models/digits", "GET"),
        ("GET", "/v2/models/digits/infer", "POST"),
        ("PUT", "/v1/models/digits:predict", "POST"),
        # Powertools would route these to the GET status routes, as model "digits:predict"
        # and version "1:predict" (a 400): the document says they are POST's paths.
        ("GET", "/v1/models/digits:predict", "POST"),
        ("GET", "/v1/models/digits/versions/1:predict", "POST"),
        ("PATCH", "/v1/models/digits/labels/production", "GET"),
    ],
)
def test_a_known_path_with_another_method_gets_405_and_allow(
    server: LocalApiServer, method: str, path: str, allow: str
) -> None:
    raw = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    headers = assert_json_error(exchange(server, raw), 405, method)
    assert headers["allow"] == allow


def test_an_unknown_path_is_a_json_404(server: LocalApiServer) -> None:
    assert_json_error(exchange(server, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"), 404, "route")


# ------------------------------------------------------------------ concurrency


def _post(server: LocalApiServer, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address(server), timeout=60)
    try:
        connection.request("POST", path, body, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _trips_for(slow_model: Path, seconds: float) -> int:
    """How many loop trips take about ``seconds`` here (measured, not assumed)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(slow_model), providers=["CPUExecutionProvider"])
    trips = 2000
    started = time.perf_counter()
    session.run(None, {"n": np.array([trips], np.int64)})
    per_trip = (time.perf_counter() - started) / trips
    return max(trips, int(seconds / per_trip))


def test_a_hanging_model_does_not_block_other_models_or_liveness(
    server: LocalApiServer, slow_model: Path
) -> None:
    trips = _trips_for(slow_model, 4.0)
    slow_body = json.dumps(
        {"inputs": [{"name": "n", "shape": [1], "datatype": "INT64", "data": [trips]}]}
    ).encode()
    for path in ("/v2/models/slow/ready", "/v2/models/digits/ready"):
        connection = http.client.HTTPConnection(*address(server), timeout=30)
        connection.request("GET", path)
        assert connection.getresponse().status == 200
        connection.close()

    slow_result: list[tuple[int, bytes]] = []
    slow = threading.Thread(
        target=lambda: slow_result.append(_post(server, "/v2/models/slow/infer", slow_body))
    )
    slow.start()
    time.sleep(0.5)  # the slow run is under way (the model is loaded; it runs for ~4 s)
    started = time.monotonic()
    connection = http.client.HTTPConnection(*address(server), timeout=30)
    connection.request("GET", "/v2/health/live")
    assert connection.getresponse().read() == b'{"live":true}'
    connection.close()
    status, body = _post(server, "/v2/models/digits/infer", DIGITS_BODY)
    assert status == 200 and json.loads(body)["model_name"] == "digits"
    answered_in = time.monotonic() - started
    assert slow.is_alive(), "the others should have been answered while the slow run went on"
    assert answered_in < 2.0
    slow.join(timeout=60)
    assert slow_result and slow_result[0][0] == 200


def test_concurrent_requests_each_see_their_own_event(
    server: LocalApiServer, slow_model: Path
) -> None:
    """Powertools keeps the event being handled on a class attribute shared by every
    resolver: a request that read its headers after another one had started saw the
    other's (here: its accept-encoding, read after the run to decide on gzip)."""
    slow_body = json.dumps(
        {
            "inputs": [
                {
                    "name": "n",
                    "shape": [1],
                    "datatype": "INT64",
                    "data": [_trips_for(slow_model, 1.5)],
                }
            ]
        }
    ).encode()
    connection = http.client.HTTPConnection(*address(server), timeout=30)
    connection.request("GET", "/v2/models/slow/ready")
    assert connection.getresponse().status == 200
    connection.close()

    answers: list[tuple[int, str | None]] = []

    def slow_gzip() -> None:
        slow = http.client.HTTPConnection(*address(server), timeout=60)
        slow.request(
            "POST",
            "/v2/models/slow/infer",
            slow_body,
            {"content-type": "application/json", "accept-encoding": "gzip"},
        )
        response = slow.getresponse()
        response.read()
        answers.append((response.status, response.getheader("content-encoding")))
        slow.close()

    thread = threading.Thread(target=slow_gzip)
    thread.start()
    time.sleep(0.3)
    status, _ = _post(server, "/v2/models/digits/infer", DIGITS_BODY)  # no accept-encoding
    assert status == 200 and thread.is_alive()
    thread.join(timeout=60)
    assert answers == [(200, "gzip")]


def test_a_handler_that_fails_gets_a_json_500_and_the_server_goes_on() -> None:
    calls: list[str] = []

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["rawPath"])
        if event["rawPath"] == "/boom":
            raise RuntimeError("a bug in the handler")
        return {"statusCode": 204, "headers": {}, "body": ""}

    server = LocalApiServer(("127.0.0.1", 0), failing, timeout_seconds=1.0)
    server.start_background()
    try:
        connection = http.client.HTTPConnection(*address(server), timeout=10)
        connection.request("GET", "/boom")
        response = connection.getresponse()
        assert response.status == 500 and response.getheader("content-type") == "application/json"
        assert json.loads(response.read()) == {"error": "internal server error"}
        connection.request("GET", "/fine")  # the same connection is still good
        assert connection.getresponse().status == 204
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert calls == ["/boom", "/fine"]
