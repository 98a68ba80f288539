"""Redeploy: a new version from upload to promoted (publish, the deployer's checks,
the alias move: `promotion.release`, what `maas publish --alias` and the deployer
run), then from promoted to the first answer by the new version, with the alias
TTL stated, while concurrent clients keep calling; every failed request counted.

Not a test: run with `make bench` (after bench_core, whose RESULTS.md this extends).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics

from benchmarks.bench_core import append_section
from benchmarks.common import record
from maas import metrics
from maas.config import ServingConfig
from maas.lambda_entry import inference_handler
from maas.local_context import LocalContext
from maas.local_server import build_event
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore
from tests.support import onnx_models

TTL_SECONDS = 1.0
CLIENTS = 4
AFTER_SWITCH_SECONDS = 2.0


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/RESULTS.md")
    work = Path(tempfile.mkdtemp(prefix="maas-bench-redeploy-"))
    registry = Registry(LocalStore(work / "registry"))
    first = onnx_models.save(onnx_models.digits_mlp(hidden=64, seed=1), work / "v1.onnx")
    second = onnx_models.save(onnx_models.digits_mlp(hidden=64, seed=2), work / "v2.onnx")
    release(registry, first, "digits", alias="production")
    handler = inference_handler(
        ServingConfig(
            registry_url=registry.url, cache_dir=work / "cache", alias_ttl_seconds=TTL_SECONDS
        ),
        telemetry=metrics.Telemetry(EphemeralMetrics(namespace="bench")),
    )
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]}
    ).encode()
    event = build_event("POST", "/v2/models/digits/infer", {}, body)
    answers: list[tuple[float, int, str | None]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        context = LocalContext()
        while not stop.is_set():
            response = handler(event, context)
            version = (response.get("headers") or {}).get("x-maas-model-version")
            with lock:
                answers.append((time.monotonic(), response["statusCode"], version))

    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        uploaded = time.monotonic()
        release(registry, second, "digits", alias="production")
        promoted = time.monotonic()
        deadline = promoted + TTL_SECONDS + AFTER_SWITCH_SECONDS + 5
        while time.monotonic() < deadline:
            with lock:
                switched = [t for t, _, v in answers if v == "2"]
            if switched and time.monotonic() - switched[0] >= AFTER_SWITCH_SECONDS:
                break
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
    first_new = min((t for t, _, v in answers if v == "2"), default=None)
    failed = [s for _, s, _ in answers if s != 200]
    result: dict[str, Any] = {
        "upload_to_promoted_s": promoted - uploaded,
        "promoted_to_first_answer_s": None if first_new is None else first_new - promoted,
        "ttl_s": TTL_SECONDS,
        "requests": len(answers),
        "failed": len(failed),
        "clients": CLIENTS,
    }
    record("redeploy", result)
    to_first = result["promoted_to_first_answer_s"]
    append_section(
        out,
        [
            "",
            "# Redeploy under load",
            "",
            "`benchmarks/bench_redeploy.py`: the digits model (64 hidden) serving on a local",
            f"registry, {CLIENTS} concurrent clients calling the handler throughout; a second",
            "version released (publish + verification + alias move, as `maas publish --alias`",
            "and the deployer do).",
            "",
            "| step | measured |",
            "|---|---:|",
            f"| upload to promoted | {result['upload_to_promoted_s']:.2f} s |",
            f"| promoted to the first answer from the new version (alias TTL "
            f"{TTL_SECONDS:.0f} s) | {'never' if to_first is None else f'{to_first:.2f} s'} |",
            f"| requests during the run / failed | {len(answers)} / {len(failed)} |",
            "",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
