"""`maas demo` end to end, as `make demo` runs it (real training, conversion, HTTP server)."""

from __future__ import annotations

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
