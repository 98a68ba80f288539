"""The registry suite: every test runs against the local store and against S3 (moto)."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from maas.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelRefused,
    NotFound,
    StoreUnavailable,
)
from maas.names import ModelRef
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore, Progress, S3Store, Store, StoredObject
from tests.support import onnx_models


def test_publish_commits_model_and_manifest(registry: Registry, onnx_model: Path) -> None:
    published = registry.publish(onnx_model, "digits")
    assert published.version == 1
    manifest = registry.get_manifest("digits", 1)
    assert manifest == published.manifest
    assert manifest["schema"] == "maas.manifest/1"
    assert manifest["precision"] == "fp32"
    assert manifest["golden_samples"] == []
    assert manifest["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}]
    assert manifest["model"]["size"] == onnx_model.stat().st_size
    assert manifest["source"]["framework"] == "onnx"
    assert "onnxruntime" in manifest["source"]["libraries"]
    assert registry.list_models() == ["digits"]
    assert registry.list_versions("digits") == [1]
    keys = set(registry.store.list_keys("models/digits/"))
    assert {
        "models/digits/versions/1/model.onnx",
        "models/digits/versions/1/manifest.json",
        "models/digits/versions/1/claim.json",
    } <= keys


def test_versions_count_up(registry: Registry, onnx_model: Path, onnx_model_b: Path) -> None:
    assert [
        registry.publish(p, "digits").version for p in (onnx_model, onnx_model_b, onnx_model)
    ] == [1, 2, 3]
    assert registry.latest_version("digits") == 3


def test_s3_keys_live_under_the_prefix(onnx_model: Path, s3_bucket: str) -> None:
    import boto3

    client = boto3.client("s3")
    Registry(S3Store(s3_bucket, "pfx", client=client)).publish(onnx_model, "digits")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys and all(k.startswith("pfx/models/digits/versions/1/") for k in keys)


def test_concurrent_publishers_get_distinct_versions(registry: Registry, onnx_model: Path) -> None:
    workers = 8
    barrier = threading.Barrier(workers)

    def publish(_: int) -> int:
        barrier.wait()
        return registry.publish(onnx_model, "digits").version

    with ThreadPoolExecutor(workers) as pool:
        versions = list(pool.map(publish, range(workers)))
    assert sorted(versions) == list(range(1, workers + 1))
    assert registry.list_versions("digits") == list(range(1, workers + 1))
    for version in versions:
        assert registry.get_manifest("digits", version)["version"] == version


def _publish_in_process(root: str, model: str, queue: Any) -> None:
    queue.put(Registry(LocalStore(root)).publish(Path(model), "digits").version)


def test_concurrent_processes_get_distinct_versions_on_a_local_registry(
    tmp_path: Path, onnx_model: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_publish_in_process, args=(str(tmp_path), str(onnx_model), queue))
        for _ in range(3)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert sorted(queue.get(timeout=5) for _ in procs) == [1, 2, 3]


def test_an_existing_version_cannot_be_recreated(
    registry: Registry, onnx_model: Path, onnx_model_b: Path
) -> None:
    original = registry.publish(onnx_model, "digits").manifest
    forged = dict(original, precision="fp16")
    with pytest.raises(Conflict, match="already exists; versions are immutable"):
        registry.commit_manifest(forged)
    assert registry.get_manifest("digits", 1) == original
    # Nor can anyone claim the number again.
    assert registry.publish(onnx_model_b, "digits").version == 2


def test_a_claim_without_a_manifest_is_invisible_and_leaves_a_gap(
    registry: Registry, onnx_model: Path
) -> None:
    registry._claim_version("digits")  # an abandoned publish
    assert registry.list_models() == []
    assert registry.list_versions("digits") == []
    with pytest.raises(NotFound, match="model 'digits' not found"):
        registry.get_manifest("digits", 1)
    assert registry.publish(onnx_model, "digits").version == 2
    assert registry.list_versions("digits") == [2]


class FailingUpload(Store):
    """Delegates to a real store, but its model upload dies half way."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.url = inner, inner.url

    def get(self, key: str) -> StoredObject:
        return self.inner.get(key)

    def get_if_changed(self, key: str, etag: str) -> StoredObject | None:
        return self.inner.get_if_changed(key, etag)

    def put(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        return self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)

    def head(self, key: str) -> Any:
        return self.inner.head(key)

    def list_keys(self, prefix: str) -> Any:
        return self.inner.list_keys(prefix)

    def list_dirs(self, prefix: str) -> list[str]:
        return self.inner.list_dirs(prefix)

    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        raise StoreUnavailable("connection reset during upload")

    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        self.inner.download_file(key, path, progress)


def test_a_failed_publish_leaves_nothing_visible(registry: Registry, onnx_model: Path) -> None:
    broken = Registry(FailingUpload(registry.store))
    with pytest.raises(StoreUnavailable):
        release(broken, onnx_model, "digits", alias="production")
    assert registry.list_models() == []
    assert registry.read_alias("digits", "production") is None
    assert registry.publish(onnx_model, "digits").version == 2


def test_refused_models_write_nothing(registry: Registry, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not onnx")
    with pytest.raises(ModelRefused):
        registry.publish(bogus, "digits")
    external = onnx_models.with_external_data(onnx_models.digits_mlp(), tmp_path)
    with pytest.raises(ModelRefused, match="external data"):
        registry.publish(external, "digits")
    assert list(registry.store.list_keys("models/")) == []


@pytest.mark.parametrize("name", ["../escape", "UPPER", "a/b", ""])
def test_invalid_names_are_refused_before_any_io(name: str, onnx_model: Path) -> None:
    class NoIO(FailingUpload):
        def __getattribute__(self, item: str) -> Any:
            if item in {"get", "put", "list", "list_dirs", "head", "upload_file"}:
                raise AssertionError(f"I/O attempted: {item}")
            return super().__getattribute__(item)

    registry = Registry(NoIO(LocalStore("/nonexistent")))
    with pytest.raises(InvalidInput, match="invalid model name"):
        registry.publish(onnx_model, name)
    with pytest.raises(InvalidInput):
        registry.get_manifest(name, 1)
    with pytest.raises(InvalidInput, match="invalid alias name"):
        registry.set_alias("digits", "Prod", 1)


def test_bad_manifest_details_are_refused_before_any_write(
    registry: Registry, onnx_model: Path
) -> None:
    with pytest.raises(InvalidInput, match="malformed manifest.*precision"):
        registry.publish(onnx_model, "digits", details={"precision": "int3"})
    assert list(registry.store.list_keys("models/")) == []


# ------------------------------------------------------------------ integrity


def test_sha256_mismatch_is_detected_on_read(
    registry: Registry, onnx_model: Path, tmp_path: Path
) -> None:
    registry.publish(onnx_model, "digits")
    good = tmp_path / "good.onnx"
    registry.fetch_model("digits", 1, good)
    assert good.read_bytes() == onnx_model.read_bytes()

    tampered = bytearray(onnx_model.read_bytes())
    tampered[-5] ^= 0xFF  # same size, different bytes
    registry.store.put(Registry.model_key("digits", 1), bytes(tampered))
    target = tmp_path / "out.onnx"
    target.write_bytes(b"previous content")
    with pytest.raises(IntegrityError, match="do not match the manifest"):
        registry.fetch_model("digits", 1, target)
    assert target.read_bytes() == b"previous content"  # never replaced by unverified bytes
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_corrupt_manifest_is_an_integrity_error(registry: Registry, onnx_model: Path) -> None:
    registry.publish(onnx_model, "digits")
    registry.store.put(Registry.manifest_key("digits", 1), b'{"schema": "maas.manifest/1"}')
    with pytest.raises(IntegrityError, match="malformed manifest"):
        registry.get_manifest("digits", 1)


def test_a_manifest_moved_to_another_version_is_an_integrity_error(
    registry: Registry, onnx_model: Path
) -> None:
    manifest = registry.publish(onnx_model, "digits").manifest
    registry.store.put(Registry.manifest_key("digits", 7), json.dumps(manifest).encode())
    with pytest.raises(IntegrityError, match="describes digits:1, not digits:7"):
        registry.get_manifest("digits", 7)


# -------------------------------------------------------------------- aliases


def test_alias_moves_by_compare_and_swap(registry: Registry, onnx_model: Path) -> None:
    for _ in range(3):
        registry.publish(onnx_model, "digits")
    first = registry.set_alias("digits", "production", 1)
    assert first["version"] == 1 and first["previous"] is None and first["canary"] is None
    second = registry.set_alias("digits", "production", 2, canary=3, weight=0.1)
    assert second["previous"] == 1 and second["canary"] == {"version": 3, "weight": 0.1}
    same = registry.set_alias("digits", "production", 2)  # no canary: clears it
    assert same["canary"] is None and same["previous"] == 1
    assert registry.get_alias("digits", "production") == same
    assert registry.list_aliases("digits") == {"production": same}
    assert registry.resolve(ModelRef("digits")) == (2, same)
    assert registry.resolve(ModelRef("digits", version=3))[0] == 3


def test_publish_with_alias_moves_it(registry: Registry, onnx_model: Path) -> None:
    published = release(registry, onnx_model, "digits", alias="staging")
    assert published.alias is not None and published.alias["version"] == 1
    assert published.manifest["deploy"] == {"alias": "staging", "canary_weight": None}
    assert registry.get_alias("digits", "staging")["version"] == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"version": 9}, NotFound, "no version 9"),
        ({"version": 1, "canary": 9, "weight": 0.5}, NotFound, "no version 9"),
        ({"version": 1, "canary": 1, "weight": 0.5}, InvalidInput, "own version"),
        ({"version": 1, "canary": 2, "weight": 1.0}, InvalidInput, "strictly between"),
        ({"version": 1, "canary": 2}, InvalidInput, "both a version and a weight"),
    ],
)
def test_bad_alias_moves_are_refused(
    registry: Registry, onnx_model: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    registry.publish(onnx_model, "digits")
    registry.publish(onnx_model, "digits")
    with pytest.raises(error, match=match):
        registry.set_alias("digits", "production", **kwargs)
    assert registry.read_alias("digits", "production") is None


def test_a_bare_name_never_falls_back_to_the_highest_version(
    registry: Registry, onnx_model: Path
) -> None:
    registry.publish(onnx_model, "digits")
    with pytest.raises(NotFound, match="no alias 'production'.*default alias"):
        registry.resolve(ModelRef("digits"))
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        registry.resolve(ModelRef("ghost"))


class RacingStore(FailingUpload):
    """Before each alias write, a competitor moves the alias first (a real write)."""

    def __init__(self, inner: Store, competitor: Registry, times: int) -> None:
        super().__init__(inner)
        self.competitor, self.remaining = competitor, times

    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        self.inner.upload_file(key, path, progress)

    def put(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        if "/aliases/" in key and self.remaining > 0:
            self.remaining -= 1
            self.competitor.set_alias("digits", "production", 3, reason="competitor")
        return super().put(key, data, if_none_match=if_none_match, if_match=if_match)


def test_alias_compare_and_swap_loses_cleanly_under_a_race(
    registry: Registry, onnx_model: Path
) -> None:
    for _ in range(3):
        registry.publish(onnx_model, "digits")
    registry.set_alias("digits", "production", 1)

    loser = Registry(RacingStore(registry.store, registry, times=10), cas_attempts=3)
    with pytest.raises(Conflict, match="gave up after 3 compare-and-swap attempts"):
        loser.set_alias("digits", "production", 2)
    # The competitor's move stands, untouched; our write never landed.
    assert registry.get_alias("digits", "production")["version"] == 3
    assert all(r["to"] != 2 for r in registry.history("digits"))

    # With fewer interruptions than attempts, the retry re-reads and wins on top.
    winner = Registry(RacingStore(registry.store, registry, times=2), cas_attempts=5)
    doc = winner.set_alias("digits", "production", 2)
    assert doc["version"] == 2 and doc["previous"] == 3


def test_concurrent_alias_moves_all_land_in_order(registry: Registry, onnx_model: Path) -> None:
    for _ in range(4):
        registry.publish(onnx_model, "digits")
    registry.set_alias("digits", "production", 1)
    barrier = threading.Barrier(4)
    contender = Registry(registry.store, cas_attempts=30)

    def move(version: int) -> dict[str, Any]:
        barrier.wait()
        return contender.set_alias("digits", "production", version)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(move, [1, 2, 3, 4]))
    records = registry.history("digits", "production")
    assert len(records) == 5
    # Each record starts where the previous one ended: no lost update.
    for before, after in itertools.pairwise(records):
        assert after["from"] == before["to"]
    assert registry.get_alias("digits", "production")["version"] == records[-1]["to"]
    assert {r["version"] for r in results} == {1, 2, 3, 4}


def test_rollback_walks_back_through_history(registry: Registry, onnx_model: Path) -> None:
    for _ in range(4):
        registry.publish(onnx_model, "digits")
    for version in (1, 2, 3):
        registry.set_alias("digits", "production", version)
    registry.set_alias("digits", "production", 3, canary=4, weight=0.25)

    back = registry.rollback("digits")
    assert (back["version"], back["previous"], back["canary"]) == (2, 1, None)
    back = registry.rollback("digits")
    assert (back["version"], back["previous"]) == (1, None)
    with pytest.raises(NotFound, match="no previous version to roll back to"):
        registry.rollback("digits")

    # Move forward again: rollback returns to where we came from.
    registry.set_alias("digits", "production", 4)
    back = registry.rollback("digits")
    assert (back["version"], back["previous"]) == (1, None)

    records = registry.history("digits", "production")
    assert [(r["from"], r["to"], r["action"]) for r in records] == [
        (None, 1, "move"),
        (1, 2, "move"),
        (2, 3, "move"),
        (3, 3, "move"),
        (3, 2, "rollback"),
        (2, 1, "rollback"),
        (1, 4, "move"),
        (4, 1, "rollback"),
    ]
    assert records[3]["canary"] == {"version": 4, "weight": 0.25}
    assert all(r["by"] == "pytest" for r in records)


def test_rollback_after_a_forward_move_returns_to_the_version_it_left(
    registry: Registry, onnx_model: Path
) -> None:
    for _ in range(4):
        registry.publish(onnx_model, "digits")
    for version in (1, 2, 3):
        registry.set_alias("digits", "production", version)
    registry.rollback("digits")  # 3 -> 2
    registry.set_alias("digits", "production", 4)  # 2 -> 4
    assert registry.get_alias("digits", "production")["previous"] == 2
    assert registry.rollback("digits")["version"] == 2
    assert registry.rollback("digits")["version"] == 1


def test_rollback_of_a_missing_alias_or_model_is_not_found(
    registry: Registry, onnx_model: Path
) -> None:
    with pytest.raises(NotFound, match="model 'digits' not found"):
        registry.rollback("digits")
    registry.publish(onnx_model, "digits")
    with pytest.raises(NotFound, match="no alias 'staging'"):
        registry.rollback("digits", "staging")


def test_history_is_oldest_first_and_per_alias(registry: Registry, onnx_model: Path) -> None:
    release(registry, onnx_model, "digits", alias="production")
    release(registry, onnx_model, "digits", alias="staging")
    registry.set_alias("digits", "production", 2, reason="promote")
    records = registry.history("digits")
    assert [(r["alias"], r["to"]) for r in records] == [
        ("production", 1),
        ("staging", 2),
        ("production", 2),
    ]
    assert [r["at"] for r in records] == sorted(r["at"] for r in records)
    assert records[-1]["reason"] == "promote"
    assert len(registry.history("digits", "staging")) == 1
    assert set(records[0]) >= {"alias", "from", "to", "canary", "at", "by", "reason"}


def test_conditional_reads_report_unchanged(registry: Registry, onnx_model: Path) -> None:
    release(registry, onnx_model, "digits", alias="production")
    stored = registry.store.get(Registry.alias_key("digits", "production"))
    assert (
        registry.store.get_if_changed(Registry.alias_key("digits", "production"), stored.etag)
        is None
    )
    release(registry, onnx_model, "digits", alias="production")
    changed = registry.store.get_if_changed(Registry.alias_key("digits", "production"), stored.etag)
    assert changed is not None and json.loads(changed.data)["version"] == 2
