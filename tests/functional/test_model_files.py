"""The model file cache on disk: a directory private to the user, and sessions built
from exactly the bytes whose sha256 was checked."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from maas.config import ServingConfig
from maas.documents import Manifest
from maas.errors import InvalidInput
from maas.promotion import release
from maas.registry import Registry
from maas.serving.dataplane import DataPlane
from maas.serving.model_cache import ModelCache
from maas.serving.runtime import LoadedModel
from maas.store import LocalStore

X = np.random.default_rng(3).random((2, 8, 8), dtype=np.float32)


@pytest.fixture
def registry(tmp_path: Path, onnx_model: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "registry"), actor="pytest")
    release(registry, onnx_model, "digits", alias="production")
    return registry


def start(registry: Registry, cache_dir: Path) -> DataPlane:
    return DataPlane(ServingConfig(registry_url=registry.url, cache_dir=cache_dir), registry)


# ------------------------------------------------------------- private directory


def test_a_new_cache_dir_is_created_private_whatever_the_umask(
    registry: Registry, tmp_path: Path
) -> None:
    cache = tmp_path / "fresh" / "models"
    previous = os.umask(0)
    try:
        start(registry, cache)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_cache_dir_others_can_write_is_refused_at_start_up(
    registry: Registry, tmp_path: Path, mode: int
) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(mode)
    with pytest.raises(InvalidInput, match=str(cache)) as caught:
        start(registry, cache)
    assert "writable" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_cache_dir_owned_by_another_user_is_refused_at_start_up(
    registry: Registry, tmp_path: Path
) -> None:
    cache = tmp_path / "theirs"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    with pytest.raises(InvalidInput, match=str(cache)) as caught:
        start(registry, cache)
    assert "owned by uid 65534" in str(caught.value)


def test_a_cache_dir_that_is_a_symlink_is_refused(registry: Registry, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(InvalidInput, match=str(link)):
        start(registry, link)


def test_a_cache_path_that_is_a_file_is_refused(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput, match="not a directory"):
        start(registry, path)


# --------------------------------------------------------- verified bytes only


def probabilities(model_file: Path) -> Any:
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


def swapping_loader(replacement: bytes, cache_dir: Path) -> Any:
    """Load as ModelCache would, but first put other bytes where the checked file was:
    what another process could do between the sha256 check and the load."""

    def load(name: str, version: int, manifest: Manifest, model: Any) -> LoadedModel:
        target = cache_dir / f"{manifest['model']['sha256']}.onnx"
        target.write_bytes(replacement)
        return LoadedModel.load(name, version, manifest, model)

    return load


@pytest.mark.parametrize("already_cached", [False, True])
def test_a_file_swapped_between_check_and_load_is_never_run(
    registry: Registry, tmp_path: Path, onnx_model: Path, onnx_model_b: Path, already_cached: bool
) -> None:
    cache_dir = tmp_path / "cache"
    if already_cached:  # a verified file from an earlier process is on disk
        ModelCache(registry, cache_dir, 2**30).get("digits", 1)
    cache = ModelCache(
        registry, cache_dir, 2**30, loader=swapping_loader(onnx_model_b.read_bytes(), cache_dir)
    )
    served = cache.get("digits", 1).run({"input": X}, ["probabilities"])[0]
    np.testing.assert_array_equal(served, probabilities(onnx_model))
    assert not np.array_equal(served, probabilities(onnx_model_b))


def test_a_cached_file_that_fails_its_check_is_downloaded_again(
    registry: Registry, tmp_path: Path, onnx_model: Path, onnx_model_b: Path
) -> None:
    cache_dir = tmp_path / "cache"
    ModelCache(registry, cache_dir, 2**30).get("digits", 1)
    (cached,) = cache_dir.glob("*.onnx")
    cached.write_bytes(onnx_model_b.read_bytes())
    served = ModelCache(registry, cache_dir, 2**30).get("digits", 1)
    np.testing.assert_array_equal(
        served.run({"input": X}, ["probabilities"])[0], probabilities(onnx_model)
    )
    assert cached.read_bytes() == onnx_model.read_bytes()


def test_a_cache_dir_removed_while_serving_is_made_again(
    registry: Registry, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    cache = ModelCache(registry, cache_dir, 2**30)
    cache_dir.rmdir()  # e.g. a /tmp cleaner
    assert cache.get("digits", 1).version == 1
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
