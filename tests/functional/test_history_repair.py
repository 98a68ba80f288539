"""An alias move and its history record are two writes. A failure between them loses
nothing: the record travels inside the alias document, and the next move, or
`maas models history --repair`, writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maas.cli import main
from maas.errors import StoreUnavailable
from maas.registry import Registry
from maas.store import LocalStore, Store


class FailingHistory:
    """Wraps a store's put so that the next ``failures`` history appends fail."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, failures: int = 1) -> None:
        self.failures = failures
        self.failed: list[str] = []
        real = store.put

        def put(key: str, data: bytes, **conditions: Any) -> str:
            if "/history/" in key and self.failures > 0:
                self.failures -= 1
                self.failed.append(key)
                raise StoreUnavailable(f"injected: S3 503 SlowDown on {key}")
            return real(key, data, **conditions)

        monkeypatch.setattr(store, "put", put)


def moves(registry: Registry) -> list[tuple[int | None, int, str]]:
    return [(r["from"], r["to"], r["action"]) for r in registry.history("digits")]


def test_a_failed_append_is_written_by_the_next_move(
    registry: Registry, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.publish(onnx_model, "digits")
    registry.publish(onnx_model, "digits")
    registry.set_alias("digits", "production", 1)
    faults = FailingHistory(registry.store, monkeypatch)
    moved = registry.set_alias("digits", "production", 2, reason="release 2")
    assert len(faults.failed) == 1
    # The move itself stands, and its record waits inside the alias document.
    assert moved["version"] == 2 and moved["move"]["record"] == faults.failed[0]
    assert registry.get_alias("digits", "production")["version"] == 2
    assert moves(registry) == [(None, 1, "move")]

    registry.rollback("digits", "production")
    assert moves(registry) == [(None, 1, "move"), (1, 2, "move"), (2, 1, "rollback")]
    repaired = registry.history("digits")[1]
    assert repaired["reason"] == "release 2" and repaired["by"] == "pytest"
    # The rollback replays the repaired history: it walked back from 2 to 1.
    assert registry.get_alias("digits", "production")["previous"] is None


def test_repair_writes_the_missing_record_once(
    registry: Registry, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.publish(onnx_model, "digits")
    FailingHistory(registry.store, monkeypatch)
    registry.set_alias("digits", "staging", 1)
    assert moves(registry) == []
    assert registry.repair_history("digits") == ["staging"]
    assert moves(registry) == [(None, 1, "move")]
    assert registry.repair_history("digits") == []
    assert len(registry.history("digits")) == 1


def test_history_repair_through_the_cli(
    onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    store = LocalStore(tmp_path / "reg")
    registry = Registry(store)
    registry.publish(onnx_model, "digits")
    FailingHistory(store, monkeypatch)
    registry.set_alias("digits", "production", 1)
    monkeypatch.undo()
    reg = ["--registry", str(tmp_path / "reg")]
    assert main(["models", "history", "digits", "--json", *reg]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["models", "history", "digits", "--repair", "--json", *reg]) == 0
    captured = capsys.readouterr()
    assert captured.err == "maas: repaired the history of digits@production\n"
    assert [(r["from"], r["to"]) for r in json.loads(captured.out)] == [(None, 1)]
