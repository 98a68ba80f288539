from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from maas.errors import RunTimedOut
from maas.serving.runtime import LoadedModel, available_cpus, estimate_footprint, session_options
from tests.support import hostile_models


def test_threads_follow_the_affinity_mask() -> None:
    assert available_cpus() == len(os.sched_getaffinity(0))
    options = session_options()
    assert options.intra_op_num_threads == available_cpus()
    assert options.inter_op_num_threads == 1


def test_spinning_off_and_full_optimisation() -> None:
    options = session_options(cpus=3)
    assert options.intra_op_num_threads == 3
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_a_run_past_its_deadline_is_stopped(tmp_path: Path, onnx_model: Path) -> None:
    """The 2**62-trip Loop stops shortly after terminate is set; other runs are untouched."""
    loop = tmp_path / "loop.onnx"
    hostile_models.endless_loop(loop)
    manifest: Any = {"model": {"size": loop.stat().st_size}}
    model = LoadedModel.load("hostile", 1, manifest, loop, run_timeout_ms=200)
    started = time.perf_counter()
    with pytest.raises(RunTimedOut, match=r"hostile:1 did not finish within 200 ms"):
        model.run({"x": np.zeros(1, np.float32)}, ["y"])
    assert time.perf_counter() - started < 5
    assert RunTimedOut.status == 503
    digits = LoadedModel.load("digits", 1, manifest, onnx_model, run_timeout_ms=200)
    (probabilities,) = digits.run({"input": np.zeros((1, 8, 8), np.float32)}, ["probabilities"])
    assert probabilities.shape == (1, 10)


def test_the_run_timeout_defaults_to_the_setting(
    onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAAS_RUN_TIMEOUT_MS", "1234")
    manifest: Any = {"model": {"size": 1}}
    assert LoadedModel.load("digits", 1, manifest, onnx_model).run_timeout_ms == 1234


def test_the_footprint_is_the_measured_one_when_larger() -> None:
    manifest: Any = {"model": {"size": 1000}}
    assert estimate_footprint(manifest) == 2000
    assert estimate_footprint(manifest, 5_000_000) == 5_000_000
    assert estimate_footprint(manifest, 10) == 2000
