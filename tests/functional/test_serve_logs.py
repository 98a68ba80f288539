"""`maas serve` prints one access line per request by default, and with
`--log-format json` what Lambda prints instead: structured logs and EMF records."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore

ROW = {"name": "input", "datatype": "FP32", "shape": [1, 8, 8], "data": [0.5] * 64}


@contextmanager
def serving(registry: Path, workdir: Path, *flags: str) -> Iterator[tuple[str, Path, Path]]:
    out, err = workdir / "stdout.txt", workdir / "stderr.txt"
    command = [sys.executable, "-m", "maas.cli", "serve", "--port", "0", "--json", *flags]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--registry", str(registry)], stdout=stdout, stderr=stderr
        )
        try:
            deadline = time.monotonic() + 60
            while not out.read_text().strip():
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "maas serve announced no URL"
                time.sleep(0.05)
            yield json.loads(out.read_text().splitlines()[0])["url"], out, err
        finally:
            process.terminate()
            process.wait(timeout=10)


def call(url: str, body: dict[str, object] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def three_requests(url: str) -> list[int]:
    return [
        call(f"{url}/v2/health/ready"),
        call(f"{url}/v2/models/digits/infer", {"inputs": [ROW]}),
        call(f"{url}/v2/models/nope"),
    ]


def settled(path: Path, lines: int) -> list[str]:
    """The file's lines once it has at least ``lines`` (the server writes after answering)."""
    deadline = time.monotonic() + 10
    while len(found := path.read_text().splitlines()) < lines and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def make_registry(tmp_path: Path, onnx_model: Path) -> Path:
    root = tmp_path / "reg"
    release(Registry(LocalStore(root)), onnx_model, "digits", alias="production")
    return root


def test_by_default_one_access_line_per_request_and_no_metric_records(
    tmp_path: Path, onnx_model: Path
) -> None:
    with serving(make_registry(tmp_path, onnx_model), tmp_path) as (url, out, err):
        assert three_requests(url) == [200, 200, 404]
        access = settled(err, 3)
    assert len(access) == 3, access
    ready, infer, missing = access
    assert '"GET /v2/health/ready HTTP/1.1" 200' in ready
    assert '"POST /v2/models/digits/infer HTTP/1.1" 200' in infer and infer.endswith(" v1")
    assert '"GET /v2/models/nope HTTP/1.1" 404' in missing
    assert all(line.startswith("127.0.0.1 ") and "ms" in line for line in access)
    # stdout holds the announcement only: no EMF record reaches the console.
    assert [line for line in out.read_text().splitlines() if '"_aws"' in line] == []


def test_log_format_json_prints_the_emf_records_and_a_structured_line_per_request(
    tmp_path: Path, onnx_model: Path
) -> None:
    registry = make_registry(tmp_path, onnx_model)
    with serving(registry, tmp_path, "--log-format", "json") as (url, out, err):
        assert three_requests(url) == [200, 200, 404]
        lines = settled(out, 5)
    records = [json.loads(line) for line in lines[1:]]
    emf = [r for r in records if "_aws" in r]
    assert any(r.get("InferenceTime") and r.get("model") == "digits" for r in emf)
    requests = [r for r in records if r.get("message") == "request"]
    assert [(r["request"], r["status"]) for r in requests] == [
        ("GET /v2/health/ready HTTP/1.1", 200),
        ("POST /v2/models/digits/infer HTTP/1.1", 200),
        ("GET /v2/models/nope HTTP/1.1", 404),
    ]
    assert requests[1]["model_version"] == "1"
    assert err.read_text() == ""
