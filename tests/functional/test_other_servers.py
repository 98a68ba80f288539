"""What users of other servers look for: a model index (maas's and Triton's), Triton's
statistics, TF Serving's `:classify` with class labels, and `--labels`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from maas.cli import main
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore
from tests.support import onnx_models
from tests.support.ensembles import v2_body
from tests.support.serve_process import ServeProcess
from tests.support.serving import call, handler_for

LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ROWS = np.random.default_rng(7).random((3, 8, 8), dtype=np.float32)


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def labels_file(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def registry(tmp_path: Path, onnx_model: Path, onnx_model_b: Path, labels_file: Path) -> Registry:
    """digits:1 (production, labelled with --labels), digits:2 (staging, no labels),
    heads:1 (production; two outputs)."""
    root = tmp_path / "reg"
    publish = ["publish", str(onnx_model), "--name", "digits", "--alias", "production"]
    assert main([*publish, "--labels", str(labels_file), "--registry", str(root)]) == 0
    registry = Registry(LocalStore(root))
    release(registry, onnx_model_b, "digits", alias="staging")
    heads = onnx_models.save(onnx_models.two_heads(), tmp_path / "heads.onnx")
    release(registry, heads, "heads", alias="production")
    return registry


@pytest.fixture
def handler(registry: Registry, tmp_path: Path) -> Any:
    return handler_for(registry, tmp_path / "cache")


def probabilities(model: Path, rows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"input": rows})[0])


# ------------------------------------------------------------------- index
def test_the_model_index_lists_every_model_with_its_aliases_and_versions(handler: Any) -> None:
    answer = call(handler, "GET", "/v2/models")
    assert answer.status == 200
    assert answer.json() == {
        "models": [
            {
                "name": "digits",
                "latest_version": 2,
                "aliases": {"production": 1, "staging": 2},
                "versions": [1, 2],
                "kind": "model",
            },
            {
                "name": "heads",
                "latest_version": 1,
                "aliases": {"production": 1},
                "versions": [1],
                "kind": "model",
            },
        ]
    }


def test_the_triton_repository_index_lists_each_committed_version(handler: Any) -> None:
    expected = [
        {"name": "digits", "version": "1", "state": "READY", "reason": ""},
        {"name": "digits", "version": "2", "state": "READY", "reason": ""},
        {"name": "heads", "version": "1", "state": "READY", "reason": ""},
    ]
    assert call(handler, "POST", "/v2/repository/index").json() == expected  # tritonclient's
    assert call(handler, "POST", "/v2/repository/index", {"ready": True}).json() == expected
    bad = call(handler, "POST", "/v2/repository/index", {"ready": "yes"})
    assert (bad.status, bad.error()) == (400, "'ready' must be true or false")
    unknown = call(handler, "POST", "/v2/repository/index", {"verbose": True})
    assert unknown.status == 400 and "'verbose'" in unknown.error()
    assert call(handler, "GET", "/v2/repository/index").status == 405


# -------------------------------------------------------------- statistics
def infer(handler: Any, path: str, rows: np.ndarray) -> int:
    body = v2_body(rows)
    return call(handler, "POST", path, body).status


def test_statistics_count_what_this_environment_answered_in_tritons_shape(handler: Any) -> None:
    assert call(handler, "GET", "/v2/models/stats").json() == {"model_stats": []}
    assert infer(handler, "/v2/models/digits/infer", ROWS) == 200  # batch 3
    assert infer(handler, "/v2/models/digits/infer", ROWS[:1]) == 200  # batch 1
    assert infer(handler, "/v2/models/digits/infer", ROWS[:, :4]) == 400  # wrong shape
    assert infer(handler, "/v2/models/digits/versions/2/infer", ROWS[:2]) == 200

    every = call(handler, "GET", "/v2/models/stats").json()["model_stats"]
    assert [(s["name"], s["version"]) for s in every] == [("digits", "1"), ("digits", "2")]
    first = every[0]
    assert first["inference_count"] == 4 and first["execution_count"] == 2
    stats = first["inference_stats"]
    assert stats["success"]["count"] == 2 and stats["fail"]["count"] == 1
    assert stats["compute_infer"]["count"] == 2 and stats["compute_infer"]["ns"] > 0
    assert stats["success"]["ns"] >= stats["compute_infer"]["ns"]
    assert stats["queue"] == {"count": 0, "ns": 0}
    assert [b["batch_size"] for b in first["batch_stats"]] == [1, 3]
    assert first["last_inference"] > 1_700_000_000_000  # milliseconds since the epoch

    one = call(handler, "GET", "/v2/models/digits/stats").json()["model_stats"]
    assert one == every
    by_alias = call(handler, "GET", "/v2/models/digits/versions/staging/stats").json()
    assert by_alias == {"model_stats": [every[1]]}
    assert call(handler, "GET", "/v2/models/heads/stats").json() == {"model_stats": []}
    missing = call(handler, "GET", "/v2/models/nope/stats")
    assert missing.status == 404 and "digits, heads" in missing.error()
    assert call(handler, "GET", "/v2/models/digits/versions/9/stats").status == 404


def test_stats_is_a_reserved_model_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, onnx_model: Path
) -> None:
    code, out, err = cli(capsys, "publish", onnx_model, "--name", "stats", "--registry", tmp_path)
    assert (code, out) == (2, "")
    assert "'stats' is reserved" in err and err.count("\n") == 1


def test_tritonclient_reads_the_index_and_the_statistics(
    registry: Registry, tmp_path: Path
) -> None:
    import tritonclient.http as triton

    with ServeProcess(registry, tmp_path / "serve") as server:
        client = triton.InferenceServerClient(server.url.removeprefix("http://"))
        index = client.get_model_repository_index()
        assert {(m["name"], m["version"]) for m in index} == {
            ("digits", "1"),
            ("digits", "2"),
            ("heads", "1"),
        }
        x = triton.InferInput("input", [1, 8, 8], "FP32")
        x.set_data_from_numpy(ROWS[:1])
        client.infer("digits", [x])
        stats = client.get_inference_statistics("digits")["model_stats"]
        assert stats[0]["inference_count"] == 1
        assert client.get_inference_statistics("digits", "1")["model_stats"] == stats
        assert client.get_inference_statistics()["model_stats"] == stats


# ---------------------------------------------------------------- classify
def test_classify_answers_labels_and_scores_sorted_by_score(handler: Any, onnx_model: Path) -> None:
    examples = [{"input": rows.tolist()} for rows in ROWS]
    answer = call(handler, "POST", "/v1/models/digits:classify", {"examples": examples})
    assert answer.status == 200, answer.body
    assert answer.headers["x-maas-model-version"] == "1"
    document = answer.json()
    assert document["results"] == document["result"]  # result: TF Serving's own key
    expected = probabilities(onnx_model, ROWS)
    for ranked, row in zip(document["results"], expected, strict=True):
        assert [label for label, _ in ranked] == [
            LABELS[i] for i in np.argsort(-row, kind="stable")
        ]
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True)
        assert np.allclose(scores, np.sort(row)[::-1], atol=1e-7)
        predicted = call(
            handler, "POST", "/v1/models/digits:predict", {"instances": [ROWS[0].tolist()]}
        )
        assert predicted.status == 200


def test_classify_without_labels_names_classes_by_index(handler: Any, onnx_model_b: Path) -> None:
    examples = [{"input": ROWS[0].tolist()}]
    for path in (
        "/v1/models/digits/labels/staging:classify",
        "/v1/models/digits/versions/2:classify",
    ):
        answer = call(handler, "POST", path, {"examples": examples})
        assert answer.status == 200, answer.body
        top = answer.json()["results"][0][0]
        assert top[0] == str(int(np.argmax(probabilities(onnx_model_b, ROWS[:1])[0])))


def test_classify_takes_shared_features_from_context(handler: Any) -> None:
    body = {"examples": [{}], "context": {"input": ROWS[0].tolist()}}
    assert call(handler, "POST", "/v1/models/digits:classify", body).status == 200


@pytest.mark.parametrize(
    ("path", "body", "mentions"),
    [
        ("/v1/models/digits:classify", {"instances": [[0]]}, "unknown field 'instances'"),
        ("/v1/models/digits:classify", {"examples": []}, "needs 'examples'"),
        ("/v1/models/digits:classify", {"examples": [[0.5]]}, "example 0 is not an object"),
        ("/v1/models/digits:classify", {"examples": [{"x": 1}]}, "unknown input 'x'"),
        (
            "/v1/models/digits:classify",
            {"examples": [{"input": [[0.5] * 8] * 8}], "context": {"input": 1}},
            "repeats 'input'",
        ),
        (
            "/v1/models/digits:classify",
            {"examples": [{"input": [[0.5] * 8] * 8}], "signature_name": "classify"},
            "unknown signature_name",
        ),
        (
            "/v1/models/heads:classify",
            {"examples": [{"a": [1.0] * 4, "b": [1.0] * 4}]},
            "one output",
        ),
    ],
)
def test_a_bad_classify_request_is_a_400_naming_the_problem(
    handler: Any, path: str, body: Any, mentions: str
) -> None:
    answer = call(handler, "POST", path, body)
    assert answer.status == 400 and mentions in answer.error(), answer.body


def test_classify_of_an_unknown_model_is_a_404(handler: Any) -> None:
    assert call(handler, "POST", "/v1/models/nope:classify", {"examples": [{}]}).status == 404


# ------------------------------------------------------------------ labels
def test_labels_are_kept_in_the_manifest_and_shown(registry: Registry) -> None:
    assert registry.get_manifest("digits", 1)["labels"] == LABELS
    assert registry.get_manifest("digits", 2)["labels"] is None


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        ("a\nb\nc\n", "has 3 labels, but output 'probabilities' has 10 classes"),
        ("\n".join([*LABELS[:5], "", *LABELS[6:]]), "line 6 is blank"),
        ("\n".join([*LABELS[:9], "zero"]), "line 10 repeats 'zero' of line 1"),
        (b"\xff\xfe", "is not UTF-8 text"),
        ("", "is empty"),
    ],
)
def test_bad_labels_exit_2_and_publish_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    onnx_model: Path,
    content: str | bytes,
    mentions: str,
) -> None:
    labels = tmp_path / "labels.txt"
    if isinstance(content, bytes):
        labels.write_bytes(content)
    else:
        labels.write_text(content, encoding="utf-8")
    root = tmp_path / "reg"
    argv: list[str | Path] = [
        "publish",
        onnx_model,
        "--name",
        "digits",
        "--labels",
        labels,
        "--registry",
        root,
    ]
    code, out, err = cli(capsys, *argv)
    assert (code, out) == (2, ""), err
    assert err.startswith("maas: error: ") and mentions in err and err.count("\n") == 1
    assert not root.exists() or Registry(LocalStore(root)).list_models() == []


def test_convert_keeps_labels_and_refuses_a_wrong_count(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, onnx_model: Path, labels_file: Path
) -> None:
    root = tmp_path / "reg"
    common: list[str | Path] = [
        "convert",
        onnx_model,
        "--name",
        "digits",
        "--precision",
        "fp32",
        "--publish",
    ]
    code, _, err = cli(capsys, *common, "--labels", labels_file, "--registry", root, "--json")
    assert code == 0, err
    assert Registry(LocalStore(root)).get_manifest("digits", 1)["labels"] == LABELS

    short = tmp_path / "short.txt"
    short.write_text("cat\ndog\n", encoding="utf-8")
    code, out, err = cli(capsys, *common, "--labels", short, "--registry", root)
    assert (code, out) == (2, "")
    assert "has 2 labels, but output 'probabilities' has 10 classes" in err
    assert Registry(LocalStore(root)).list_versions("digits") == [1]
    missing = cli(capsys, *common, "--labels", tmp_path / "nope.txt", "--registry", root)
    assert missing[0] == 2 and "does not exist" in missing[2]


def test_show_prints_the_labels(capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    code, out, _ = cli(capsys, "models", "show", "digits:1", "--registry", registry.url)
    assert code == 0 and "labels   zero, one, two" in out
    assert (
        json.loads(
            cli(capsys, "models", "show", "digits:1", "--registry", registry.url, "--json")[1]
        )["labels"]
        == LABELS
    )
