"""The `maas` CLI contract: outputs, JSON shapes, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maas.cli import main
from maas.registry import Registry
from maas.store import LocalStore


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], registry: str) -> None:
        self.capsys, self.registry = capsys, registry

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--registry", self.registry])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    def fails(self, expected: int, *argv: str) -> str:
        code, out, err = self(*argv)
        assert code == expected, (code, out, err)
        assert err.count("\n") == 1 and err.startswith("maas: error: "), err
        assert "Traceback" not in err
        return err


@pytest.fixture(params=["local", "s3"])
def cli(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    if request.param == "local":
        # An empty registry (`maas publish` made its models/ directory); a path that
        # is not a registry at all is an error of its own (test_cli_registry).
        (tmp_path / "registry" / "models").mkdir(parents=True)
        return Cli(capsys, f"file://{tmp_path / 'registry'}")
    bucket = request.getfixturevalue("s3_bucket")
    return Cli(capsys, f"s3://{bucket}/cli")


def test_round_trip(cli: Cli, onnx_model: Path, onnx_model_b: Path, tmp_path: Path) -> None:
    code, out, err = cli("publish", str(onnx_model), "--name", "digits", "--alias", "production")
    assert (code, out, err) == (0, "1\n", "")  # the bare version; no progress off a terminal
    assert cli.json("publish", str(onnx_model_b), "--name", "digits") == {
        "name": "digits",
        "version": 2,
    }

    assert cli.json("models", "list") == [
        {"name": "digits", "latest_version": 2, "aliases": {"production": 1}}
    ]

    shown = cli.json("models", "show", "digits")
    assert shown["name"] == "digits" and shown["versions"] == [1, 2]
    assert shown["aliases"]["production"]["version"] == 1

    manifest = cli.json("models", "show", "digits:2")
    assert manifest["version"] == 2 and manifest["schema"] == "maas.manifest/1"
    assert "alias" not in manifest

    code, _, _ = cli(
        "models", "alias", "digits", "production", "2", "--canary", "1", "--weight", "0.2"
    )
    assert code == 0
    via_alias = cli.json("models", "show", "digits@production")
    assert via_alias["version"] == 2
    assert via_alias["alias"]["canary"] == {"version": 1, "weight": 0.2}
    assert via_alias["alias"]["previous"] == 1

    code, out, _ = cli("models", "rollback", "digits")
    assert code == 0 and "digits@production -> 1" in out
    history = cli.json("models", "history", "digits")
    assert [(r["from"], r["to"]) for r in history] == [(None, 1), (1, 2), (2, 1)]

    pulled = tmp_path / "pulled.onnx"
    assert cli.json("models", "pull", "digits", "--out", str(pulled))["version"] == 1
    assert pulled.read_bytes() == onnx_model.read_bytes()

    code, out, _ = cli("models", "list")
    assert code == 0 and "digits" in out and "production=1" in out


def test_exit_2_for_bad_input(cli: Cli, onnx_model: Path, tmp_path: Path) -> None:
    assert "invalid model name" in cli.fails(2, "publish", str(onnx_model), "--name", "Bad/Name")
    assert "no such file" in cli.fails(2, "publish", str(tmp_path / "x.onnx"), "--name", "x")
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("hello")
    assert "not an ONNX model" in cli.fails(2, "publish", str(not_onnx), "--name", "x")
    assert "strictly between" in cli.fails(
        2, "models", "alias", "x", "production", "1", "--canary", "2", "--weight", "1.5"
    )
    # x:latest is a reference since issue 11 (the highest unarchived version).
    assert "invalid version" in cli.fails(2, "models", "show", "x:newest")
    assert "the following arguments are required" in cli.fails(2, "publish", str(onnx_model))
    assert "invalid choice" in cli.fails(2, "models", "frobnicate")


def test_exit_4_for_not_found(cli: Cli, onnx_model: Path) -> None:
    assert "model 'ghost' not found" in cli.fails(4, "models", "show", "ghost")
    cli("publish", str(onnx_model), "--name", "digits", "--alias", "production")
    assert "no version 7" in cli.fails(4, "models", "show", "digits:7")
    assert "no alias 'staging'" in cli.fails(4, "models", "show", "digits@staging")
    assert "no previous version" in cli.fails(4, "models", "rollback", "digits")
    assert "no version 9" in cli.fails(4, "models", "alias", "digits", "staging", "9")


def test_exit_5_for_integrity_failure(cli: Cli, onnx_model: Path, tmp_path: Path) -> None:
    cli("publish", str(onnx_model), "--name", "digits", "--alias", "production")
    from maas.store import open_store

    store = open_store(cli.registry)
    tampered = onnx_model.read_bytes()[:-1] + b"\x00"
    store.put(Registry.model_key("digits", 1), tampered)
    out = tmp_path / "m.onnx"
    assert "do not match the manifest" in cli.fails(
        5, "models", "pull", "digits:1", "--out", str(out)
    )
    assert not out.exists()
    store.put(Registry.manifest_key("digits", 1), b"{}")
    assert "malformed manifest" in cli.fails(5, "models", "show", "digits:1")


def test_exit_3_for_a_lost_compare_and_swap(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    onnx_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "registry"
    cli = Cli(capsys, str(root))
    cli("publish", str(onnx_model), "--name", "digits", "--alias", "production")
    cli("publish", str(onnx_model), "--name", "digits")

    # Another writer moves the alias between every read and write we make.
    rival = Registry(LocalStore(root), actor="rival")
    original_put = LocalStore.put
    rival_busy = False

    def contended_put(self: LocalStore, key: str, data: bytes, **kwargs: Any) -> str:
        nonlocal rival_busy
        if key.endswith("aliases/production.json") and kwargs.get("if_match") and not rival_busy:
            rival_busy = True
            try:
                rival.set_alias("digits", "production", 1, reason="rival")
            finally:
                rival_busy = False
        return original_put(self, key, data, **kwargs)

    monkeypatch.setattr(LocalStore, "put", contended_put)
    assert "compare-and-swap" in cli.fails(3, "models", "alias", "digits", "production", "2")


def test_exit_5_when_the_registry_is_unreachable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    err = Cli(capsys, "s3://nowhere").fails(5, "models", "list")
    assert "unreachable" in err


def test_exit_5_when_the_bucket_does_not_exist(
    capsys: pytest.CaptureFixture[str], s3_bucket: str
) -> None:
    err = Cli(capsys, "s3://no-such-bucket").fails(5, "models", "list")
    assert "does not exist" in err


def test_unsupported_registry_url_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unsupported registry URL" in Cli(capsys, "gs://x").fails(2, "models", "list")


def test_registry_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    onnx_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAAS_REGISTRY", str(tmp_path / "env-registry"))
    assert main(["publish", str(onnx_model), "--name", "digits"]) == 0
    assert (tmp_path / "env-registry/models/digits/versions/1/manifest.json").is_file()
    monkeypatch.delenv("MAAS_REGISTRY")
    monkeypatch.chdir(tmp_path)
    assert main(["publish", str(onnx_model), "--name", "digits"]) == 0
    assert (tmp_path / ".maas/registry/models/digits/versions/1/manifest.json").is_file()
    capsys.readouterr()


def test_console_script_and_lazy_imports(tmp_path: Path, onnx_model: Path) -> None:
    """The installed entry point runs, and the registry commands never import TensorFlow."""
    script = Path(sys.executable).with_name("maas")
    done = subprocess.run(
        [
            str(script),
            "publish",
            str(onnx_model),
            "--name",
            "digits",
            "--json",
            "--registry",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"name": "digits", "version": 1}
    probe = (
        "import sys\n"
        "from maas.cli import main\n"
        f"reg = ['--registry', {str(tmp_path)!r}]\n"
        f"main(['publish', {str(onnx_model)!r}, '--name', 'digits', *reg])\n"
        "main(['models', 'list', *reg])\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "roots = ('tensorflow', 'tf2onnx', 'keras')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [str(script), "models", "show", "NOPE", "--registry", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""
