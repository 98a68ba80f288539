"""`maas convert --publish --alias` reports what really happened to the alias, exactly as
`maas publish --alias` does: moved, skipped by the deploy policy, or refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maas import promotion
from maas.promotion import Deployment, release
from maas.registry import Registry, open_registry
from maas.store import LocalStore
from tests.convert.conftest import run_cli
from tests.convert.models import keras_mlp

Deploy = Callable[..., Deployment]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alias") / "m.keras"
    keras_mlp(path, hidden=(16,), seed=2)
    return path


def convert(source: Path, registry: Path, *extra: str) -> Any:
    return run_cli(
        "convert",
        source,
        "--name",
        "m",
        "--precision",
        "fp32",
        "--publish",
        "--alias",
        "production",
        "--registry",
        registry,
        *extra,
    )


def intercept(monkeypatch: pytest.MonkeyPatch, before: Callable[[Registry, int], None]) -> None:
    """Run ``before`` once, just before convert's own deployment of its version."""
    real: Deploy = promotion.deploy_version
    seen: list[int] = []

    def deploy(registry: Registry, name: str, version: int, **options: Any) -> Deployment:
        if not seen:
            seen.append(version)
            before(registry, version)
        return real(registry, name, version, **options)

    monkeypatch.setattr(promotion, "deploy_version", deploy)


def test_a_move_prints_the_alias_line(source: Path, tmp_path: Path) -> None:
    outcome = convert(source, tmp_path / "reg")
    assert outcome.code == 0 and outcome.err == ""
    assert outcome.out.splitlines()[-1] == "m@production -> 1"


def test_a_skipped_move_warns_and_keeps_the_exit_code(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def newer_publisher(registry: Registry, version: int) -> None:
        # Another publisher releases a newer version to the same alias first.
        copy = tmp_path / "copy.onnx"
        registry.fetch_model("m", version, copy)
        release(registry, copy, "m", alias="production")

    intercept(monkeypatch, newer_publisher)
    outcome = convert(source, tmp_path / "reg", "--json")
    assert outcome.code == 0
    assert outcome.err == (
        "maas: warning: m@production not moved: verified, not promoted: "
        "version 1 is older than production's current version 2\n"
    )
    row = outcome.json()[0]
    assert row["version"] == 1
    assert row["alias"] == {
        "name": "production",
        "status": "skipped",
        "reason": "verified, not promoted: version 1 is older than production's current version 2",
    }
    assert open_registry(str(tmp_path / "reg")).get_alias("m", "production")["version"] == 2

    monkeypatch.undo()
    human = convert(source, tmp_path / "reg2")
    assert "m@production -> 1" in human.out  # without the race, the same run moves it


def test_a_refused_deployment_exits_5_and_moves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "reg"

    def corrupt(registry: Registry, version: int) -> None:
        stored = root / Registry.model_key("m", version)
        stored.write_bytes(stored.read_bytes() + b"\0")

    intercept(monkeypatch, corrupt)
    outcome = convert(source, root, "--json")
    assert outcome.code == 5
    assert outcome.err.startswith(
        "maas: error: version 1 was published but failed verification from the registry, "
        "so production did not move: integrity: "
    )
    assert len(outcome.err.splitlines()) == 1
    report = outcome.json()[0]["alias"]
    assert report["status"] == "failed" and report["reason"].startswith("integrity: ")
    assert open_registry(str(root)).list_aliases("m") == {}


def test_the_signature_guard_and_renaming_the_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import onnx_models

    root = tmp_path / "reg"
    registry = Registry(LocalStore(root))
    digits = onnx_models.save(onnx_models.digits_mlp(), tmp_path / "d.onnx")
    release(registry, digits, "m", alias="production")  # input -> probabilities
    named = tmp_path / "named.keras"
    keras_mlp(named, hidden=(16,), seed=4, output_name="digit")

    refused = convert(named, root)
    assert refused.code == 2 and "would change the signature" in refused.err
    assert "outputs are named ['probabilities'], not ['digit']" in refused.err
    assert registry.list_versions("m") == [1]  # refused before any variant is written

    renamed = convert(named, root, "--output-names", "probabilities", "--json")
    assert renamed.code == 0, renamed.err
    row = renamed.json()[0]
    assert row["alias"]["status"] == "moved"
    manifest = registry.get_manifest("m", row["version"])
    assert [o["name"] for o in manifest["outputs"]] == ["probabilities"]
    assert set(manifest["golden_samples"][0]["outputs"]) == {"probabilities"}
    bad = convert(named, root, "--output-names", "a,b")
    assert bad.code == 2 and "--output-names gives 2 names; the model has 1" in bad.err
