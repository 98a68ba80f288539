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


DEPLOYER_OUT = Path("events/deployer")
#: The bucket the deployer events name; tests create it in moto.
EVENT_BUCKET = "maas-models-123456789012-us-east-1"


def s3_put(key: str, size: int, etag: str, sequencer: str) -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification, shaped exactly as S3 sends it (event 2.1)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-28T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLEPRINCIPAL"},
                "requestParameters": {"sourceIPAddress": "203.0.113.10"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE"
                    "5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "maas-deployer",
                    "bucket": {
                        "name": EVENT_BUCKET,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{EVENT_BUCKET}",
                    },
                    "object": {
                        "key": key,
                        "size": size,
                        "eTag": etag,
                        "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                        "sequencer": sequencer,
                    },
                },
            }
        ]
    }


def deployer_events() -> dict[str, dict[str, Any]]:
    return {
        "manifest-put.json": s3_put(
            "models/digits/versions/1/manifest.json",
            1893,
            "0123456789abcdef0123456789abcdef",
            "0055AED6DCD90281E5",
        ),
        # Keys arrive URL-encoded (a space is '+').
        "incoming-put.json": s3_put(
            "incoming/digits/new+model.onnx",
            9966,
            "fedcba9876543210fedcba9876543210",
            "0055AED6DCD90281E6",
        ),
    }


def main() -> None:
    for out, documents in ((OUT, events()), (DEPLOYER_OUT, deployer_events())):
        out.mkdir(parents=True, exist_ok=True)
        for name, event in documents.items():
            (out / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
            print(out / name)


if __name__ == "__main__":
    main()
