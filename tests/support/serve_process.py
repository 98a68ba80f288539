"""`maas serve --port 0` as a child process over a small local registry of real models:
what the schemathesis run (tests.contract) and the load run (tests.load) talk to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore
from tests.support import onnx_models


def small_registry(root: Path) -> Registry:
    """digits:1 (production) and digits:2 (staging), two seeds of the digits MLP, and
    heads:1 (production), a model with two inputs and two outputs."""
    registry = Registry(LocalStore(root / "registry"), actor="maas-tests")
    models = root / "models"
    for seed, alias in ((0, "production"), (1, "staging")):
        path = onnx_models.save(onnx_models.digits_mlp(seed=seed), models / f"digits-{seed}.onnx")
        release(registry, path, "digits", alias=alias)
    heads = onnx_models.save(onnx_models.two_heads(), models / "heads.onnx")
    release(registry, heads, "heads", alias="production")
    return registry


@dataclass
class ServeProcess:
    """A running `maas serve`; its output (one JSON log line per request) goes to ``log``."""

    registry: Registry
    workdir: Path
    environment: dict[str, str] = field(default_factory=dict)
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    _output: IO[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MAAS_CACHE_DIR": str(self.workdir / "cache"), **self.environment}
        command = [
            sys.executable,
            "-m",
            "maas.cli",
            "serve",
            "--port",
            "0",
            "--json",
            "--log-format",
            "json",
        ]
        self._output = self.log.open("wb")
        self.process = subprocess.Popen(
            [*command, "--registry", self.registry.url],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.process.poll() is not None:
                raise RuntimeError(f"maas serve exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"maas serve printed no URL within {timeout:g} s")
            time.sleep(0.05)
            self.url = _announced_url(self.log.read_text(errors="replace"))
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_bytes(self) -> int:
        """The server's resident set size, from /proc (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._output is not None:
            self._output.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _announced_url(output: str) -> str:
    """`maas serve --json` announces itself with one {"url": ..., "registry": ...} line."""
    for line in output.splitlines():
        if line.startswith('{"url"'):
            return str(json.loads(line)["url"])
    return ""
