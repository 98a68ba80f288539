"""The real inference handler over a registry of real models, and one way to call it.

Shared by the protocol tests and the fuzzer, so both drive exactly what Lambda
runs: ``maas.lambda_entry.inference_handler`` on API Gateway payload-2.0 events.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas.config import ServingConfig
from maas.lambda_entry import InferenceHandler, inference_handler
from maas.local_server import LocalContext, build_event, response_body
from maas.promotion import release
from maas.registry import Registry
from tests.support import onnx_models


@dataclass(frozen=True)
class Answer:
    """A response as a client reads it: ``body`` is un-gzipped when it came gzipped."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> str:
        """The message of an error answer (which must be ``{"error": str}``)."""
        document = self.json()
        assert isinstance(document, dict) and set(document) == {"error"}, document
        assert isinstance(document["error"], str)
        return document["error"]


def publish_models(registry: Registry, directory: Path) -> None:
    """``digits`` (FP32 [-1, 8, 8] → [-1, 10]) and ``strings`` (BYTES identity), both
    on ``production``."""
    digits = onnx_models.save(onnx_models.digits_mlp(seed=0), directory / "digits.onnx")
    strings = onnx_models.save(onnx_models.string_identity(), directory / "strings.onnx")
    release(registry, digits, "digits", alias="production")
    release(registry, strings, "strings", alias="production")


def handler_for(registry: Registry, cache_dir: Path) -> InferenceHandler:
    handler = inference_handler(ServingConfig(registry_url=registry.url, cache_dir=cache_dir))
    assert isinstance(handler, InferenceHandler)
    return handler


def call(
    handler: InferenceHandler,
    method: str,
    path: str,
    body: bytes | Any = b"",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request, as API Gateway would deliver it; a non-bytes body is sent as JSON."""
    merged = dict(headers or {})
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        merged.setdefault("content-type", "application/json")
    return answer_of(handler(build_event(method, path, merged, body), LocalContext()))


def answer_of(response: dict[str, Any]) -> Answer:
    headers = response.get("headers", {})
    body = response_body(response)
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return Answer(response["statusCode"], headers, body)
