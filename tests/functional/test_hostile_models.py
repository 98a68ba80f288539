"""The hostile-model corpus: every case refused with its reason, within the bounds.

Each case goes through the three entry points publish, convert and the
deployer use: ``verify_model`` (a committed version), ``inspect_onnx`` (publish
before anything is written, convert) and ``vet_upload`` (a raw upload:
inspection plus the smoke test). Bounds: the verification child's peak RSS
under 1.5 GiB, the wall time under 90 s, and the caller's own RSS unmoved.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import onnx
import pytest
from google.protobuf.message import DecodeError
from onnx import helper

from maas.config import VerifyLimits
from maas.datatypes import v2_from_numpy
from maas.documents import Manifest
from maas.errors import ModelRefused
from maas.model_checks import verify_model, vet_upload
from maas.onnxfile import OnnxInfo, TensorSpec, file_sha256, inspect_onnx
from maas.registry import Registry
from maas.store import LocalStore
from tests.support.hostile_models import (
    CALLER_GROWTH_BOUND,
    CASES,
    LIMITS,
    MANIFEST_LIES,
    PEAK_BOUND,
    WALL_BOUND,
    caller_rss,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("hostile")
    written = {}
    for name, case in CASES.items():
        path = directory / f"{name}.onnx"
        written[name] = (path, case(path))
    return written


def limits_for(case: str) -> VerifyLimits:
    return VerifyLimits.from_env(LIMITS.get(case, {}))


def declared_signature(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """What the file's graph declares, as publish would write it into the manifest;
    x → y (FP32 [1]) for a file this test must not parse (too big, or not ONNX)."""
    fallback = [TensorSpec("x", "FP32", [1])], [TensorSpec("y", "FP32", [1])]
    if path.stat().st_size > 2**20:
        return fallback
    try:
        graph = onnx.load_model(str(path), load_external_data=False).graph
    except DecodeError:
        return fallback

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor = value.type.tensor_type
        datatype = v2_from_numpy(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return TensorSpec(value.name, datatype, dims)

    return [spec(v) for v in graph.input], [spec(v) for v in graph.output]


def manifest_for(case: str, path: Path, tmp_path: Path) -> Manifest:
    """The manifest publish would build for the file (schema-valid, by the registry),
    with the lie of a case whose model is sound but whose manifest is not."""
    sha256, size = file_sha256(path)
    info = OnnxInfo(sha256, size, 17, *declared_signature(path))
    manifest = Registry(LocalStore(tmp_path / "registry")).build_manifest("hostile", 1, info)
    lie = MANIFEST_LIES.get(case)
    if lie is not None:
        lie(manifest)
    return manifest


def assert_bounded(resources: dict[str, Any] | None, started: float, rss_before: int) -> None:
    wall = time.perf_counter() - started
    assert wall < WALL_BOUND, f"took {wall:.1f} s"
    assert resources is not None
    assert 0 < resources["peak_rss_bytes"] < PEAK_BOUND, resources
    assert caller_rss() - rss_before < CALLER_GROWTH_BOUND


@pytest.mark.parametrize("case", list(CASES))
def test_verify_model_refuses_it(
    corpus: dict[str, tuple[Path, str]], case: str, tmp_path: Path
) -> None:
    path, reason = corpus[case]
    manifest = manifest_for(case, path, tmp_path)
    rss_before, started = caller_rss(), time.perf_counter()
    verification = verify_model(path, manifest, limits=limits_for(case))
    assert not verification.passed
    assert reason in verification.reason, verification.reason
    assert verification.checks[-1].passed is False
    assert_bounded(verification.resources_json(), started, rss_before)


@pytest.mark.parametrize("case", [c for c in CASES if c not in MANIFEST_LIES])
def test_inspection_refuses_it(corpus: dict[str, tuple[Path, str]], case: str) -> None:
    path, reason = corpus[case]
    rss_before, started = caller_rss(), time.perf_counter()
    with pytest.raises(ModelRefused, match=reason) as refused:
        inspect_onnx(path, limits_for(case))
    assert_bounded(refused.value.resources, started, rss_before)


@pytest.mark.parametrize("case", [c for c in CASES if c not in MANIFEST_LIES])
def test_raw_upload_vetting_refuses_it(corpus: dict[str, tuple[Path, str]], case: str) -> None:
    path, reason = corpus[case]
    rss_before, started = caller_rss(), time.perf_counter()
    with pytest.raises(ModelRefused, match=reason) as refused:
        vet_upload(path, limits=limits_for(case))
    assert_bounded(refused.value.resources, started, rss_before)


def test_a_sound_model_with_a_lying_manifest_passes_inspection(
    corpus: dict[str, tuple[Path, str]],
) -> None:
    """Only the manifest is wrong: inspection (no manifest) must let the model through."""
    for case in MANIFEST_LIES:
        info = inspect_onnx(corpus[case][0])
        assert info.cost is not None and info.cost.peak_rss_bytes < PEAK_BOUND
