"""A precision variant must answer as its source does, not merely score as well."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from tests.convert.api import quality_gate
from tests.convert.conftest import Reference, run_cli
from tests.support.onnx_models import digits_mlp


def row(precision: str, accuracy: float, agreement: float) -> quality_gate.Row:
    return quality_gate.Row(precision, Path(precision), 1, accuracy, agreement, 1e-3, 0.1, 0.2)


def test_equal_accuracy_with_3_percent_of_answers_changed_is_refused_by_agreement() -> None:
    fp32 = quality_gate.gate(row("fp32", 0.90, 1.0), 0.90, 1.0)
    fp32.max_abs_diff = 0.0
    changed = quality_gate.gate(row("int8-static", 0.90, 0.97), 0.90, 1.0, fp32)
    assert not changed.passed
    assert changed.reason == (
        "agreement 97.00% with the top-1 of the model it was built from is below "
        "--min-agreement 98%"
    )
    # At the threshold it passes; a lower threshold lets it through.
    assert quality_gate.gate(row("fp16", 0.90, 0.98), 0.90, 1.0, fp32).passed
    assert quality_gate.gate(row("int8-static", 0.90, 0.97), 0.90, 1.0, fp32, 95.0).passed
    # A pruned or distilled variant is meant to change the function: accuracy decides.
    pruned = quality_gate.gate(row("fp16", 0.90, 0.90), 0.90, 1.0, fp32, same_function=False)
    assert pruned.passed


def test_a_badly_calibrated_int8_variant_is_refused_by_the_agreement_rule(tmp_path: Path) -> None:
    """Calibrated on inputs a tenth of the real range, int8-static clips its activations:
    its accuracy stays within --max-accuracy-drop, yet most answers change."""
    from sklearn.datasets import load_digits

    images = (load_digits().images / 16.0).astype(np.float32)
    labels = load_digits().target.astype(np.int64)
    model = tmp_path / "digits.onnx"
    onnx.save_model(digits_mlp(seed=0), str(model))
    np.savez(tmp_path / "eval.npz", x=images[:400], y=labels[:400])
    np.savez(tmp_path / "calib.npz", x=images[1000:1100] * 0.1)
    outcome = run_cli(
        "convert",
        model,
        "--name",
        "digits",
        "--eval-data",
        tmp_path / "eval.npz",
        "--calib-data",
        tmp_path / "calib.npz",
        "--precision",
        "fp32,int8-static",
        "--max-accuracy-drop",
        "5",
        "--json",
    )
    assert outcome.code == 2, outcome.err
    fp32, int8 = outcome.json()
    assert fp32["passed"] and not int8["passed"]
    assert abs(int8["accuracy"] - fp32["accuracy"]) * 100 <= 5  # the accuracy rule would pass
    assert int8["agreement"] < 0.98
    assert int8["reason"].startswith("agreement ")
    assert "below --min-agreement 98%" in int8["reason"]


def test_min_agreement_outside_0_to_100_is_exit_2(reference: Reference) -> None:
    outcome = run_cli("convert", reference.model, "--name", "d", "--min-agreement", "101")
    assert outcome.code == 2 and outcome.out == ""
    assert outcome.err == "maas: error: invalid --min-agreement '101': a percentage from 0 to 100\n"
