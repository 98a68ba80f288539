"""Ensembles served through the real handler: V2 and TF Serving answers agree with
the combiner applied by hand to the members' own onnxruntime sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maas.config import ServingConfig
from maas.ensemble.combine import Combiner
from maas.ensemble.create import create_ensemble
from maas.ensemble.members import member_specs
from maas.promotion import release
from maas.registry import Registry
from maas.serving.dataplane import DataPlane
from maas.tensors import InferenceRequest, Tensor
from tests.support import onnx_models
from tests.support.ensembles import (
    digits_rows,
    mean_by_hand,
    publish_members,
    run_members,
    v2_body,
    vote_by_hand,
)
from tests.support.serving import call, handler_for

CASES: list[tuple[Combiner, list[str], list[float] | None]] = [
    ("mean", ["digits-a@production", "digits-b:1"], None),
    ("mean", ["digits-a:1", "digits-b@production", "digits-c:1"], [3.0, 1.0, 0.5]),
    ("vote", ["digits-a:1", "digits-b:1", "digits-c@production"], None),
    ("vote", ["digits-a:1", "digits-b:1", "digits-c:1"], [2.0, 1.0, 1.5]),
]


@pytest.fixture
def members(registry: Registry, tmp_path: Path) -> dict[str, Path]:
    return publish_members(registry, tmp_path)


@pytest.mark.parametrize(("combiner", "refs", "weights"), CASES)
def test_v2_answers_as_the_combiner_applied_by_hand(
    registry: Registry,
    members: dict[str, Path],
    tmp_path: Path,
    combiner: Combiner,
    refs: list[str],
    weights: list[float] | None,
) -> None:
    created = create_ensemble(
        registry, "digits-ens", member_specs(refs, weights), combiner, alias="production"
    )
    assert created.alias_status == "moved", created.deployment
    x = digits_rows(64)
    answers = run_members([members[ref.split("@")[0].split(":")[0]] for ref in refs], x)
    w = weights or [1.0] * len(refs)
    expected = mean_by_hand(answers, w) if combiner == "mean" else vote_by_hand(answers, w)

    handler = handler_for(registry, tmp_path / "cache")
    answer = call(handler, "POST", "/v2/models/digits-ens/infer", v2_body(x))
    assert answer.status == 200, answer.body
    document = answer.json()
    assert answer.headers["x-maas-model-version"] == str(created.version)
    assert document["model_version"] == str(created.version)
    names = [ref.split("@")[0].split(":")[0] for ref in refs]
    assert document["parameters"]["members"] == [{"name": n, "version": "1"} for n in names]
    (output,) = document["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [64, 10]
    got = np.asarray(output["data"]).reshape(64, 10)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    if combiner == "vote":
        np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))

    tf = call(handler, "POST", "/v1/models/digits-ens:predict", {"instances": x[:3].tolist()})
    assert tf.status == 200, tf.body
    np.testing.assert_allclose(np.asarray(tf.json()["predictions"]), expected[:3], atol=1e-6)


def test_a_constructed_tie_goes_to_the_higher_mean_not_the_lower_index(
    registry: Registry, tmp_path: Path
) -> None:
    # a votes 1, b votes 2: 0.5 each. Mean of class 2 (0.5) beats class 1 (0.425),
    # so class 2 wins; a plain argmax would have said 1.
    a = onnx_models.constant_classifier([0.1, 0.6, 0.3])
    b = onnx_models.constant_classifier([0.05, 0.25, 0.7])
    for name, model in (("tie-a", a), ("tie-b", b)):
        release(registry, onnx_models.save(model, tmp_path / f"{name}.onnx"), name)
    specs = member_specs(["tie-a:1", "tie-b:1"])
    create_ensemble(registry, "tie", specs, "vote", alias="production")
    fused = create_ensemble(registry, "tie-fused", specs, "vote", alias="production", fuse=True)
    assert fused.alias_status == "moved"
    handler = handler_for(registry, tmp_path / "cache")
    x = digits_rows(2)
    for name in ("tie", "tie-fused"):
        answer = call(handler, "POST", f"/v2/models/{name}/infer", v2_body(x))
        assert answer.status == 200, answer.body
        rows = np.asarray(answer.json()["outputs"][0]["data"]).reshape(2, 3)
        np.testing.assert_allclose(rows, [[0.0, 0.5, 0.5001]] * 2, atol=1e-6)
        assert list(rows.argmax(-1)) == [2, 2]


@pytest.mark.parametrize(("combiner", "refs", "weights"), CASES)
def test_the_fused_version_answers_as_the_unfused_one(
    registry: Registry,
    members: dict[str, Path],
    tmp_path: Path,
    combiner: Combiner,
    refs: list[str],
    weights: list[float] | None,
) -> None:
    exact = [ref.replace("@production", ":1") for ref in refs]
    specs = member_specs(exact, weights)
    create_ensemble(registry, "unfused", specs, combiner, alias="production")
    fused = create_ensemble(registry, "fused", specs, combiner, alias="production", fuse=True)
    assert fused.alias_status == "moved", fused.deployment
    lineage = fused.manifest["lineage"]["members"]
    assert [(m["name"], m["version"]) for m in lineage] == [(ref.split(":")[0], 1) for ref in exact]
    assert all(len(m["sha256"]) == 64 for m in lineage)
    assert fused.manifest.get("kind", "model") == "model"

    handler = handler_for(registry, tmp_path / "cache")
    x = digits_rows(64, seed=3)
    results = []
    for name in ("unfused", "fused"):
        answer = call(handler, "POST", f"/v2/models/{name}/infer", v2_body(x))
        assert answer.status == 200, answer.body
        results.append(np.asarray(answer.json()["outputs"][0]["data"]).reshape(64, 10))
    np.testing.assert_allclose(results[1], results[0], atol=1e-6)


def test_metadata_reports_the_ensemble_platform_and_members(
    registry: Registry, members: dict[str, Path], tmp_path: Path
) -> None:
    specs = member_specs(["digits-a@production", "digits-b:1"], [2.0, 1.0])
    create_ensemble(registry, "digits-ens", specs, "mean", alias="production")
    handler = handler_for(registry, tmp_path / "cache")
    answer = call(handler, "GET", "/v2/models/digits-ens")
    assert answer.status == 200
    assert answer.json() == {
        "name": "digits-ens",
        "versions": ["1"],
        "platform": "maas_ensemble",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
        "members": [
            {"name": "digits-a", "version": "1", "ref": "digits-a@production", "weight": 2.0},
            {"name": "digits-b", "version": "1", "ref": "digits-b:1", "weight": 1.0},
        ],
        "combiner": "mean",
    }
    plain = call(handler, "GET", "/v2/models/digits-a").json()
    assert plain["platform"] == "onnxruntime_onnx" and "members" not in plain
    assert call(handler, "GET", "/v2/models/digits-ens/ready").status == 200


def test_a_member_alias_move_is_served_within_the_ttl(
    registry: Registry, members: dict[str, Path], tmp_path: Path
) -> None:
    specs = member_specs(["digits-a@production", "digits-b:1"])
    create_ensemble(registry, "digits-ens", specs, "mean", alias="production")
    moved = onnx_models.save(onnx_models.digits_mlp(seed=7), tmp_path / "a2.onnx")
    now = [1000.0]
    plane = DataPlane(
        ServingConfig(registry_url=registry.url, cache_dir=tmp_path / "cache"),
        clock=lambda: now[0],
    )
    x = digits_rows(4)
    request = InferenceRequest([Tensor("input", "FP32", x)])

    def answer() -> tuple[list[dict[str, str]], np.ndarray]:
        result = plane.infer("digits-ens", request)
        return result.parameters["members"], result.outputs[0].array

    before, first = answer()
    assert before[0] == {"name": "digits-a", "version": "1"}
    release(registry, moved, "digits-a", alias="production")  # digits-a@production -> 2
    now[0] += plane.config.alias_ttl_seconds / 2
    assert answer()[0] == before  # within the TTL the alias document is the cached one
    now[0] += plane.config.alias_ttl_seconds
    after, second = answer()
    assert after[0] == {"name": "digits-a", "version": "2"}
    expected = mean_by_hand(run_members([moved, members["digits-b"]], x), [1.0, 1.0])
    np.testing.assert_allclose(second, expected, atol=1e-6)
    assert not np.allclose(first, second)
    # The members are the model cache's entries, under its one budget.
    assert {("digits-a", 1), ("digits-a", 2), ("digits-b", 1)} <= set(plane.models.loaded())


def test_a_member_that_cannot_load_is_a_503_naming_it(
    registry: Registry, members: dict[str, Path], tmp_path: Path
) -> None:
    specs = member_specs(["digits-a:1", "digits-b:1"])
    create_ensemble(registry, "digits-ens", specs, "mean", alias="production")
    registry.store.put(registry.model_key("digits-b", 1), b"not the bytes the manifest names")
    handler = handler_for(registry, tmp_path / "cache")
    x = digits_rows(2)
    broken = call(handler, "POST", "/v2/models/digits-ens/infer", v2_body(x))
    assert broken.status == 503
    assert "member digits-b:1 cannot be loaded" in broken.error()
    assert call(handler, "POST", "/v2/models/digits-a/infer", v2_body(x)).status == 200
    assert call(handler, "POST", "/v2/models/digits-c/infer", v2_body(x)).status == 200


def test_bad_input_to_an_ensemble_is_a_400_as_for_a_model(
    registry: Registry, members: dict[str, Path], tmp_path: Path
) -> None:
    specs = member_specs(["digits-a:1", "digits-b:1"])
    create_ensemble(registry, "digits-ens", specs, "vote", alias="production")
    handler = handler_for(registry, tmp_path / "cache")
    wrong = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}
    for name in ("digits-ens", "digits-a"):
        answer = call(handler, "POST", f"/v2/models/{name}/infer", wrong)
        assert answer.status == 400
        assert "input" in answer.error()


def test_ensembles_appear_in_the_model_index_and_the_statistics(
    registry: Registry, members: dict[str, Path], tmp_path: Path
) -> None:
    specs = member_specs(["digits-a@production", "digits-b:1"], None)
    create_ensemble(registry, "digits-ens", specs, "mean", alias="production")
    handler = handler_for(registry, tmp_path / "cache")
    index = {m["name"]: m for m in call(handler, "GET", "/v2/models").json()["models"]}
    assert index["digits-ens"]["kind"] == "ensemble"
    assert index["digits-ens"]["aliases"] == {"production": 1}
    assert index["digits-a"]["kind"] == "model"
    triton = call(handler, "POST", "/v2/repository/index").json()
    assert {"name": "digits-ens", "version": "1", "state": "READY", "reason": ""} in triton

    assert (
        call(handler, "POST", "/v2/models/digits-ens/infer", v2_body(digits_rows(5))).status == 200
    )
    (stats,) = call(handler, "GET", "/v2/models/digits-ens/stats").json()["model_stats"]
    assert (stats["name"], stats["version"], stats["inference_count"]) == ("digits-ens", "1", 5)
    assert stats["inference_stats"]["success"]["count"] == 1
