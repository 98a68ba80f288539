"""What every fuzz event goes through: the real handler, the properties, the tally.

The handler is ``maas.lambda_entry.inference_handler`` over a local registry of
two real models (the digits MLP and a string identity), built once per session
like a warm Lambda environment that serves every event in turn. Its known-good
answers are computed independently, by onnxruntime on the model files, and
checked after every event: a request that breaks nothing visible but leaves the
environment corrupted fails the run too.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from maas.config import LAMBDA_PAYLOAD_BYTES
from maas.lambda_entry import InferenceHandler
from maas.local_server import LocalContext
from maas.registry import Registry
from maas.store import LocalStore
from tests.support.serving import call, handler_for, publish_models

#: Events per ``pytest tests/fuzz`` run, shared out between the tests by weight.
#: ``make fuzz`` sets FUZZ_EXAMPLES=100000; plain pytest keeps CI short.
DEFAULT_EVENTS = 2000
GOOD_TEXTS = ["hi", "héllo", "a\x00b", "😀", ""]


def events_for(weight: float) -> int:
    total = int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_EVENTS)
    return max(1, round(total * weight))


@dataclass
class Tally:
    """Events run and the status codes they got, printed at the end of the session."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_test: Counter[str] = field(default_factory=Counter)
    started: float | None = None  # when the first event was sent

    @property
    def events(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        histogram = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        tests = ", ".join(f"{name}: {n}" for name, n in sorted(self.by_test.items()))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return (
            f"fuzz: {self.events} events in {time.monotonic() - (self.started or 0):.0f} s "
            f"(peak RSS {peak_mb:.0f} MB); status codes {{{histogram}}}; per test {{{tests}}}"
        )


TALLY = Tally()


class Harness:
    def __init__(self, directory: Path) -> None:
        registry = Registry(LocalStore(directory / "registry"))
        publish_models(registry, directory)
        self.handler: InferenceHandler = handler_for(registry, directory / "cache")
        digits = ort.InferenceSession(str(directory / "digits.onnx"))
        self.digits_input = np.random.default_rng(7).random((2, 8, 8), dtype=np.float32)
        self.digits_expected = digits.run(None, {"input": self.digits_input})[0]

    def send(self, event: dict[str, Any], test: str) -> dict[str, Any]:
        """One event through the handler; every property of the answer is checked."""
        if TALLY.started is None:
            TALLY.started = time.monotonic()
        response = self.handler(event, LocalContext())
        status = check_well_formed(response)
        TALLY.statuses[status] += 1
        TALLY.by_test[test] += 1
        assert status < 500, f"a client's request got {status}: {response.get('body', '')[:300]}"
        return response

    def still_serves_correctly(self) -> None:
        """Known-good requests to both models still get exactly the expected answers."""
        self.digits_still_correct()
        self.strings_still_correct()

    def one_still_serves_correctly(self) -> None:
        """After each event, one of the two known-good requests, in turn."""
        if TALLY.events % 2:
            self.digits_still_correct()
        else:
            self.strings_still_correct()

    def digits_still_correct(self) -> None:
        x = self.digits_input
        tensor = {"name": "input", "shape": [2, 8, 8], "datatype": "FP32", "data": x.tolist()}
        answer = call(self.handler, "POST", "/v2/models/digits/infer", {"inputs": [tensor]})
        assert answer.status == 200, answer.body
        data = np.asarray(answer.json()["outputs"][0]["data"], dtype=np.float32)
        assert data.tobytes() == self.digits_expected.reshape(-1).tobytes()

    def strings_still_correct(self) -> None:
        answer = call(self.handler, "POST", "/v1/models/strings:predict", {"inputs": GOOD_TEXTS})
        assert answer.status == 200, answer.body
        assert answer.json()["outputs"]["echo"] == GOOD_TEXTS


def check_well_formed(response: Any) -> int:
    """The answer Lambda hands API Gateway is well formed; returns its status code.

    A dict with an int statusCode, str headers and a str body; base64 and gzip
    decode; an error is JSON ``{"error": str}``; a 200 is strict JSON (no bare
    NaN) or a binary body whose JSON header and binary sizes add up; nothing
    is over Lambda's response limit.
    """
    assert isinstance(response, dict), type(response)
    status = response.get("statusCode")
    assert isinstance(status, int) and not isinstance(status, bool) and 100 <= status < 600
    headers = response.get("headers")
    assert isinstance(headers, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()), headers
    body_text = response.get("body")
    assert isinstance(body_text, str)
    assert len(body_text) <= LAMBDA_PAYLOAD_BYTES
    body = _decoded_body(response, headers, body_text)
    content_type = headers.get("Content-Type", "")
    if status >= 400:
        assert content_type == "application/json", headers
        document = strict_json(body)
        assert isinstance(document, dict) and isinstance(document.get("error"), str), document
        assert set(document) == {"error"} or status == 503, document
    elif content_type == "application/json":
        strict_json(body)
    else:
        assert content_type == "application/octet-stream", headers
        _check_binary(headers, body)
    return status


def _decoded_body(response: dict[str, Any], headers: dict[str, str], text: str) -> bytes:
    if response.get("isBase64Encoded"):
        try:
            body = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise AssertionError(f"the body is not the base64 it claims to be: {exc}") from None
    else:
        body = text.encode("utf-8")
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return body


def _check_binary(headers: dict[str, str], body: bytes) -> None:
    length = int(headers["inference-header-content-length"])
    assert 0 < length <= len(body)
    header = strict_json(body[:length])
    sizes = [
        o["parameters"]["binary_data_size"]
        for o in header["outputs"]
        if "binary_data_size" in o.get("parameters", {})
    ]
    assert sum(sizes) == len(body) - length


def _no_constants(token: str) -> Any:
    raise AssertionError(f"the answer holds a bare {token}, which strict JSON parsers refuse")


def strict_json(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_no_constants)
