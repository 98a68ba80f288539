"""`maas convert --prune`: magnitude pruning with a fine-tune, through the same gate,
registry and lineage as every other variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from maas.registry import open_registry
from tests.convert.api import prune
from tests.convert.conftest import Reference, run_cli
from tests.support.onnx_models import digits_mlp


@pytest.fixture(scope="module")
def pruned_run(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The issue's acceptance run on the digits reference model."""
    work = tmp_path_factory.mktemp("pruned")
    outcome = run_cli(
        "convert",
        reference.model,
        "--name",
        "digits",
        "--eval-data",
        reference.eval_data,
        "--prune",
        "0.5,0.8",
        "--train-data",
        reference.train_data,
        "--max-accuracy-drop",
        "1.5",
        "--precision",
        "fp32,int8-dynamic",
        "--publish",
        "--registry",
        work / "reg",
        "--out",
        work / "out",
        "--json",
    )
    assert outcome.code == 0, outcome.err
    return outcome.json(), open_registry(str(work / "reg")), work / "out"


def test_pruned_fp32_and_int8_variants_pass_and_are_published(pruned_run: Any) -> None:
    rows, registry, _ = pruned_run
    assert [(r["precision"], r["sparsity"]) for r in rows] == [
        ("fp32", 0.0),
        ("int8-dynamic", 0.0),
        ("fp32", 0.5),
        ("int8-dynamic", 0.5),
        ("fp32", 0.8),
        ("int8-dynamic", 0.8),
    ]
    assert all(r["passed"] for r in rows), [r["reason"] for r in rows]
    source = rows[0]["accuracy"]
    for row in rows[4:]:
        assert (source - row["accuracy"]) * 100 <= 1.5
    # The raw ONNX size does not shrink with sparsity; the gzipped size does.
    dense, half, most = rows[0], rows[2], rows[4]
    assert abs(most["size_bytes"] - dense["size_bytes"]) < 100
    assert most["gzip_bytes"] < half["gzip_bytes"] < dense["gzip_bytes"]
    assert registry.list_versions("digits") == [1, 2, 3, 4, 5, 6]


def test_lineage_records_the_compression_and_the_measured_sparsity(
    pruned_run: Any, reference: Reference
) -> None:
    from maas.onnxfile import file_sha256

    rows, registry, _ = pruned_run
    by_version = {r["version"]: r for r in rows}
    for version in (5, 6):
        manifest = registry.get_manifest("digits", version)
        compression = manifest["lineage"]["compression"]
        assert compression["method"] == "magnitude-pruning"
        assert compression["sparsity"] == 0.8 and compression["measured_sparsity"] >= 0.79
        assert compression["fine_tune_epochs"] == 10
        assert compression["train_data_sha256"] == file_sha256(reference.train_data)[0]
        assert manifest["metrics"]["sparsity"] == by_version[version]["sparsity"]
    assert registry.get_manifest("digits", 6)["lineage"]["parent_version"] == 5
    assert "compression" not in registry.get_manifest("digits", 2)["lineage"]


def test_pruned_kernels_are_exact_zeros_in_the_onnx_file(pruned_run: Any) -> None:
    _, _, out = pruned_run
    assert sorted(p.name for p in out.iterdir()) == [
        "digits-fp32.onnx",
        "digits-int8-dynamic.onnx",
        "digits-s0.5-fp32.onnx",
        "digits-s0.5-int8-dynamic.onnx",
        "digits-s0.8-fp32.onnx",
        "digits-s0.8-int8-dynamic.onnx",
    ]
    model = onnx.load_model(str(out / "digits-s0.8-fp32.onnx"))
    kernels = [numpy_helper.to_array(i) for i in model.graph.initializer]
    kernels = [k for k in kernels if k.ndim == 2]
    assert len(kernels) == 2  # hidden and output layers: the output layer is pruned too
    for kernel in kernels:
        assert abs(float(np.mean(kernel == 0)) - 0.8) < 0.01
    assert prune.measured_sparsity(out / "digits-s0.8-fp32.onnx") >= 0.79


def test_without_train_data_pruning_is_one_shot(reference: Reference, tmp_path: Path) -> None:
    outcome = run_cli(
        "convert",
        reference.model,
        "--name",
        "digits",
        "--eval-data",
        reference.eval_data,
        "--prune",
        "0.3",
        "--precision",
        "fp32",
        "--publish",
        "--registry",
        tmp_path / "reg",
        "--json",
    )
    assert outcome.code in (0, 2), outcome.err
    pruned = outcome.json()[1]
    assert pruned["sparsity"] == 0.3 and pruned["agreement"] is not None
    if pruned["passed"]:
        compression = open_registry(str(tmp_path / "reg")).get_manifest("digits", 2)["lineage"][
            "compression"
        ]
        assert compression["fine_tune_epochs"] == 0 and compression["train_data_sha256"] is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--prune", "0"], "invalid --prune '0': sparsity must be strictly between 0 and 1"),
        (["--prune", "1"], "invalid --prune '1': sparsity must be strictly between 0 and 1"),
        (["--prune", "0.5,x"], "invalid --prune 'x': a sparsity between 0 and 1"),
        (["--prune", "0.5,0.5"], "--prune lists 0.5 twice"),
        (["--prune", "0.5", "--fine-tune-epochs", "-1"], "invalid --fine-tune-epochs '-1'"),
    ],
)
def test_bad_pruning_flags_exit_2_with_one_line(
    reference: Reference, flags: list[str], message: str
) -> None:
    outcome = run_cli("convert", reference.model, "--name", "d", *flags)
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err.startswith("maas: error: ") and message in outcome.err
    assert outcome.err.count("\n") == 1


def test_prune_refuses_a_source_it_cannot_fine_tune(tmp_path: Path) -> None:
    path = tmp_path / "digits.onnx"
    onnx.save_model(digits_mlp(), str(path))
    outcome = run_cli(
        "convert", path, "--name", "d", "--prune", "0.5", "--publish", "--registry", tmp_path / "r"
    )
    assert (outcome.code, outcome.out) == (2, "")
    assert "--prune needs a Keras source (.keras or .h5) to fine-tune" in outcome.err
    assert not (tmp_path / "r" / "models").exists() or not any(
        (tmp_path / "r" / "models").iterdir()
    )


def test_train_data_whose_shape_does_not_match_is_exit_2(
    reference: Reference, tmp_path: Path
) -> None:
    np.savez(tmp_path / "train.npz", x=np.zeros((10, 4, 4), np.float32), y=np.zeros(10, np.int64))
    outcome = run_cli(
        "convert",
        reference.model,
        "--name",
        "d",
        "--eval-data",
        reference.eval_data,
        "--prune",
        "0.5",
        "--train-data",
        tmp_path / "train.npz",
    )
    assert (outcome.code, outcome.out) == (2, "")
    assert "--train-data" in outcome.err and outcome.err.count("\n") == 1


def test_train_labels_outside_the_models_classes_are_exit_2(
    reference: Reference, tmp_path: Path
) -> None:
    np.savez(tmp_path / "train.npz", x=np.zeros((10, 8, 8), np.float32), y=np.full(10, 12))
    outcome = run_cli(
        "convert", reference.model, "--name", "d", "--eval-data", reference.eval_data,
        "--prune", "0.5", "--train-data", tmp_path / "train.npz", "--fine-tune-epochs", "1",
    )  # fmt: skip
    assert (outcome.code, outcome.out) == (2, "")
    assert "labels run from 12 to 12; the model has 10 classes" in outcome.err


def test_the_mask_and_schedule() -> None:
    weights = np.arange(1, 101, dtype=np.float32).reshape(10, 10) * np.where(
        np.arange(100).reshape(10, 10) % 2, 1, -1
    )
    mask = prune.magnitude_mask(weights, 0.8)
    assert int((mask == 0).sum()) == 80
    assert np.all(np.abs(weights[mask == 1]) > np.abs(weights[mask == 0]).max())
    assert prune.polynomial_sparsity(0, 100, 0.8) == 0.0
    assert prune.polynomial_sparsity(100, 100, 0.8) == pytest.approx(0.8)
    assert prune.polynomial_sparsity(500, 100, 0.8) == pytest.approx(0.8)
    assert 0 < prune.polynomial_sparsity(50, 100, 0.8) < 0.8
