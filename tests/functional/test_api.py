"""The inference handler end to end: API Gateway events → routes → core → real onnxruntime."""

from __future__ import annotations

import dataclasses
import gzip
import json
import runpy
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from maas.config import ServingConfig
from maas.http_api import openapi_document
from maas.lambda_entry import inference_handler
from maas.local_server import LocalContext, build_event, response_body
from maas.promotion import release
from maas.registry import Registry
from maas.store import S3Store
from tests.support import onnx_models

Invoke = Callable[..., tuple[int, dict[str, str], bytes]]
EVENTS = Path(__file__).resolve().parents[2] / "events" / "inference"


@pytest.fixture
def registry(s3_bucket: str, onnx_model: Path, onnx_model_b: Path, tmp_path: Path) -> Registry:
    registry = Registry(S3Store(s3_bucket, "api", client=boto3.client("s3")))
    release(registry, onnx_model, "digits", alias="production")  # v1
    release(registry, onnx_model_b, "digits", alias="staging")  # v2
    heads = onnx_models.save(onnx_models.two_heads(), tmp_path / "heads.onnx")
    release(registry, heads, "heads", alias="production")
    return registry


@pytest.fixture
def handler(registry: Registry, tmp_path: Path) -> Any:
    return inference_handler(ServingConfig(registry_url=registry.url, cache_dir=tmp_path / "c"))


@pytest.fixture
def invoke(handler: Any) -> Invoke:
    def call(
        method: str, path: str, body: bytes | Any = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        merged = dict(headers or {})
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            merged.setdefault("content-type", "application/json")
        response = handler(build_event(method, path, merged, body), LocalContext())
        return response["statusCode"], response.get("headers", {}), response_body(response)

    return call


def ok_json(result: tuple[int, dict[str, str], bytes]) -> Any:
    status, headers, body = result
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def digits_input(seed: int = 0, batch: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 8, 8), dtype=np.float32)


def v2_json(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.flatten().tolist(),
            }
        ],
        **extra,
    }


def v2_binary(x: np.ndarray, binary_output: bool = True) -> tuple[bytes, dict[str, str]]:
    raw = x.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": binary_output}}],
        }
    ).encode()
    return header + raw, {"inference-header-content-length": str(len(header))}


def split_binary(headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], bytes]:
    length = int(headers["inference-header-content-length"])
    return json.loads(body[:length]), body[length:]


# --------------------------------------------------------------------- routes


def test_health_and_server_metadata(invoke: Invoke) -> None:
    assert ok_json(invoke("GET", "/v2/health/live")) == {"live": True}
    assert ok_json(invoke("GET", "/v2/health/ready")) == {"ready": True}
    meta = ok_json(invoke("GET", "/v2"))
    assert meta["name"] == "maas" and "binary_tensor_data" in meta["extensions"]


def test_model_metadata_and_ready(invoke: Invoke) -> None:
    meta = ok_json(invoke("GET", "/v2/models/digits"))
    assert meta["name"] == "digits" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert ok_json(invoke("GET", "/v2/models/digits/versions/2"))["name"] == "digits"
    assert ok_json(invoke("GET", "/v2/models/digits/ready")) == {"name": "digits", "ready": True}
    assert ok_json(invoke("GET", "/v2/models/digits/versions/2/ready"))["ready"] is True
    assert ok_json(invoke("GET", "/v2/models/digits/versions/staging/ready"))["ready"] is True


def test_v2_infer_json_by_alias_and_version(invoke: Invoke) -> None:
    x = digits_input()
    status, headers, body = invoke("POST", "/v2/models/digits/infer", v2_json(x, id="r-1"))
    assert status == 200 and headers["x-maas-model-version"] == "1"
    answer = json.loads(body)
    assert answer["model_name"] == "digits" and answer["model_version"] == "1"
    assert answer["id"] == "r-1"
    (output,) = answer["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [1, 10]
    assert abs(sum(output["data"]) - 1.0) < 1e-5
    status, headers, body = invoke("POST", "/v2/models/digits/versions/2/infer", v2_json(x))
    assert json.loads(body)["model_version"] == "2" and headers["x-maas-model-version"] == "2"
    nested = {
        "inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": x.tolist()}]
    }
    assert (
        json.loads(invoke("POST", "/v2/models/digits/infer", nested)[2])["outputs"][0]["data"]
        == output["data"]
    )


def test_json_and_binary_answers_are_bit_identical(invoke: Invoke) -> None:
    x = digits_input(seed=3, batch=4)
    as_json = json.loads(invoke("POST", "/v2/models/digits/infer", v2_json(x))[2])
    from_json = np.asarray(as_json["outputs"][0]["data"], dtype=np.float32)
    body, headers = v2_binary(x)
    status, response_headers, answer = invoke("POST", "/v2/models/digits/infer", body, headers)
    assert status == 200
    assert response_headers["Content-Type"] == "application/octet-stream"
    header, raw = split_binary(response_headers, answer)
    (output,) = header["outputs"]
    assert output["parameters"]["binary_data_size"] == len(raw) == 4 * 10 * 4
    from_binary = np.frombuffer(raw, dtype="<f4")
    assert from_binary.tobytes() == from_json.tobytes()
    # Binary in, JSON out
    body, headers = v2_binary(x, binary_output=False)
    mixed = json.loads(invoke("POST", "/v2/models/digits/infer", body, headers)[2])
    assert mixed["outputs"][0]["data"] == as_json["outputs"][0]["data"]


def test_output_selection_and_request_level_binary(invoke: Invoke) -> None:
    request = {
        "inputs": [
            {"name": n, "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
            for n in ("a", "b")
        ],
        "outputs": [{"name": "product"}],
        "parameters": {"priority": 3},
    }
    answer = json.loads(invoke("POST", "/v2/models/heads/infer", request)[2])
    assert [o["name"] for o in answer["outputs"]] == ["product"]
    assert answer["outputs"][0]["data"] == [1.0, 4.0, 9.0, 16.0]
    request = {**request, "outputs": None, "parameters": {"binary_data_output": True}}
    request.pop("outputs")
    _status, headers, body = invoke("POST", "/v2/models/heads/infer", request)
    header, raw = split_binary(headers, body)
    assert [o["name"] for o in header["outputs"]] == ["sum", "product"]
    values = np.frombuffer(raw, dtype="<f4")
    assert values.tolist() == [2, 4, 6, 8, 1, 4, 9, 16]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_request_bodies(invoke: Invoke, encoding: str) -> None:
    x = digits_input()
    plain = json.dumps(v2_json(x)).encode()
    packed = gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)
    status, _, body = invoke(
        "POST",
        "/v2/models/digits/infer",
        packed,
        {"content-encoding": encoding, "content-type": "application/json"},
    )
    assert status == 200
    assert json.loads(body) == json.loads(invoke("POST", "/v2/models/digits/infer", v2_json(x))[2])


def test_gzip_response_when_asked(invoke: Invoke) -> None:
    x = digits_input(batch=64)
    status, headers, body = invoke(
        "POST", "/v2/models/digits/infer", v2_json(x), {"accept-encoding": "gzip, deflate"}
    )
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert len(json.loads(gzip.decompress(body))["outputs"][0]["data"]) == 640


def test_tf_serving_predict_row_and_columnar(invoke: Invoke) -> None:
    x = digits_input(batch=2)
    v2 = json.loads(invoke("POST", "/v2/models/digits/infer", v2_json(x))[2])
    expected = np.asarray(v2["outputs"][0]["data"], dtype=np.float32).reshape(2, 10)
    status, headers, body = invoke("POST", "/v1/models/digits:predict", {"instances": x.tolist()})
    assert status == 200 and headers["x-maas-model-version"] == "1"
    predictions = np.asarray(json.loads(body)["predictions"], dtype=np.float32)
    np.testing.assert_array_equal(predictions, expected)
    columnar = json.loads(invoke("POST", "/v1/models/digits:predict", {"inputs": x.tolist()})[2])
    np.testing.assert_array_equal(np.asarray(columnar["outputs"], dtype=np.float32), expected)
    by_version = invoke("POST", "/v1/models/digits/versions/2:predict", {"instances": x.tolist()})
    assert by_version[1]["x-maas-model-version"] == "2"
    by_label = invoke("POST", "/v1/models/digits/labels/staging:predict", {"instances": x.tolist()})
    assert by_label[0] == 200 and by_label[1]["x-maas-model-version"] == "2"


def test_tf_serving_multi_output_rule(invoke: Invoke) -> None:
    rows = [{"a": [1, 2, 3, 4], "b": [2, 2, 2, 2]}]
    predictions = json.loads(invoke("POST", "/v1/models/heads:predict", {"instances": rows})[2])
    assert predictions == {
        "predictions": [{"sum": [3.0, 4.0, 5.0, 6.0], "product": [2.0, 4.0, 6.0, 8.0]}]
    }
    columnar = json.loads(
        invoke(
            "POST",
            "/v1/models/heads:predict",
            {"inputs": {"a": [[1, 2, 3, 4]], "b": [[2, 2, 2, 2]]}},
        )[2]
    )
    assert columnar == {
        "outputs": {"sum": [[3.0, 4.0, 5.0, 6.0]], "product": [[2.0, 4.0, 6.0, 8.0]]}
    }


def test_tf_serving_status_and_metadata(invoke: Invoke) -> None:
    status = ok_json(invoke("GET", "/v1/models/digits"))
    assert status == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert (
        ok_json(invoke("GET", "/v1/models/digits/versions/2"))["model_version_status"][0]["version"]
        == "2"
    )
    assert (
        ok_json(invoke("GET", "/v1/models/digits/labels/staging"))["model_version_status"][0][
            "version"
        ]
        == "2"
    )
    for path in (
        "/v1/models/digits/metadata",
        "/v1/models/digits/versions/1/metadata",
        "/v1/models/digits/labels/staging/metadata",
    ):
        meta = ok_json(invoke("GET", path))
        signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert "input" in signature["inputs"] and "probabilities" in signature["outputs"]


def test_openapi_document_matches_the_routes(invoke: Invoke, handler: Any) -> None:
    document = ok_json(invoke("GET", "/openapi.json"))
    assert document == openapi_document()
    from maas.http_api import build_app

    app = build_app(lambda: handler.plane)
    implemented = {
        (r.method.lower(), r.openapi_path) for r in [*app._static_routes, *app._dynamic_routes]
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert implemented == documented


# --------------------------------------------------------------------- errors


def _bad_base64_event() -> dict[str, Any]:
    event = build_event("POST", "/v2/models/digits/infer", {}, b"x")
    event["body"] = "!!!not base64!!!"
    return event


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "mentions"),
    [
        (
            "POST",
            "/v2/models/digits/infer",
            b"{not json",
            {"content-type": "application/json"},
            400,
            "JSON",
        ),
        (
            "POST",
            "/v2/models/digits/infer",
            b"\x1f\x8b\x08garbage",
            {"content-encoding": "gzip"},
            400,
            "gzip",
        ),
        (
            "POST",
            "/v2/models/digits/infer",
            b"{}",
            {"inference-header-content-length": "99"},
            400,
            "header",
        ),
        (
            "POST",
            "/v2/models/digits/infer",
            b"{}",
            {"inference-header-content-length": "-1"},
            400,
            "inference-header-content-length",
        ),
        ("POST", "/v2/models/digits/infer", b"{}", {"content-encoding": "br"}, 400, "br"),
        ("POST", "/v2/models/ghost/infer", {"inputs": []}, None, 404, "ghost"),
        ("POST", "/v2/models/digits/versions/9/infer", {"inputs": []}, None, 404, "no version 9"),
        (
            "POST",
            "/v2/models/digits/versions/canary/infer",
            {"inputs": []},
            None,
            404,
            "no alias 'canary'",
        ),
        ("POST", "/v2/models/Digits/infer", {"inputs": []}, None, 400, "invalid model name"),
        ("GET", "/v2/models/ghost", None, None, 404, "ghost"),
        ("GET", "/v2/models/ghost/ready", None, None, 404, "ghost"),
        ("GET", "/v1/models/digits/versions/x", None, None, 400, "invalid version"),
        ("POST", "/v1/models/digits:predict", {"instances": [[1, 2]]}, None, 400, "input"),
        ("POST", "/v1/models/digits:predict", {"nothing": 1}, None, 400, "instances"),
        ("GET", "/v3/nowhere", None, None, 404, "no route for GET /v3/nowhere"),
        ("DELETE", "/v2/models/digits", None, None, 405, "DELETE is not allowed"),
    ],
)
def test_error_matrix(
    invoke: Invoke,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None,
    status: int,
    mentions: str,
) -> None:
    got, response_headers, answer = invoke(method, path, b"" if body is None else body, headers)
    assert got == status, answer
    assert response_headers["Content-Type"] == "application/json"
    error = json.loads(answer)["error"]
    assert mentions.lower() in error.lower()
    assert "Traceback" not in error


VALIDATION_CASES = [
    (
        {"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 63},
        "needs 64 elements",
    ),
    ({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}, "rank"),
    ({"name": "input", "shape": [1, 8, 8], "datatype": "INT64", "data": [1] * 64}, "datatype"),
    (
        {"name": "pixels", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64},
        "unknown input 'pixels'",
    ),
    (
        {"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [None] * 64},
        "input 'input'",
    ),
]


@pytest.mark.parametrize(("tensor", "mentions"), VALIDATION_CASES)
def test_validation_errors_are_400(invoke: Invoke, tensor: dict[str, Any], mentions: str) -> None:
    status, _, body = invoke("POST", "/v2/models/digits/infer", {"inputs": [tensor]})
    assert status == 400 and mentions in json.loads(body)["error"]


def test_nan_is_400(invoke: Invoke) -> None:
    x = digits_input()
    x[0, 0, 0] = np.nan
    body, headers = v2_binary(x)
    status, _, answer = invoke("POST", "/v2/models/digits/infer", body, headers)
    assert status == 400 and "NaN" in json.loads(answer)["error"]


def test_truncated_binary_is_400(invoke: Invoke) -> None:
    body, headers = v2_binary(digits_input())
    status, _, _answer = invoke("POST", "/v2/models/digits/infer", body[:-10], headers)
    assert status == 400


def test_bad_base64_event_body_is_400(handler: Any) -> None:
    response = handler(_bad_base64_event(), LocalContext())
    assert response["statusCode"] == 400
    assert "base64" in json.loads(response["body"])["error"]


def test_body_cap_applies_before_and_after_decompression(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAAS_MAX_BODY_BYTES", "100000")
    from_env = ServingConfig.from_env()
    handler = inference_handler(
        dataclasses.replace(from_env, registry_url=registry.url, cache_dir=tmp_path)
    )
    big = json.dumps(v2_json(digits_input(batch=128))).encode()
    response = handler(
        build_event("POST", "/v2/models/digits/infer", {"content-type": "application/json"}, big),
        LocalContext(),
    )
    assert response["statusCode"] == 413
    bomb = gzip.compress(b" " * 10_000_000)
    assert len(bomb) < 100000
    response = handler(
        build_event("POST", "/v2/models/digits/infer", {"content-encoding": "gzip"}, bomb),
        LocalContext(),
    )
    assert response["statusCode"] == 413
    assert "MAAS_MAX_BODY_BYTES" in json.loads(response["body"])["error"]


def test_server_faults_are_500_without_details_leaking(invoke: Invoke, registry: Registry) -> None:
    tampered = bytearray(registry.store.get(Registry.model_key("digits", 2)).data)
    tampered[50] ^= 1
    registry.store.put(Registry.model_key("digits", 2), bytes(tampered))
    status, _headers, body = invoke(
        "POST", "/v2/models/digits/versions/2/infer", v2_json(digits_input())
    )
    assert status == 500 and "do not match the manifest" in json.loads(body)["error"]


# --------------------------------------------------------------------- events


EXPECTED = {
    "health-live.json": 200,
    "health-ready.json": 200,
    "server-metadata.json": 200,
    "model-metadata.json": 200,
    "v2-infer-json.json": 200,
    "v2-infer-binary.json": 200,
    "tfserving-predict.json": 200,
    "bad-request.json": 400,
}


def test_every_sample_event_replays(handler: Any) -> None:
    files = sorted(p.name for p in EVENTS.glob("*.json"))
    assert files == sorted(EXPECTED)
    for name in files:
        event = json.loads((EVENTS / name).read_text())
        response = handler(event, LocalContext())
        assert response["statusCode"] == EXPECTED[name], (name, response["body"])
        if name == "v2-infer-binary.json":
            header, raw = split_binary(response["headers"], response_body(response))
            assert header["id"] == "binary-1" and len(raw) == 40
            assert abs(sum(struct.unpack("<10f", raw)) - 1) < 1e-5
        if name == "bad-request.json":
            assert "needs 64 elements" in json.loads(response["body"])["error"]


def test_the_function_module_binds_the_handler(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAAS_REGISTRY", registry.url)
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("MAAS_PRELOAD", "digits")
    module = runpy.run_path(str(Path(__file__).resolve().parents[2] / "functions/inference/app.py"))
    handler = module["handler"]
    assert handler.plane.models.loaded() == [("digits", 1)]  # preloaded at init
    response = handler(json.loads((EVENTS / "v2-infer-json.json").read_text()), LocalContext())
    assert response["statusCode"] == 200


def test_a_response_over_lambdas_limit_is_a_clear_400(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas import http_api as api

    monkeypatch.setattr(api, "LAMBDA_PAYLOAD_BYTES", 2000)
    status, headers, body = invoke(
        "POST", "/v2/models/digits/infer", v2_json(digits_input(batch=64))
    )
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert "over Lambda's 2000-byte response limit" in json.loads(body)["error"]
    small = invoke("POST", "/v2/models/digits/infer", v2_json(digits_input(batch=1)))
    assert small[0] == 200


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("gzip;q=0, *", False),
    ],
)
def test_gzip_follows_accept_encoding_q_values(invoke: Invoke, accept: str, gzipped: bool) -> None:
    for path, document in (
        ("/v2/models/digits/infer", v2_json(digits_input(batch=8))),
        ("/v1/models/digits:predict", {"instances": digits_input(batch=8).tolist()}),
    ):
        status, headers, body = invoke("POST", path, document, {"accept-encoding": accept})
        assert status == 200
        assert (headers.get("Content-Encoding") == "gzip") == gzipped, (path, accept)
        json.loads(gzip.decompress(body) if gzipped else body)
