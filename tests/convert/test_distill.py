"""`maas distill`: a student at least 4x smaller, within 2 points of its teacher, that
converts, publishes (its lineage naming the teacher) and serves through V2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from maas.onnxfile import file_sha256
from maas.registry import open_registry
from tests.convert.conftest import Reference, run_cli
from tests.support.ensembles import v2_body
from tests.support.onnx_models import digits_mlp, two_heads
from tests.support.serving import call, handler_for


@pytest.fixture(scope="module")
def distilled(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("distill") / "student"
    outcome = run_cli(
        "distill",
        reference.model,
        "--train-data",
        reference.train_data,
        "--eval-data",
        reference.eval_data,
        "--out",
        out,
        "--hidden",
        "16",
        "--json",
    )
    assert outcome.code == 0, outcome.err
    return outcome.json(), out


def test_the_student_is_4x_smaller_and_within_2_points_of_the_teacher(distilled: Any) -> None:
    document, out = distilled
    teacher, student, baseline = document["rows"]
    assert teacher["model"] == "teacher" and baseline["model"] == "same, hard labels only"
    assert teacher["parameters"] >= 4 * student["parameters"]
    assert (teacher["accuracy"] - student["accuracy"]) * 100 <= 2.0
    assert student["parameters"] == baseline["parameters"]
    assert student["onnx_bytes"] < teacher["onnx_bytes"]
    assert all(r["latency_ms_b1"] > 0 and r["latency_ms_b64"] > 0 for r in document["rows"])
    assert (out / "model.keras").is_file()
    settings = json.loads((out / "distill.json").read_text())
    assert settings == document["settings"]
    assert settings["hidden"] == [16] and settings["temperature"] == 4.0
    assert settings["alpha"] == 0.3 and settings["teacher"]["registry_version"] is None


def test_the_student_converts_publishes_and_serves(
    distilled: Any, reference: Reference, tmp_path: Path
) -> None:
    document, out = distilled
    registry = tmp_path / "reg"
    outcome = run_cli(
        "convert",
        out / "model.keras",
        "--name",
        "student",
        "--eval-data",
        reference.eval_data,
        "--precision",
        "fp32",
        "--publish",
        "--alias",
        "production",
        "--registry",
        registry,
        "--json",
    )
    assert outcome.code == 0, outcome.err
    opened = open_registry(str(registry))
    lineage = opened.get_manifest("student", 1)["lineage"]
    assert lineage["distillation"]["teacher"]["sha256"] == file_sha256(reference.model)[0]
    assert lineage["distillation"]["figures"] == document["settings"]["figures"]

    with np.load(reference.eval_data) as ev:
        x, y = ev["x"][:20], ev["y"][:20]
    handler = handler_for(opened, tmp_path / "cache")
    body = v2_body(x)
    answer = call(handler, "POST", "/v2/models/student/infer", body)
    assert answer.status == 200, answer.body
    scores = np.asarray(answer.json()["outputs"][0]["data"]).reshape(20, 10)
    assert (scores.argmax(1) == y).mean() >= 0.8


def test_a_registry_teacher_is_named_with_its_version(reference: Reference, tmp_path: Path) -> None:
    registry = tmp_path / "reg"
    published = run_cli(
        "convert",
        reference.model,
        "--name",
        "teacher",
        "--eval-data",
        reference.eval_data,
        "--precision",
        "fp32",
        "--publish",
        "--alias",
        "production",
        "--registry",
        registry,
        "--json",
    )
    assert published.code == 0, published.err
    outcome = run_cli(
        "distill",
        "teacher@production",
        "--train-data",
        reference.train_data,
        "--eval-data",
        reference.eval_data,
        "--out",
        tmp_path / "student",
        "--hidden",
        "8",
        "--epochs",
        "5",
        "--registry",
        registry,
        "--json",
    )
    assert outcome.code == 0, outcome.err
    teacher = outcome.json()["settings"]["teacher"]
    assert teacher["reference"] == "teacher:1" and teacher["registry_version"] == 1
    sha = open_registry(str(registry)).get_manifest("teacher", 1)["model"]["sha256"]
    assert teacher["sha256"] == sha


def bad(tmp_path: Path, reference: Reference, *extra: str | Path, teacher: str | Path = "") -> Any:
    return run_cli(
        "distill",
        teacher or reference.model,
        "--train-data",
        reference.train_data,
        "--eval-data",
        reference.eval_data,
        "--out",
        tmp_path / "out",
        "--epochs",
        "1",
        *extra,
    )


def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    reference: Reference, tmp_path: Path
) -> None:
    wide = bad(tmp_path, reference, "--hidden", "256")
    assert wide.code == 2 and "--hidden 256 is wider than the teacher" in wide.err

    heads = tmp_path / "heads.onnx"
    onnx.save_model(two_heads(), str(heads))
    registry = tmp_path / "reg"
    assert run_cli("publish", heads, "--name", "heads", "--registry", registry).code == 0
    not_classifier = bad(tmp_path, reference, "--registry", registry, teacher="heads:1")
    assert not_classifier.code == 2 and "distill takes one-input models" in not_classifier.err

    raw = tmp_path / "raw.onnx"
    model = digits_mlp()
    del model.graph.node[-1]  # drop the Softmax: the output is logits, not probabilities
    model.graph.node[-1].output[0] = "probabilities"
    onnx.save_model(model, str(raw))
    assert run_cli("publish", raw, "--name", "logits", "--registry", registry).code == 0
    logits = bad(tmp_path, reference, "--registry", registry, teacher="logits:1")
    assert logits.code == 2 and "the teacher is not a classifier" in logits.err

    np.savez(tmp_path / "wrong.npz", x=np.zeros((5, 4, 4), np.float32), y=np.zeros(5, np.int64))
    shape = run_cli(
        "distill",
        reference.model,
        "--train-data",
        tmp_path / "wrong.npz",
        "--eval-data",
        reference.eval_data,
        "--out",
        tmp_path / "out",
    )
    assert shape.code == 2 and "rows of shape [4, 4]" in shape.err
    for outcome in (wide, not_classifier, logits, shape):
        assert outcome.out == "" and outcome.err.count("\n") == 1, outcome.err
    assert not (tmp_path / "out").exists()


def test_distill_json_names_its_student_only(distilled: Any, tmp_path: Path) -> None:
    from tests.convert.api import lineage

    document, out = distilled
    student = out / "model.keras"
    assert document["settings"]["student_sha256"] == file_sha256(student)[0]
    assert lineage.read_distillation(student, file_sha256(student)[0]) is not None
    # Another model saved beside it (the teacher, say) is not "distilled".
    assert lineage.read_distillation(student, "0" * 64) is None


def test_an_existing_student_is_never_overwritten(reference: Reference, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.keras").write_text("mine")
    outcome = bad(tmp_path, reference)
    assert outcome.code == 2 and "already exists" in outcome.err
    assert (tmp_path / "out" / "model.keras").read_text() == "mine"
