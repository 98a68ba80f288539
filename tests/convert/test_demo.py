"""`maas demo` end to end, as `make demo` runs it (real training, conversion, HTTP server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    maas = Path(sys.executable).with_name("maas")
    done = subprocess.run(
        [str(maas), "demo", "--workdir", str(tmp_path / "demo"), "--epochs", "8"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for step in range(1, 7):
        assert f"[{step}/6]" in out
    assert "all three protocols gave identical numbers" in out
    assert "int8-dynamic" in out and "passed" in out
    assert "maas demo: ok (server stopped)" in out
    assert (tmp_path / "demo/registry/models/digits/aliases/production.json").is_file()


def test_a_failing_step_is_named_and_exits_non_zero(tmp_path: Path) -> None:
    maas = Path(sys.executable).with_name("maas")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [str(maas), "demo", "--workdir", str(blocker / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "working directory" in done.stderr


def test_a_failing_step_names_it(tmp_path: Path) -> None:
    """A server that cannot start (bad serving configuration) fails step 3, by name."""
    maas = Path(sys.executable).with_name("maas")
    done = subprocess.run(
        [str(maas), "demo", "--workdir", str(tmp_path / "demo"), "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "MAAS_NAN_POLICY": "sometimes"},
    )
    assert done.returncode != 0
    assert "demo step 3 (start `maas serve` on a free port) failed" in done.stderr
    assert "MAAS_NAN_POLICY" in done.stderr
    assert done.stderr.count("\n") == 1


def _demo(
    *args: str, cwd: Path | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    maas = Path(sys.executable).with_name("maas")
    return subprocess.run(
        [str(maas), "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def test_a_directory_the_demo_did_not_make_is_refused_and_kept(tmp_path: Path) -> None:
    notes = tmp_path / "my_notes.txt"
    notes.write_text("mine")
    for workdir in (".", str(tmp_path)):
        done = _demo("--workdir", workdir, cwd=tmp_path, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("maas: error: --workdir ") and done.stderr.count("\n") == 1
        assert "is not empty and is not a maas demo directory" in done.stderr
        assert notes.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_notes.txt"]


def test_its_own_directory_is_reused_emptying_only_what_it_wrote(tmp_path: Path) -> None:
    from maas.convert.demo import MARKER, prepare_workdir

    workdir = tmp_path / "demo"
    prepare_workdir(workdir)  # new: created and marked
    assert (workdir / MARKER).is_file()
    (workdir / "registry" / "models").mkdir(parents=True)
    (workdir / "serve.log").write_text("old log")
    (workdir / "keep.txt").write_text("added by the user")
    prepare_workdir(workdir)
    assert sorted(p.name for p in workdir.iterdir()) == [MARKER, "keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_workdir(empty)  # an empty directory is fine too
    assert (empty / MARKER).is_file()


def test_json_and_registry_flags_are_honoured(tmp_path: Path) -> None:
    registry = tmp_path / "elsewhere"
    done = _demo(
        "--workdir", str(tmp_path / "demo"), "--epochs", "4", "--registry", str(registry), "--json"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)  # one JSON document and nothing else
    assert document["registry"] == str(registry)
    assert document["versions"] == [1, 2]
    assert document["alias"]["status"] == "moved"
    assert [v["precision"] for v in document["variants"]] == ["fp32", "int8-dynamic"]
    assert len(document["predictions"]) == 8 and document["protocols_agree"] is True
    assert (registry / "models/digits/aliases/production.json").is_file()
    assert not (tmp_path / "demo" / "registry").exists()
    assert "[1/6]" in done.stderr  # the narrative moved to stderr
    assert "\r" not in done.stderr  # no progress bars off a terminal
