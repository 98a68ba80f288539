"""What the bounded check measured lands in the deployment record, and the model cache
budgets a model by it, not by a blind 2x its file size."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import ModelTooLarge
from maas.promotion import release
from maas.registry import Registry
from maas.serving.model_cache import ModelCache
from maas.store import LocalStore


def test_the_record_keeps_what_verifying_cost_and_the_cache_uses_it(
    tmp_path: Path, onnx_model: Path
) -> None:
    registry = Registry(LocalStore(tmp_path / "reg"))
    version = release(registry, onnx_model, "digits", alias="production").version
    record = registry.read_record(Registry.deployment_key("digits", version))
    assert record is not None and record["status"] == "succeeded"
    resources = record["resources"]
    assert resources["peak_rss_bytes"] > 0 and resources["footprint_bytes"] > 0
    assert resources["load_seconds"] > 0

    file_twice = 2 * onnx_model.stat().st_size
    measured = resources["footprint_bytes"]
    assert measured > file_twice  # a session costs more than its bytes
    # A budget between the two: the blind estimate would load it, the measurement refuses.
    budget = (file_twice + measured) // 2
    cache = ModelCache(registry, tmp_path / "cache", budget)
    with pytest.raises(ModelTooLarge, match="needs about"):
        cache.get("digits", version)
    assert ModelCache(registry, tmp_path / "cache", measured + 1).get("digits", version)
