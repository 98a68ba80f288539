"""Writes the sample API Gateway events in events/inference/.

Run: python -m tests.support.make_events

The events are what API Gateway's HTTP API delivers (payload 2.0), built by
the same code `maas serve` uses, so tests and `sam local invoke -e` share them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from maas.local_server import build_event

OUT = Path("events/inference")
#: One digits image (8x8, values in [0, 1]): a rough "0".
ZERO = [
    0.0, 0.0, 0.3, 0.8, 0.8, 0.3, 0.0, 0.0,
    0.0, 0.3, 0.9, 0.4, 0.4, 0.9, 0.3, 0.0,
    0.0, 0.6, 0.6, 0.0, 0.0, 0.6, 0.6, 0.0,
    0.0, 0.8, 0.4, 0.0, 0.0, 0.4, 0.8, 0.0,
    0.0, 0.8, 0.4, 0.0, 0.0, 0.4, 0.8, 0.0,
    0.0, 0.6, 0.6, 0.0, 0.0, 0.6, 0.6, 0.0,
    0.0, 0.3, 0.9, 0.4, 0.4, 0.9, 0.3, 0.0,
    0.0, 0.0, 0.3, 0.8, 0.8, 0.3, 0.0, 0.0,
]  # fmt: skip


def _json(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    data = b"" if body is None else json.dumps(body).encode()
    merged = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0"}
    if body is not None:
        merged["content-type"] = "application/json"
    merged.update(headers or {})
    return build_event(method, path, merged, data)


def events() -> dict[str, dict[str, Any]]:
    header = json.dumps(
        {
            "id": "binary-1",
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 8, 8],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 256},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    binary = header + struct.pack("<64f", *ZERO)
    return {
        "health-live.json": _json("GET", "/v2/health/live"),
        "health-ready.json": _json("GET", "/v2/health/ready"),
        "server-metadata.json": _json("GET", "/v2"),
        "model-metadata.json": _json("GET", "/v2/models/digits"),
        "v2-infer-json.json": _json(
            "POST",
            "/v2/models/digits/infer",
            {
                "id": "json-1",
                "inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": ZERO}],
            },
        ),
        # tritonclient sends no Content-Type: API Gateway base64-encodes the body.
        "v2-infer-binary.json": build_event(
            "POST",
            "/v2/models/digits/infer",
            {
                "host": "abc123.execute-api.us-east-1.amazonaws.com",
                "inference-header-content-length": str(len(header)),
                "user-agent": "Python-urllib/3.11 tritonclient",
            },
            binary,
        ),
        "tfserving-predict.json": _json(
            "POST",
            "/v1/models/digits:predict",
            {"instances": [[ZERO[i : i + 8] for i in range(0, 64, 8)]]},
        ),
        "bad-request.json": _json(
            "POST",
            "/v2/models/digits/infer",
            {
                "inputs": [
                    {"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5]}
                ],
            },
        ),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, event in events().items():
        (OUT / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(OUT / name)


if __name__ == "__main__":
    main()
