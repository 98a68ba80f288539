"""The serving core over a moto S3 registry with real onnxruntime sessions."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics
from botocore.exceptions import EndpointConnectionError

from maas import metrics
from maas.config import ServingConfig
from maas.errors import IntegrityError, InvalidInput, ModelTooLarge, NotFound, NotReady
from maas.names import ModelRef
from maas.promotion import release
from maas.registry import Registry
from maas.serving.dataplane import DataPlane
from maas.serving.model_cache import ModelCache
from maas.serving.runtime import FOOTPRINT_FACTOR, LoadedModel, estimate_footprint
from maas.store import S3Store
from maas.tensors import InferenceRequest, tensor_from_data
from tests.support import onnx_models


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Faults:
    """Makes the real botocore client fail, as a network outage would."""

    def __init__(self, client: Any) -> None:
        self.down = False
        self.calls: list[str] = []
        client.meta.events.register("before-send.s3.*", self._before_send)

    def _before_send(self, request: Any, **_: Any) -> None:
        self.calls.append(f"{request.method} {request.url.split('?')[0].rsplit('/', 3)[-3:]}")
        if self.down:
            raise EndpointConnectionError(endpoint_url=request.url)


@pytest.fixture
def s3_client(s3_bucket: str) -> Any:
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 1}))


@pytest.fixture
def faults(s3_client: Any) -> Faults:
    return Faults(s3_client)


@pytest.fixture
def registry(s3_bucket: str, s3_client: Any, onnx_model: Path, onnx_model_b: Path) -> Registry:
    registry = Registry(S3Store(s3_bucket, "serve", client=s3_client))
    release(registry, onnx_model, "digits", alias="production")  # v1
    registry.publish(onnx_model_b, "digits")  # v2
    registry.publish(onnx_model, "digits")  # v3
    return registry


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emf(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Reads the EMF records that single_metric printed, by metric name."""

    def read() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{") and "_aws" in line:
                record = json.loads(line)
                for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                    found.setdefault(metric["Name"], []).append(record)
        return found

    yield read


def make_plane(registry: Registry, tmp_path: Path, clock: Clock, **overrides: Any) -> DataPlane:
    config = ServingConfig(registry_url=registry.url, cache_dir=tmp_path / "cache", **overrides)
    telemetry = metrics.Telemetry(EphemeralMetrics(namespace="maas-test"))
    return DataPlane(
        config, registry=registry, telemetry=telemetry, rng=random.Random(7), clock=clock
    )


def digits_request(batch: int = 1, seed: int = 0) -> InferenceRequest:
    data = np.random.default_rng(seed).random((batch, 8, 8), dtype=np.float32)
    return InferenceRequest([tensor_from_data("input", "FP32", [batch, 8, 8], data.tolist())])


# ----------------------------------------------------------------- resolution


def test_resolution_by_version_alias_and_bare_name(
    registry: Registry, tmp_path: Path, clock: Clock
) -> None:
    plane = make_plane(registry, tmp_path, clock)
    registry.set_alias("digits", "staging", 2)
    assert plane.infer("digits", digits_request(), version=3).model_version == 3
    assert plane.infer("digits", digits_request(), alias="staging").model_version == 2
    assert plane.infer("digits", digits_request()).model_version == 1  # production


def test_missing_default_alias_is_a_clear_not_found(
    registry: Registry, tmp_path: Path, clock: Clock
) -> None:
    plane = make_plane(registry, tmp_path, clock, default_alias="live")
    with pytest.raises(NotFound, match="no alias 'live'.*default alias for a bare model name"):
        plane.infer("digits", digits_request())
    assert plane.models.loaded() == []  # never fell back to the highest version
    with pytest.raises(NotFound, match="no alias 'canary'"):
        plane.infer("digits", digits_request(), alias="canary")
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        plane.infer("ghost", digits_request())
    with pytest.raises(NotFound, match="no version 9"):
        plane.infer("digits", digits_request(), version=9)
    with pytest.raises(InvalidInput, match="invalid model name"):
        plane.infer("../x", digits_request())


def test_canary_split_follows_the_weight(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    registry.set_alias("digits", "production", 1, canary=2, weight=0.2)
    plane = make_plane(registry, tmp_path, clock)
    plane.ready("digits", version=1)
    plane.ready("digits", version=2)
    calls = 2000
    answered = [plane.infer("digits", digits_request()).model_version for _ in range(calls)]
    share = answered.count(2) / calls
    # Binomial sd is sqrt(0.2 * 0.8 / 2000) ~ 0.009: 4 sd either side.
    assert abs(share - 0.2) < 0.036, share
    assert set(answered) == {1, 2}


# ------------------------------------------------------------ loading, caching


def test_eight_cold_threads_make_one_download_and_one_session(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults
) -> None:
    sessions: list[tuple[str, int]] = []

    def counting_loader(name: str, version: int, manifest: Any, model: bytes) -> LoadedModel:
        sessions.append((name, version))
        return LoadedModel.load(name, version, manifest, model)

    plane = make_plane(registry, tmp_path, clock)
    plane.models = ModelCache(
        registry,
        tmp_path / "cache",
        plane.config.cache_bytes,
        plane.telemetry,
        loader=counting_loader,
    )
    faults.calls.clear()
    barrier = threading.Barrier(8)
    results: list[int] = []

    def call() -> None:
        barrier.wait()
        results.append(plane.infer("digits", digits_request(), version=2).model_version)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2] * 8
    assert sessions == [("digits", 2)]
    model_gets = [c for c in faults.calls if "model.onnx" in c and c.startswith("GET")]
    assert len(model_gets) == 1, faults.calls
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        f"{registry.get_manifest('digits', 2)['model']['sha256']}.onnx"
    ]


def test_nothing_loads_at_construction(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults
) -> None:
    faults.calls.clear()
    plane = make_plane(registry, tmp_path, clock)
    assert faults.calls == [] and plane.models.loaded() == []


def test_a_tampered_model_is_never_served(
    registry: Registry, tmp_path: Path, clock: Clock, emf: Any
) -> None:
    tampered = bytearray(registry.store.get(Registry.model_key("digits", 2)).data)
    tampered[100] ^= 0x01
    registry.store.put(Registry.model_key("digits", 2), bytes(tampered))
    plane = make_plane(registry, tmp_path, clock)
    with pytest.raises(IntegrityError, match="do not match the manifest") as caught:
        plane.infer("digits", digits_request(), version=2)
    assert caught.value.status == 500
    assert ("digits", 2) not in plane.models.loaded()
    assert plane.infer("digits", digits_request(), version=1).model_version == 1
    assert plane.infer("digits", digits_request(), version=3).model_version == 3
    assert "IntegrityFailures" in emf()


def test_a_corrupted_cache_file_is_verified_and_replaced(
    registry: Registry, tmp_path: Path, clock: Clock
) -> None:
    sha = registry.get_manifest("digits", 1)["model"]["sha256"]
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{sha}.onnx").write_bytes(b"left by an earlier, crashed process")
    plane = make_plane(registry, tmp_path, clock)
    reference = make_plane(registry, tmp_path / "other", clock)
    got = plane.infer("digits", digits_request(), version=1).outputs[0].array
    want = reference.infer("digits", digits_request(), version=1).outputs[0].array
    np.testing.assert_array_equal(got, want)
    assert (cache / f"{sha}.onnx").read_bytes() == registry.store.get(
        Registry.model_key("digits", 1)
    ).data


def test_lru_eviction_under_a_small_budget(
    registry: Registry, tmp_path: Path, clock: Clock, emf: Any
) -> None:
    footprint = registry.get_manifest("digits", 1)["model"]["size"] * FOOTPRINT_FACTOR
    # Version 1 was deployed, so the cache budgets it by what verification measured;
    # 2 and 3 were only published, so by twice their file size.
    record = registry.read_record(Registry.deployment_key("digits", 1))
    assert record is not None
    measured = estimate_footprint(
        registry.get_manifest("digits", 1), record["resources"]["footprint_bytes"]
    )
    plane = make_plane(registry, tmp_path, clock, cache_bytes=int(measured + footprint * 1.5))
    plane.infer("digits", digits_request(), version=1)
    plane.infer("digits", digits_request(), version=2)
    plane.infer("digits", digits_request(), version=1)  # 1 is now the most recently used
    plane.infer("digits", digits_request(), version=3)  # evicts 2
    assert plane.models.loaded() == [("digits", 1), ("digits", 3)]
    assert plane.models.used_bytes <= plane.config.cache_bytes
    evictions = emf()["CacheEvictions"]
    assert [(r["model"], r["version"]) for r in evictions] == [("digits", "2")]
    assert plane.infer("digits", digits_request(), version=2).model_version == 2  # reloads


def test_a_model_larger_than_the_budget_is_refused_unloaded(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults
) -> None:
    plane = make_plane(registry, tmp_path, clock, cache_bytes=1000)
    faults.calls.clear()
    with pytest.raises(ModelTooLarge, match="more than the whole model cache budget"):
        plane.infer("digits", digits_request(), version=1)
    assert plane.models.loaded() == []
    assert not [c for c in faults.calls if "model.onnx" in c]


# -------------------------------------------------------------- alias moves


def test_alias_move_is_seen_after_the_ttl_not_before(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults
) -> None:
    plane = make_plane(registry, tmp_path, clock, alias_ttl_seconds=10)
    assert plane.infer("digits", digits_request()).model_version == 1
    registry.set_alias("digits", "production", 2)

    faults.calls.clear()
    clock.now += 9.9
    assert plane.infer("digits", digits_request()).model_version == 1
    assert faults.calls == []  # within the TTL: no registry traffic at all

    clock.now += 0.2
    # The move is seen; v1 keeps answering while v2 loads in the background.
    first = plane.infer("digits", digits_request()).model_version
    plane.models.wait_idle()
    assert first in (1, 2)
    assert plane.infer("digits", digits_request()).model_version == 2
    assert ("digits", 2) in plane.models.loaded()


def test_an_unchanged_alias_costs_a_304_and_no_reload(
    registry: Registry, tmp_path: Path, clock: Clock, s3_client: Any
) -> None:
    statuses: list[int] = []
    s3_client.meta.events.register(
        "after-call.s3.GetObject",
        lambda http_response, **_: statuses.append(http_response.status_code),
    )
    loads: list[int] = []
    plane = make_plane(registry, tmp_path, clock)
    original = plane.models._loader
    plane.models._loader = lambda *a: loads.append(a[1]) or original(*a)  # type: ignore[func-returns-value]
    plane.infer("digits", digits_request())
    statuses.clear()
    for _ in range(3):
        clock.now += 11
        assert plane.infer("digits", digits_request()).model_version == 1
    assert statuses == [304, 304, 304]
    assert loads == [1]


# --------------------------------------------------------------- resilience


def test_stale_serving_while_s3_fails(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults, emf: Any
) -> None:
    plane = make_plane(registry, tmp_path, clock)
    expected = plane.infer("digits", digits_request()).outputs[0].array
    emf()
    faults.down = True
    clock.now += 60
    for _ in range(3):
        result = plane.infer("digits", digits_request())
        assert result.model_version == 1
        np.testing.assert_array_equal(result.outputs[0].array, expected)
    assert len(emf()["StaleServes"]) == 3
    assert plane.server_ready() == (True, None)  # a model is loaded
    faults.down = False
    clock.now += 60
    registry.set_alias("digits", "production", 3)
    clock.now += 60
    plane.infer("digits", digits_request())
    plane.models.wait_idle()
    assert plane.infer("digits", digits_request()).model_version == 3


def test_not_ready_when_nothing_is_cached_and_s3_fails(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults
) -> None:
    plane = make_plane(registry, tmp_path, clock)
    faults.down = True
    with pytest.raises(NotReady) as caught:
        plane.infer("digits", digits_request())
    assert caught.value.status == 503
    with pytest.raises(NotReady):
        plane.ready("digits")
    ready, why = plane.server_ready()
    assert not ready and why and "unreachable" in why


def test_a_cached_alias_with_a_cold_version_is_not_ready_during_an_outage(
    registry: Registry, tmp_path: Path, clock: Clock, faults: Faults
) -> None:
    plane = make_plane(registry, tmp_path, clock)
    plane.resolve("digits")  # alias known, nothing loaded
    faults.down = True
    with pytest.raises(NotReady, match="not loaded and the registry is unavailable"):
        plane.infer("digits", digits_request())


# --------------------------------------------------------------- validation


@pytest.fixture
def two_heads(s3_bucket: str, s3_client: Any, tmp_path: Path) -> DataPlane:
    registry = Registry(S3Store(s3_bucket, "heads", client=s3_client))
    path = onnx_models.save(onnx_models.two_heads(), tmp_path / "heads.onnx")
    release(registry, path, "heads", alias="production")
    return make_plane(registry, tmp_path, Clock(), max_batch=16)


def _ab(batch: int = 2, **overrides: Any) -> list[Any]:
    tensors = {
        "a": tensor_from_data("a", "FP32", [batch, 4], [[1.0, 2.0, 3.0, 4.0]] * batch),
        "b": tensor_from_data("b", "FP32", [batch, 4], [[2.0] * 4] * batch),
    }
    tensors.update(overrides)
    return [t for t in tensors.values() if t is not None]


def test_outputs_are_computed_and_selected(two_heads: DataPlane) -> None:
    result = two_heads.infer("heads", InferenceRequest(_ab(), id="req-1"))
    assert [o.name for o in result.outputs] == ["sum", "product"]
    assert result.outputs[0].array.tolist() == [[3.0, 4.0, 5.0, 6.0]] * 2
    assert result.id == "req-1" and result.model_name == "heads"
    only = two_heads.infer("heads", InferenceRequest(_ab(), outputs=["product"]))
    assert [o.name for o in only.outputs] == ["product"]
    assert only.outputs[0].array.tolist() == [[2.0, 4.0, 6.0, 8.0]] * 2


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        (_ab(c=tensor_from_data("c", "FP32", [2, 4], [0.0] * 8)), None, "unknown input 'c'"),
        (_ab(b=None), None, "missing input 'b'"),
        (
            _ab(a=tensor_from_data("a", "FP64", [2, 4], [0.0] * 8)),
            None,
            "input 'a' has datatype FP64; the model expects FP32",
        ),
        (_ab(a=tensor_from_data("a", "FP32", [2, 2, 2], [0.0] * 8)), None, "input 'a'.*rank 3"),
        (
            _ab(a=tensor_from_data("a", "FP32", [4, 2], [0.0] * 8)),
            None,
            "input 'a'.*dimension 1 must be 4",
        ),
        (_ab(batch=17), None, "input 'a' has a batch of 17, over the limit of 16"),
        (
            _ab(a=tensor_from_data("a", "FP32", [2, 4], [float("nan")] + [0.0] * 7)),
            None,
            "input 'a' contains NaN or Inf",
        ),
        (
            _ab(b=tensor_from_data("b", "FP32", [2, 4], [float("inf")] * 8)),
            None,
            "input 'b' contains NaN or Inf",
        ),
        (_ab(), ["sum", "ratio"], "unknown output 'ratio'"),
    ],
)
def test_every_validation_failure_is_a_client_error(
    two_heads: DataPlane, inputs: list[Any], outputs: list[str] | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        two_heads.infer("heads", InferenceRequest(inputs, outputs=outputs))
    assert caught.value.status == 400


def test_element_count_is_checked_when_tensors_are_built() -> None:
    with pytest.raises(
        InvalidInput, match=r"input 'a': shape \[2, 4\] needs 8 elements, data has 7"
    ):
        tensor_from_data("a", "FP32", [2, 4], [0.0] * 7)


def test_nan_is_served_when_the_policy_allows_it(two_heads: DataPlane) -> None:
    plane = DataPlane(
        ServingConfig(
            registry_url=two_heads.config.registry_url,
            cache_dir=two_heads.config.cache_dir,
            nan_policy="allow",
        ),
        registry=two_heads.registry,
        telemetry=two_heads.telemetry,
    )
    nan = tensor_from_data("a", "FP32", [2, 4], [float("nan")] * 8)
    result = plane.infer("heads", InferenceRequest(_ab(a=nan)))
    assert np.isnan(result.outputs[0].array).all()


# ------------------------------------------------------------- preload, meta


def test_preload_loads_the_listed_models(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    registry.set_alias("digits", "staging", 2)
    plane = make_plane(
        registry,
        tmp_path,
        clock,
        preload=(ModelRef("digits"), ModelRef.parse("digits@staging"), ModelRef.parse("digits:3")),
    )
    assert plane.models.loaded() == []
    assert plane.preload() == [("digits", 1), ("digits", 2), ("digits", 3)]
    assert sorted(plane.models.loaded()) == [("digits", 1), ("digits", 2), ("digits", 3)]


def test_metadata_reports_versions_and_signature(
    registry: Registry, tmp_path: Path, clock: Clock
) -> None:
    meta = make_plane(registry, tmp_path, clock).metadata("digits")
    assert meta["version"] == 1 and meta["versions"] == [1, 2, 3]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}]


def test_request_metrics_carry_model_and_version(
    registry: Registry, tmp_path: Path, clock: Clock
) -> None:
    plane = make_plane(registry, tmp_path, clock)
    plane.infer("digits", digits_request(batch=5), version=2)
    record = plane.telemetry.metrics.serialize_metric_set()
    names = {m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"InferenceTime", "Predictions", "CacheMiss"} <= names
    assert record["model"] == "digits" and record["version"] == "2"
    assert record["Predictions"] == [5.0]
