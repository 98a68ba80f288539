"""Protocol edges through the real handler: BYTES exactly, every client mistake a 4xx,
and oversized answers refused before they are encoded.

Each request is an API Gateway event into ``maas.lambda_entry.inference_handler``,
over a registry (a local directory) of real ONNX models run by real onnxruntime sessions.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import numpy as np
import pytest

from maas.lambda_entry import InferenceHandler
from maas.promotion import release
from maas.protocol import v2
from maas.registry import Registry
from maas.store import LocalStore
from tests.support import onnx_models
from tests.support.serving import Answer, call, handler_for, publish_models

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

#: Text that a careless codec corrupts: non-ASCII, a NUL, an emoji, an empty
#: string, quotes and a backslash, something that looks like a bytes literal.
TEXTS = ["hi", "héllo", "a\x00b", "😀 ok", "", 'quote " and \\ back', "b'hi'"]


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> InferenceHandler:
    directory = tmp_path_factory.mktemp("protocol")
    registry = Registry(LocalStore(directory / "registry"))
    publish_models(registry, directory)
    tenths = onnx_models.save(onnx_models.filled(0.1), directory / "filled.onnx")
    release(registry, tenths, "filled", alias="production")
    return handler_for(registry, directory / "cache")


def v2_strings(texts: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}],
        **extra,
    }


def length_prefixed(elements: list[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(4, "little") + e for e in elements)


def v2_binary_strings(elements: list[bytes], binary_out: bool) -> tuple[bytes, dict[str, str]]:
    raw = length_prefixed(elements)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "shape": [len(elements)],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": binary_out},
        }
    ).encode()
    return header + raw, {v2.HEADER_LENGTH: str(len(header))}


def split(answer: Answer) -> tuple[dict[str, Any], bytes]:
    length = int(answer.headers[v2.HEADER_LENGTH])
    return json.loads(answer.body[:length]), answer.body[length:]


# ------------------------------------------------------------------ BYTES
def test_bytes_round_trip_exactly_through_v2_json(handler: InferenceHandler) -> None:
    answer = call(handler, "POST", "/v2/models/strings/infer", v2_strings(TEXTS))
    assert answer.status == 200, answer.body
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    for name in ("echo", "echo_bytes"):
        assert outputs[name]["data"] == TEXTS
        assert outputs[name]["shape"] == [len(TEXTS)] and "parameters" not in outputs[name]


def test_bytes_round_trip_exactly_through_v2_binary(handler: InferenceHandler) -> None:
    elements = [t.encode() for t in TEXTS]
    body, headers = v2_binary_strings(elements, binary_out=True)
    answer = call(handler, "POST", "/v2/models/strings/infer", body, headers)
    assert answer.status == 200, answer.body
    header, raw = split(answer)
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [
        len(length_prefixed(elements))
    ] * 2
    assert raw == length_prefixed(elements) * 2
    # Binary in, JSON out.
    body, headers = v2_binary_strings(elements, binary_out=False)
    answer = call(handler, "POST", "/v2/models/strings/infer", body, headers)
    assert [o["data"] for o in answer.json()["outputs"]] == [TEXTS, TEXTS]


def test_bytes_round_trip_exactly_through_tf_serving(handler: InferenceHandler) -> None:
    as_b64 = [{"b64": base64.b64encode(t.encode()).decode()} for t in TEXTS]
    for instances in (TEXTS, as_b64, [TEXTS[0], as_b64[1]]):
        answer = call(handler, "POST", "/v1/models/strings:predict", {"instances": instances})
        assert answer.status == 200, answer.body
        expected = TEXTS[: len(instances)] if len(instances) == len(TEXTS) else TEXTS[:2]
        assert answer.json() == {
            "predictions": [
                {"echo": text, "echo_bytes": {"b64": base64.b64encode(text.encode()).decode()}}
                for text in expected
            ]
        }
    columnar = call(handler, "POST", "/v1/models/strings:predict", {"inputs": TEXTS})
    assert columnar.json()["outputs"]["echo"] == TEXTS


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        (
            "POST",
            "/v2/models/strings/infer",
            *v2_binary_strings([b"ok", b"\xff\xfe"], binary_out=False),
        ),
        (
            "POST",
            "/v1/models/strings:predict",
            json.dumps(
                {"instances": ["ok", {"b64": base64.b64encode(b"\xc3(").decode()}]}
            ).encode(),
            {"content-type": "application/json"},
        ),
        # A lone surrogate is valid JSON, but no UTF-8 can carry it.
        (
            "POST",
            "/v2/models/strings/infer",
            b'{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["ok","\\ud800"]}]}',
            {"content-type": "application/json"},
        ),
        (
            "POST",
            "/v1/models/strings:predict",
            b'{"instances":["ok","x\\udfff"]}',
            {"content-type": "application/json"},
        ),
    ],
)
def test_bytes_that_are_not_utf8_are_a_400_naming_the_tensor(
    handler: InferenceHandler, method: str, path: str, body: bytes, headers: dict[str, str]
) -> None:
    answer = call(handler, method, path, body, headers)
    assert answer.status == 400, answer.body
    assert "input 'text': element 1 is not valid UTF-8" in answer.error()


# -------------------------------------------------- client mistakes are 4xx
DIGITS = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]}
).encode()
HUGE = "1" * 5000


def digits_with_shape(shape: list[int]) -> bytes:
    tensor = {"name": "input", "shape": shape, "datatype": "FP32", "data": []}
    return json.dumps({"inputs": [tensor]}).encode()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "mentions"),
    [
        ("POST", f"/v2/models/digits/versions/{HUGE}/infer", DIGITS, {}, "version must be"),
        ("GET", f"/v2/models/digits/versions/{HUGE}", b"", {}, "version must be"),
        ("GET", f"/v2/models/digits/versions/{HUGE}/ready", b"", {}, "version must be"),
        ("POST", f"/v1/models/digits/versions/{HUGE}:predict", b"{}", {}, "version must be"),
        ("GET", f"/v1/models/digits/versions/{HUGE}", b"", {}, "version must be"),
        ("GET", f"/v1/models/digits/versions/{HUGE}/metadata", b"", {}, "version must be"),
        (
            "POST",
            "/v2/models/digits/infer",
            DIGITS,
            {v2.HEADER_LENGTH: HUGE},
            "inference-header-content-length must be",
        ),
        (
            "POST",
            "/v2/models/digits/infer",
            digits_with_shape([9223372036854775808, 0, 1]),
            {},
            "is too large",
        ),
        ("POST", "/v2/models/digits/infer", digits_with_shape([2**40, 2**40, 0]), {}, "too large"),
        (
            "POST",
            "/v2/models/digits/infer",
            digits_with_shape([1] * 65),
            {},
            "over the limit of 64",
        ),
        (
            "POST",
            "/v2/models/digits/infer",
            digits_with_shape([1] * 64 + [0]),
            {},
            "over the limit of 64",
        ),
    ],
)
def test_client_mistakes_that_were_500s_are_400s(
    handler: InferenceHandler,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    mentions: str,
) -> None:
    answer = call(handler, method, path, body, {"content-type": "application/json", **headers})
    assert answer.status == 400, answer.body
    assert mentions in answer.error()
    assert len(answer.error()) < 400  # the 5,000 digits are not echoed back


def test_binary_shapes_are_checked_before_numpy(handler: InferenceHandler) -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2**40, 2**40, 0],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 0},
                }
            ]
        }
    ).encode()
    answer = call(handler, "POST", "/v2/models/digits/infer", header, {v2.HEADER_LENGTH: "0"})
    assert answer.status == 400  # the JSON is empty: a clear 400, not a numpy error
    answer = call(
        handler, "POST", "/v2/models/digits/infer", header, {v2.HEADER_LENGTH: str(len(header))}
    )
    assert answer.status == 400 and "too large" in answer.error()


def test_a_long_chain_of_content_codings_is_refused(handler: InferenceHandler) -> None:
    body = DIGITS
    for _ in range(301):
        body = gzip.compress(body)
    chain = ", ".join(["gzip"] * 301)
    answer = call(handler, "POST", "/v2/models/digits/infer", body, {"content-encoding": chain})
    assert answer.status == 400 and "at most 2" in answer.error()
    twice = gzip.compress(gzip.compress(DIGITS))
    answer = call(
        handler, "POST", "/v2/models/digits/infer", twice, {"content-encoding": "gzip, gzip"}
    )
    assert answer.status == 200


# ------------------------------------------ oversized answers, refused early
def dims_request(rows: int, cols: int, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "dims", "shape": [2], "datatype": "INT64", "data": [rows, cols]}],
        **extra,
    }


@pytest.fixture
def encoders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each call of a response encoder (and still encodes)."""
    from maas.protocol import tfserving

    calls: list[str] = []
    for module, name in ((v2, "encode_infer_response"), (tfserving, "encode_predict")):
        original = getattr(module, name)

        def spy(*args: Any, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize(
    ("path", "extra", "headers"),
    [
        ("/v2/models/filled/infer", {}, {}),
        ("/v2/models/filled/infer", {}, {"accept-encoding": "gzip"}),
        ("/v2/models/filled/infer", {"parameters": {"binary_data_output": True}}, {}),
        ("/v1/models/filled:predict", None, {}),
        ("/v1/models/filled:predict", None, {"accept-encoding": "gzip, deflate"}),
    ],
)
def test_a_64_mb_answer_is_refused_before_it_is_encoded(
    handler: InferenceHandler,
    encoders: list[str],
    path: str,
    extra: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    def request(rows: int, cols: int) -> Any:
        return {"inputs": [rows, cols]} if extra is None else dims_request(rows, cols, **extra)

    answer = call(handler, "POST", path, request(4096, 4096), headers)  # 4096² FP32 = 64 MB
    assert answer.status == 400 and "the response would be at least" in answer.error()
    assert encoders == []  # refused from the output arrays alone: nothing was encoded
    assert call(handler, "POST", path, request(2, 3), headers).status == 200


def test_an_answer_between_the_bound_and_the_limit_is_measured(
    handler: InferenceHandler, encoders: list[str]
) -> None:
    """0.1 as FP32 is written 0.10000000149011612: 20 bytes an element, where the lower
    bound counts 4; such answers are encoded, then measured exactly."""
    fits = call(handler, "POST", "/v2/models/filled/infer", dims_request(1000, 200))
    assert fits.status == 200 and 4_000_000 < len(fits.body) < 6 * 2**20
    assert fits.json()["outputs"][0]["data"] == [float(np.float32(0.1))] * 200_000
    answer = call(handler, "POST", "/v2/models/filled/infer", dims_request(1000, 400))
    assert answer.status == 400, answer.body[:200]
    message = answer.error()
    assert "over Lambda's 6291456-byte response limit" in message and "at least" not in message
    assert encoders == ["encode_infer_response"] * 2
