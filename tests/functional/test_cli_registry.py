"""A mistyped registry is an error naming the path, never an empty registry; arguments
are consistent (the alias positional, --registry before the subcommand); errors say
`maas: error:` once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from maas.cli import main
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def registry(tmp_path: Path, onnx_model: Path) -> Path:
    root = tmp_path / "reg"
    registry = Registry(LocalStore(root))
    release(registry, onnx_model, "digits", alias="production")
    release(registry, onnx_model, "digits", alias="production")
    release(registry, onnx_model, "digits", alias="staging")
    return root


def test_a_missing_or_foreign_directory_is_exit_4_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "models", "list", "--registry", str(tmp_path / "typo-dir"))
    assert (code, out) == (4, "")
    assert err == (
        f"maas: error: registry {tmp_path / 'typo-dir'} does not exist (only `maas publish` "
        "creates one): check --registry or MAAS_REGISTRY\n"
    )
    (tmp_path / "notes").mkdir()
    code, _, err = run(capsys, "models", "list", "--registry", str(tmp_path / "notes"))
    assert code == 4 and "is not a maas registry: it has no models/ directory" in err
    assert not (tmp_path / "typo-dir").exists()  # reading never creates a registry


def test_publish_alone_creates_a_registry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, onnx_model: Path
) -> None:
    fresh = tmp_path / "fresh"
    assert run(capsys, "publish", str(onnx_model), "--name", "m", "--registry", str(fresh))[0] == 0
    code, out, _ = run(capsys, "models", "list", "--registry", str(fresh), "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "m"


def test_serve_fails_at_start_naming_the_path(tmp_path: Path) -> None:
    maas = Path(sys.executable).with_name("maas")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [str(maas), "serve", "--port", str(port), "--registry", str(tmp_path / "regg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4
    assert done.stderr.startswith(f"maas: error: registry {tmp_path / 'regg'} does not exist")
    assert done.stdout == ""


def test_registry_before_the_subcommand(capsys: pytest.CaptureFixture[str], registry: Path) -> None:
    code, out, err = run(capsys, "--registry", str(registry), "models", "list", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)[0]["aliases"] == {"production": 2, "staging": 3}


def test_rollback_takes_the_alias_positionally(
    capsys: pytest.CaptureFixture[str], registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = ["--registry", str(registry)]
    code, out, _ = run(capsys, "models", "rollback", "digits", "production", *reg)
    assert code == 0 and out == "digits@production -> 1\n"
    # The default alias comes from MAAS_DEFAULT_ALIAS when the alias is omitted.
    monkeypatch.setenv("MAAS_DEFAULT_ALIAS", "staging")
    code, out, err = run(capsys, "models", "rollback", "digits", *reg)
    assert code == 4 and "no previous version" in err  # staging had only one version
    code, _, err = run(capsys, "models", "rollback", "digits", "prodution", *reg)
    assert code == 4 and "no alias 'prodution'" in err


def test_errors_say_maas_error_once(capsys: pytest.CaptureFixture[str], registry: Path) -> None:
    code, _, err = run(
        capsys, "models", "rollback", "digits", "a", "b", "--registry", str(registry)
    )
    assert code == 2
    assert err == "maas: error: unrecognized arguments: b\n"
    code, _, err = run(capsys, "--bogus")
    assert code == 2 and err.startswith("maas: error: ") and err.count("maas:") == 1
