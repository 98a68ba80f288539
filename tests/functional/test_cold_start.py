"""What a cold environment does before and during its first request: onnxruntime and
the S3 client at init; with MAAS_PRELOAD, a first request that imports nothing and
reads nothing; without it, each registry object read once."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maas.config import ServingConfig
from maas.lambda_entry import InferenceHandler, inference_handler
from maas.local_context import LocalContext
from maas.local_server import build_event
from maas.names import ModelRef
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore, S3Store
from tests.support import onnx_models

READS = ("get", "get_if_changed", "head", "list_keys", "list_dirs", "download_file")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every read any LocalStore makes from now on: (method, key)."""
    seen: list[tuple[str, str]] = []
    for method in READS:
        original = getattr(LocalStore, method)

        def spy(self: Any, key: str, *args: Any, _m: str = method, _o: Any = original) -> Any:
            seen.append((_m, key))
            return _o(self, key, *args)

        monkeypatch.setattr(LocalStore, method, spy)
    return seen


@pytest.fixture
def registry_dir(tmp_path: Path) -> Iterator[Path]:
    model = onnx_models.save(onnx_models.digits_mlp(hidden=16), tmp_path / "digits.onnx")
    release(Registry(LocalStore(tmp_path / "registry")), model, "digits", alias="production")
    yield tmp_path / "registry"


def infer_event() -> dict[str, Any]:
    body = {
        "inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]
    }
    return build_event(
        "POST",
        "/v2/models/digits/infer",
        {"content-type": "application/json"},
        json.dumps(body).encode(),
    )


def test_with_preload_the_first_request_imports_nothing_and_reads_nothing(
    registry_dir: Path, tmp_path: Path, reads: list[tuple[str, str]], capsys: Any
) -> None:
    config = ServingConfig(
        registry_url=str(registry_dir),
        cache_dir=tmp_path / "cache",
        preload=(ModelRef.parse("digits"),),
    )
    handler = inference_handler(config)
    assert "onnxruntime" in sys.modules
    reads.clear()
    capsys.readouterr()
    modules = set(sys.modules)
    response = handler(infer_event(), LocalContext())
    assert response["statusCode"] == 200, response
    assert reads == []
    assert set(sys.modules) - modules == set()
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    (request,) = [r for r in records if "InferenceTime" in r]  # one record for the request
    assert request["CacheHit"] == [1.0] and request["model"] == "digits"


def test_a_cold_first_request_reads_each_object_once(
    registry_dir: Path, tmp_path: Path, reads: list[tuple[str, str]], capsys: Any
) -> None:
    handler = inference_handler(
        ServingConfig(registry_url=str(registry_dir), cache_dir=tmp_path / "cache")
    )
    reads.clear()
    response = handler(infer_event(), LocalContext())
    assert response["statusCode"] == 200, response
    assert reads == [
        ("get", "models/digits/aliases/production.json"),
        ("get", "models/digits/versions/1/manifest.json"),
        ("get", "models/digits/deployments/1.json"),
        ("get", "models/digits/versions/1/model.onnx"),
    ]
    reads.clear()
    assert handler(infer_event(), LocalContext())["statusCode"] == 200
    assert reads == []  # within the alias TTL: nothing at all
    capsys.readouterr()


def test_the_s3_client_is_built_at_init(s3_bucket: str, tmp_path: Path) -> None:
    handler = inference_handler(
        ServingConfig(registry_url=f"s3://{s3_bucket}", cache_dir=tmp_path / "cache")
    )
    assert isinstance(handler, InferenceHandler)
    store = handler.plane.registry.store
    assert isinstance(store, S3Store) and store._client is not None
    client = store._client
    handler.plane.after_restore()  # SnapStart: a new client, before any request
    assert store._client is not None and store._client is not client
