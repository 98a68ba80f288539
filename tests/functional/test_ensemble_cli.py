"""`maas ensemble create` and the `models` commands on ensembles: outputs, refusals
(exit 2, one line, nothing written), pull, show and alias --delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto

from maas.registry import Registry, open_registry
from tests.functional.test_cli import Cli
from tests.support import onnx_models

PROBS = [0.1, 0.2, 0.3, 0.4]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    (tmp_path / "registry" / "models").mkdir(parents=True)
    return Cli(capsys, f"file://{tmp_path / 'registry'}")


@pytest.fixture
def registry(cli: Cli) -> Registry:
    return open_registry(cli.registry)


def publish(cli: Cli, tmp_path: Path, name: str, model: object, alias: str = "production") -> None:
    path = onnx_models.save(model, tmp_path / f"{name}.onnx")  # type: ignore[arg-type]
    code, _, err = cli("publish", str(path), "--name", name, "--alias", alias)
    assert code == 0, err


@pytest.fixture
def members(cli: Cli, tmp_path: Path) -> None:
    publish(cli, tmp_path, "a", onnx_models.digits_mlp(seed=0))
    publish(cli, tmp_path, "b", onnx_models.digits_mlp(seed=1))


def test_create_prints_the_version_and_json_like_publish(cli: Cli, members: None) -> None:
    code, out, err = cli("ensemble", "create", "ens", "--member", "a@production",
                         "--member", "b:1", "--combiner", "mean")  # fmt: skip
    assert (code, out, err) == (0, "1\n", "")
    document = cli.json("ensemble", "create", "ens", "--member", "a:1", "--member", "b:1",
                        "--weight", "2", "1", "--combiner", "vote")  # fmt: skip
    assert document == {"name": "ens", "version": 2}
    moved = cli.json("ensemble", "create", "ens", "--member", "a:1", "--member", "b:1",
                     "--combiner", "vote", "--alias", "production")  # fmt: skip
    assert moved["version"] == 3
    assert moved["alias"] == {
        "name": "production",
        "status": "moved",
        "reason": moved["alias"]["reason"],
    }
    fused = cli.json("ensemble", "create", "ens-fused", "--member", "a:1", "--member", "b:1",
                     "--weight", "1", "--weight", "3", "--combiner", "mean", "--fuse")  # fmt: skip
    assert fused == {"name": "ens-fused", "version": 1}


def test_show_gives_the_members_and_the_combiner(cli: Cli, members: None) -> None:
    cli("ensemble", "create", "ens", "--member", "a@production", "--member", "b:1",
        "--weight", "2", "1", "--combiner", "vote")  # fmt: skip
    code, out, _ = cli("models", "show", "ens:1")
    assert code == 0
    assert "combiner vote" in out
    assert "members  a@production (weight 2), b:1 (weight 1)" in out
    shown = cli.json("models", "show", "ens:1")
    assert shown["kind"] == "ensemble" and shown["combiner"] == "vote"
    assert shown["members"] == [{"ref": "a@production", "weight": 2.0},
                                {"ref": "b:1", "weight": 1.0}]  # fmt: skip
    assert "model" not in shown and "precision" not in shown and "source" not in shown
    assert len(shown["golden_samples"]) == 3
    cli("ensemble", "create", "fused", "--member", "a:1", "--member", "b:1",
        "--combiner", "vote", "--fuse")  # fmt: skip
    code, out, _ = cli("models", "show", "fused:1")
    assert "fused    vote of a:1, b:1" in out


def test_pull_of_an_ensemble_exits_2(cli: Cli, members: None, tmp_path: Path) -> None:
    cli("ensemble", "create", "ens", "--member", "a:1", "--member", "b:1", "--combiner", "mean",
        "--alias", "production")  # fmt: skip
    err = cli.fails(2, "models", "pull", "ens", "--out", str(tmp_path / "x.onnx"))
    assert "ens:1 is an ensemble: it has no bytes to pull" in err
    assert not (tmp_path / "x.onnx").exists()


def test_alias_delete_refuses_an_alias_an_ensemble_follows(
    cli: Cli, members: None, registry: Registry
) -> None:
    cli("models", "alias", "a", "staging", "1")
    cli("ensemble", "create", "ens", "--member", "a@staging", "--member", "b:1",
        "--combiner", "mean")  # fmt: skip
    err = cli.fails(2, "models", "alias", "a", "staging", "--delete")
    assert "a@staging is a member of the ensemble ens:1" in err
    assert registry.read_alias("a", "staging") is not None
    code, _, err = cli("models", "alias", "a", "staging", "--delete", "--force")
    assert code == 0, err
    assert registry.read_alias("a", "staging") is None
    # An alias no ensemble follows is deleted as before.
    cli("models", "alias", "b", "staging", "1")
    assert cli("models", "alias", "b", "staging", "--delete")[0] == 0


def refusal(cli: Cli, registry: Registry, *argv: str) -> str:
    err = cli.fails(2, "ensemble", "create", "ens", *argv)
    assert registry.list_versions("ens") == []
    assert list(registry.store.list_keys("models/ens/")) == []  # not even a claim
    return err


def test_fewer_than_two_members_is_refused(cli: Cli, members: None, registry: Registry) -> None:
    err = refusal(cli, registry, "--member", "a:1", "--combiner", "mean")
    assert "at least two members, got 1" in err


def test_a_member_that_does_not_exist_is_refused(
    cli: Cli, members: None, registry: Registry
) -> None:
    assert "member nope:1 does not exist" in refusal(
        cli, registry, "--member", "a:1", "--member", "nope:1", "--combiner", "mean"
    )
    assert "member a:9 does not exist" in refusal(
        cli, registry, "--member", "a:9", "--member", "b:1", "--combiner", "mean"
    )
    assert "member a@canary does not exist" in refusal(
        cli, registry, "--member", "a@canary", "--member", "b:1", "--combiner", "mean"
    )


def test_a_member_that_is_an_ensemble_is_refused(
    cli: Cli, members: None, registry: Registry
) -> None:
    cli("ensemble", "create", "inner", "--member", "a:1", "--member", "b:1", "--combiner", "mean")
    err = refusal(cli, registry, "--member", "a:1", "--member", "inner:1", "--combiner", "mean")
    assert "member inner:1 is inner:1, itself an ensemble" in err


def test_an_archived_member_is_refused(cli: Cli, members: None, registry: Registry) -> None:
    cli("models", "archive", "b:1")
    err = refusal(cli, registry, "--member", "a:1", "--member", "b:1", "--combiner", "vote")
    assert "b:1 is b:1, an archived version" in err
    err = refusal(
        cli, registry, "--member", "a:1", "--member", "b@production", "--combiner", "vote"
    )
    assert "member b@production is b:1, an archived version" in err


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (["1"], "1 weight(s) for 2 members"),
        (["1", "2", "3"], "3 weight(s) for 2 members"),
        (["1", "0"], "invalid weight '0': weights must be positive"),
        (["-1", "1"], "invalid weight '-1': weights must be positive"),
        (["1", "nan"], "invalid weight 'nan'"),
    ],
)
def test_weights_that_do_not_fit_are_refused(
    cli: Cli, members: None, registry: Registry, weights: list[str], expected: str
) -> None:
    err = refusal(cli, registry, "--member", "a:1", "--member", "b:1",
                  "--weight", *weights, "--combiner", "mean")  # fmt: skip
    assert expected in err


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (
            onnx_models.constant_classifier(PROBS, input_name="x"),
            "inputs are named ['input'], not ['x']",
        ),
        (
            onnx_models.constant_classifier(PROBS, input_type=TensorProto.DOUBLE),
            "input 'input' is FP32, not FP64",
        ),
        (
            onnx_models.constant_classifier(PROBS, input_shape=("batch", 4, 16)),
            "input 'input' has shape [-1, 8, 8], which [-1, 4, 16] cannot satisfy",
        ),
        (
            onnx_models.constant_classifier(PROBS, output_name="y"),
            "outputs are named ['probabilities'], not ['y']",
        ),
        (
            onnx_models.constant_classifier([0.5, 0.5]),
            "output 'probabilities' has shape [-1, 4], which [-1, 2] cannot satisfy",
        ),
    ],
)
def test_members_that_disagree_are_refused_naming_the_difference(
    cli: Cli, tmp_path: Path, registry: Registry, other: object, expected: str
) -> None:
    publish(cli, tmp_path, "a", onnx_models.constant_classifier(PROBS))
    publish(cli, tmp_path, "b", other)
    err = refusal(cli, registry, "--member", "a:1", "--member", "b:1", "--combiner", "mean")
    assert "members a:1 and b:1 do not agree: " + expected in err


def test_a_batch_dimension_fixed_in_one_member_agrees(
    cli: Cli, tmp_path: Path, registry: Registry
) -> None:
    publish(cli, tmp_path, "a", onnx_models.constant_classifier(PROBS))
    publish(cli, tmp_path, "b", onnx_models.constant_classifier(PROBS, input_shape=(1, 8, 8)))
    assert cli.json("ensemble", "create", "ens", "--member", "a:1", "--member", "b:1",
                    "--combiner", "mean")["version"] == 1  # fmt: skip
    assert registry.get_manifest("ens", 1)["inputs"][0]["shape"] == [1, 8, 8]


def test_fuse_refuses_alias_members_and_different_opsets(
    cli: Cli, tmp_path: Path, registry: Registry
) -> None:
    publish(cli, tmp_path, "a", onnx_models.constant_classifier(PROBS))
    publish(cli, tmp_path, "b", onnx_models.constant_classifier(PROBS, opset=15))
    err = refusal(cli, registry, "--member", "a@production", "--member", "b:1",
                  "--combiner", "mean", "--fuse")  # fmt: skip
    assert "--fuse takes NAME:VERSION members only" in err and "a@production" in err
    err = refusal(
        cli, registry, "--member", "a:1", "--member", "b:1", "--combiner", "mean", "--fuse"
    )
    assert "different ai.onnx opsets (17 and 15" in err


def test_bad_usage_is_exit_2(cli: Cli, members: None, registry: Registry) -> None:
    assert "--combiner" in refusal(cli, registry, "--member", "a:1", "--member", "b:1")
    assert "invalid choice" in refusal(cli, registry, "--member", "a:1", "--member", "b:1",
                                       "--combiner", "median")  # fmt: skip
    assert "names no version" in refusal(cli, registry, "--member", "a", "--member", "b:1",
                                         "--combiner", "mean")  # fmt: skip
