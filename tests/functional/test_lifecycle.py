"""The registry lifecycle through the real CLI: deleting aliases, NAME:latest, tags and
descriptions, archiving, deployment records, and output a person can read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maas.cli import main
from maas.config import ServingConfig
from maas.lambda_entry import inference_handler
from maas.local_server import LocalContext, build_event
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore, S3Store
from maas.upload_events import Deployer
from tests.support.make_events import s3_put


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], root: Path) -> None:
        self.capsys, self.root = capsys, root

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--registry", str(self.root)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, onnx_model: Path) -> Cli:
    registry = Registry(LocalStore(tmp_path / "reg"))
    release(registry, onnx_model, "digits", alias="production")  # 1
    release(registry, onnx_model, "digits", alias="staging")  # 2
    registry.publish(onnx_model, "digits")  # 3
    return Cli(capsys, tmp_path / "reg")


def test_deleting_an_alias(cli: Cli) -> None:
    code, out, err = cli("models", "alias", "digits", "staging", "--delete")
    assert (code, out, err) == (0, "digits@staging deleted\n", "")
    assert "no alias 'staging'" in cli("models", "show", "digits@staging")[2]
    record = cli.json("models", "history", "digits", "--alias", "staging")[-1]
    assert (record["action"], record["from"], record["to"]) == ("delete", 2, None)
    # The default alias is protected; --force deletes it anyway.
    code, _, err = cli("models", "alias", "digits", "production", "--delete")
    assert code == 2 and "is the default alias" in err and "--force" in err
    assert cli("models", "alias", "digits", "production", "--delete", "--force")[0] == 0
    assert cli.json("models", "list")[0]["aliases"] == {}
    # A deleted alias can be created again; its history starts anew.
    assert cli("models", "alias", "digits", "staging", "3")[0] == 0
    code, _, err = cli("models", "rollback", "digits", "staging")
    assert code == 4 and "no previous version" in err
    assert cli("models", "alias", "digits", "ghost", "--delete")[0] == 4


def test_a_new_alias_is_announced_with_the_existing_ones(cli: Cli) -> None:
    code, out, err = cli("models", "alias", "digits", "prodution", "3")
    assert code == 0 and out == "digits@prodution -> 3\n"
    assert err == (
        "maas: warning: created a new alias digits@prodution "
        "(existing aliases: production, staging)\n"
    )
    assert cli("models", "alias", "digits", "prodution", "2")[2] == ""  # it exists now


def test_latest_is_the_highest_unarchived_version_and_reserved(
    cli: Cli, onnx_model: Path, tmp_path: Path
) -> None:
    assert cli.json("models", "show", "digits:latest")["version"] == 3
    assert cli("models", "archive", "digits:3")[1] == "digits:3 archived\n"
    assert cli.json("models", "show", "digits:latest")["version"] == 2
    out = tmp_path / "pulled.onnx"
    assert cli.json("models", "pull", "digits:latest", "--out", str(out))["version"] == 2
    for argv in (
        ("models", "alias", "digits", "latest", "1"),
        ("publish", str(onnx_model), "--name", "digits", "--alias", "latest"),
    ):
        code, _, err = cli(*argv)
        assert code == 2 and "'latest' is reserved" in err, argv
    assert Registry(LocalStore(cli.root)).list_versions("digits") == [1, 2, 3]


def test_latest_over_http_v2_and_tf_serving(cli: Cli, onnx_model: Path, tmp_path: Path) -> None:
    handler = inference_handler(ServingConfig(registry_url=str(cli.root), cache_dir=tmp_path))
    body = {
        "inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}]
    }
    for path in ("/v2/models/digits/versions/latest/infer", "/v2/models/digits/versions/latest"):
        event = build_event(
            "POST" if path.endswith("infer") else "GET", path, {}, json.dumps(body).encode()
        )
        response = handler(event, LocalContext())
        assert response["statusCode"] == 200, response
    tf = build_event(
        "POST",
        "/v1/models/digits/labels/latest:predict",
        {},
        json.dumps({"instances": [[[0.0] * 8] * 8]}).encode(),
    )
    response = handler(tf, LocalContext())
    assert response["statusCode"] == 200 and response["headers"]["x-maas-model-version"] == "3"


def test_tags_and_descriptions_live_outside_the_immutable_version(cli: Cli) -> None:
    doc = cli.json(
        "models", "tag", "digits:1", "team=vision", "stage=candidate", "--description", "first"
    )
    assert doc["tags"] == {"team": "vision", "stage": "candidate"} and doc["description"] == "first"
    doc = cli.json("models", "tag", "digits:1", "owner=ana", "--remove", "stage")
    assert doc["tags"] == {"team": "vision", "owner": "ana"} and doc["description"] == "first"
    assert (cli.root / "models/digits/tags/1.json").is_file()
    shown = cli.json("models", "show", "digits:1")
    assert shown["tags"]["tags"] == {"team": "vision", "owner": "ana"}
    assert shown["version"] == 1 and shown["schema"] == "maas.manifest/1"
    out = cli("models", "show", "digits:1")[1]
    assert "tags owner=ana, team=vision" in out and "  first" in out
    assert cli("models", "tag", "digits:1", "novalue")[0] == 2
    assert cli("models", "tag", "digits:9", "a=b")[0] == 4


def test_an_archived_version_is_never_an_alias_target(cli: Cli, onnx_model: Path) -> None:
    cli("models", "archive", "digits:3")
    for argv in (
        ("models", "alias", "digits", "production", "3"),
        ("models", "alias", "digits", "production", "1", "--canary", "3", "--weight", "0.2"),
    ):
        code, _, err = cli(*argv)
        assert code == 2 and "digits:3 is archived" in err, argv
    cli("models", "alias", "digits", "production", "2")
    cli("models", "archive", "digits:1")
    code, _, err = cli("models", "rollback", "digits", "production")
    assert code == 2 and "digits:1 is archived" in err
    assert cli.json("models", "show", "digits@production")["version"] == 2
    # The deployer refuses too, and records why.
    registry = Registry(LocalStore(cli.root))
    version = registry.publish(
        onnx_model, "digits", details={"deploy": {"alias": "production", "canary_weight": None}}
    ).version
    registry.update_tags("digits", version, archived=True)
    (outcome,) = Deployer(registry).handle_event(
        s3_put(f"models/digits/versions/{version}/manifest.json", 100, "e", "01")
    )
    assert outcome.status == "failed" and outcome.reason.startswith("archived: ")
    assert cli("models", "archive", "digits:3", "--undo")[1] == "digits:3 restored\n"
    assert cli("models", "alias", "digits", "production", "3")[0] == 0


def test_a_canary_archived_after_it_was_set_cannot_be_promoted(cli: Cli) -> None:
    assert (
        cli("models", "alias", "digits", "production", "2", "--canary", "3", "--weight", "0.1")[0]
        == 0
    )
    cli("models", "archive", "digits:3")
    # Keeping it as the canary (re-weighting it) is no move to it; promoting it is.
    assert (
        cli("models", "alias", "digits", "production", "2", "--canary", "3", "--weight", "0.2")[0]
        == 0
    )
    code, _, err = cli("models", "alias", "digits", "production", "3")
    assert code == 2 and "digits:3 is archived" in err
    assert cli.json("models", "show", "digits@production")["version"] == 2


def test_deployment_records_are_readable_on_file_and_s3_registries(
    cli: Cli, capsys: pytest.CaptureFixture[str], s3_bucket: str, onnx_model: Path
) -> None:
    records = cli.json("models", "deployments", "digits")
    assert [(r["version"], r["status"]) for r in records] == [(1, "succeeded"), (2, "succeeded")]
    assert cli.json("models", "deployments", "digits", "--version", "3") == []
    code, out, _ = cli("models", "deployments", "digits")
    assert code == 0 and "succeeded" in out and "production -> 1" in out

    import boto3

    release(Registry(S3Store(s3_bucket, client=boto3.client("s3"))), onnx_model, "m", alias="live")
    assert main(["models", "deployments", "m", "--json", "--registry", f"s3://{s3_bucket}"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["reason"] == "live -> 1"


def test_history_and_list_say_what_happened_to_canaries(cli: Cli) -> None:
    cli("models", "alias", "digits", "production", "1", "--canary", "3", "--weight", "0.1")
    rows = cli.json("models", "list")
    assert rows[0]["canaries"] == {"production": {"version": 3, "weight": 0.1}}
    assert "production=1 (canary 3 at 10%)" in cli("models", "list")[1]
    cli("models", "alias", "digits", "production", "1")
    out = cli("models", "history", "digits", "--alias", "production")[1]
    assert "set canary 3 (10%)" in out and "cleared canary" in out


def test_show_prints_metrics_one_per_line() -> None:
    from maas.cli_output import describe_manifest

    manifest = {
        "name": "digits",
        "version": 2,
        "precision": "int8-dynamic",
        "created_at": "2026-12-02T00:00:00Z",
        "model": {"sha256": "ab" * 32, "size": 15184, "opset": 17},
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 8, 8]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
        "metrics": {"accuracy": 0.97222222, "eval_samples": 360, "eval_data_sha256": "cd" * 32},
        "labels": None,
        "golden_samples": [],
    }
    text = describe_manifest(manifest)
    assert "\n  metrics\n    accuracy          0.972222\n    eval_samples      360\n" in text


def test_a_404_lists_what_exists(cli: Cli) -> None:
    code, _, err = cli("models", "show", "digit")
    assert code == 4 and "model 'digit' not found" in err and "; it has digits" in err
    code, _, err = cli("models", "show", "digits@prod")
    assert code == 4 and "no alias 'prod'; its aliases: production, staging" in err


def test_publishing_a_keras_file_says_to_convert_it(cli: Cli, tmp_path: Path) -> None:
    keras_file = tmp_path / "cnn.keras"
    keras_file.write_bytes(b"PK\x03\x04 a zip, as .keras files are")
    code, _, err = cli("publish", str(keras_file), "--name", "cnn")
    assert code == 2 and "is a Keras model, not ONNX: run `maas convert" in err
