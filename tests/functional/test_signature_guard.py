"""The signature guard: an alias, or its canary, never moves to a version whose inputs
or outputs its clients cannot call alike, on every path, unless forced."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from maas.cli import main
from maas.errors import InvalidInput
from maas.promotion import release
from maas.registry import Registry
from maas.signature_guard import SignatureMismatch, signature_difference
from maas.store import LocalStore
from maas.upload_events import Deployer
from tests.support import onnx_models
from tests.support.make_events import s3_put


def renamed_output(path: Path, new: str) -> Path:
    """The digits model with its output renamed, as a SavedModel export names it."""
    model = onnx_models.digits_mlp(seed=3)
    for node in model.graph.node:
        node.output[:] = [new if o == "probabilities" else o for o in node.output]
    model.graph.output[0].name = new
    onnx.checker.check_model(model)
    return onnx_models.save(model, path)


@pytest.fixture
def root(tmp_path: Path, onnx_model: Path) -> Path:
    registry = Registry(LocalStore(tmp_path / "reg"))
    release(registry, onnx_model, "digits", alias="production")  # v1: input -> probabilities
    return tmp_path / "reg"


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def spec(name: str, datatype: str, shape: list[int]) -> dict[str, object]:
    return {"name": name, "datatype": datatype, "shape": shape}


def test_compatibility_rules() -> None:
    base = {"inputs": [spec("x", "FP32", [-1, 64])], "outputs": [spec("y", "FP32", [-1, 10])]}
    assert signature_difference(base, base) is None
    dynamic = {"inputs": [spec("x", "FP32", [8, -1])], "outputs": [spec("y", "FP32", [-1, 10])]}
    assert signature_difference(base, dynamic) is None  # [-1, 64] and [8, -1] meet at [8, 64]
    cases = {
        "outputs are named ['y'], not ['digit']": {"outputs": [spec("digit", "FP32", [-1, 10])]},
        "input 'x' is FP32, not FP16": {"inputs": [spec("x", "FP16", [-1, 64])]},
        "input 'x' has shape [-1, 64], which [-1, 32] cannot satisfy": {
            "inputs": [spec("x", "FP32", [-1, 32])]
        },
        "input 'x' has shape [-1, 64], which [-1, 8, 8] cannot satisfy": {
            "inputs": [spec("x", "FP32", [-1, 8, 8])]
        },
    }
    for message, change in cases.items():
        assert signature_difference(base, {**base, **change}) == message


def test_models_alias_refuses_an_incompatible_version_unless_forced(
    capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path
) -> None:
    registry = Registry(LocalStore(root))
    registry.publish(renamed_output(tmp_path / "saved.onnx", "output_0"), "digits")  # v2
    code, _, err = run(capsys, "models", "alias", "digits", "production", "2", "--registry", root)
    assert code == 2 and err.count("\n") == 1
    assert "moving digits@production from version 1 to version 2 would change" in err
    assert "outputs are named ['probabilities'], not ['output_0']" in err
    assert "--force" in err and "--output-names" in err
    assert registry.get_alias("digits", "production")["version"] == 1
    # The canary is guarded too.
    code, _, err = run(
        capsys, "models", "alias", "digits", "production", "1", "--canary", "2", "--weight",
        "0.5", "--registry", root,
    )  # fmt: skip
    assert code == 2 and "from version 1 to version 2" in err
    assert registry.get_alias("digits", "production")["canary"] is None

    code, out, err = run(
        capsys, "models", "alias", "digits", "production", "2", "--force", "--registry", root
    )
    assert (code, out, err) == (0, "digits@production -> 2, previous 1\n", "")
    records = registry.history("digits", "production")
    assert records[-1]["to"] == 2 and records[-1]["forced"] is True
    assert "forced" not in records[0]


def test_publish_alias_is_refused_before_anything_is_written(
    capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path
) -> None:
    other = renamed_output(tmp_path / "saved.onnx", "digit")
    code, out, err = run(
        capsys, "publish", other, "--name", "digits", "--alias", "production", "--registry", root
    )
    assert (code, out) == (2, "")
    assert "from version 1 to the new version would change" in err
    registry = Registry(LocalStore(root))
    assert registry.list_versions("digits") == [1]
    assert not any("/versions/2/" in key for key in registry.store.list_keys("models/"))
    code, out, _ = run(
        capsys, "publish", other, "--name", "digits", "--alias", "production", "--force",
        "--registry", root, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["alias"]["status"] == "moved"
    assert registry.history("digits", "production")[-1]["forced"] is True


def test_the_deployer_records_failed_with_the_signature_check(
    root: Path, tmp_path: Path, onnx_model: Path
) -> None:
    registry = Registry(LocalStore(root))
    deploy = {"deploy": {"alias": "production", "canary_weight": None}}
    version = registry.publish(
        renamed_output(tmp_path / "s.onnx", "digit"), "digits", details=deploy
    )
    deployer = Deployer(registry, "production")
    key = f"models/digits/versions/{version.version}/manifest.json"
    (outcome,) = deployer.handle_event(s3_put(key, 100, "etag", "01"))
    assert outcome.status == "failed" and outcome.reason.startswith("signature: moving digits@")
    record = registry.read_record(Registry.deployment_key("digits", version.version))
    assert record is not None and record["checks"][-1]["name"] == "signature"
    assert registry.get_alias("digits", "production")["version"] == 1

    # A raw upload whose signature differs from the alias it deploys to: refused too.
    upload = root / "incoming" / "digits" / "two.onnx"
    upload.parent.mkdir(parents=True)
    onnx_models.save(onnx_models.two_heads(), upload)
    (raw,) = deployer.handle_event(s3_put("incoming/digits/two.onnx", 100, "etag", "02"))
    assert raw.status == "failed" and raw.reason.startswith("signature: ")
    assert registry.list_versions("digits") == [1, 2]


def test_the_error_is_a_client_mistake() -> None:
    assert issubclass(SignatureMismatch, InvalidInput)
    assert SignatureMismatch.status == 400 and SignatureMismatch.exit_code == 2
