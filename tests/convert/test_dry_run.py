"""`maas convert` without --publish or --out keeps nothing, and says so."""

from __future__ import annotations

from pathlib import Path

import onnx

from tests.convert.conftest import run_cli
from tests.support.onnx_models import digits_mlp

DRY_RUN = "nothing kept: a dry run (add --publish to publish, --out DIR to keep the files)"


def test_a_dry_run_says_that_nothing_was_kept(tmp_path: Path) -> None:
    path = tmp_path / "digits.onnx"
    onnx.save_model(digits_mlp(), str(path))
    outcome = run_cli("convert", path, "--name", "plain", "--precision", "fp32")
    assert outcome.code == 0, outcome.err
    assert outcome.out.rstrip("\n").endswith(DRY_RUN)
    kept = run_cli(
        "convert", path, "--name", "plain", "--precision", "fp32", "--out", tmp_path / "o"
    )
    assert kept.code == 0 and DRY_RUN not in kept.out
    assert (tmp_path / "o" / "plain-fp32.onnx").is_file()
    as_json = run_cli("convert", path, "--name", "plain", "--precision", "fp32", "--json")
    assert as_json.code == 0 and DRY_RUN not in as_json.out  # stdout stays one JSON document
    assert as_json.json()[0]["precision"] == "fp32"
