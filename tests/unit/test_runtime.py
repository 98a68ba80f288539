from __future__ import annotations

import os

import onnxruntime as ort

from maas.serving.runtime import available_cpus, session_options


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
