"""Warm inference-handler latency (API Gateway event in → response out), JSON and binary,
against a minimal baseline measured in the same run:
json.loads → numpy → session.run → json.dumps.

Not a test: run with `make bench` (after bench_core, whose RESULTS.md this extends).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from aws_lambda_powertools.metrics import EphemeralMetrics

from benchmarks.bench_core import append_section, measure, percentile, table_rows
from maas import metrics
from maas.config import ServingConfig
from maas.lambda_entry import inference_handler
from maas.local_server import LocalContext, build_event
from maas.promotion import release
from maas.registry import Registry
from maas.serving.runtime import session_options
from maas.store import LocalStore
from tests.support import onnx_models


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/RESULTS.md")
    work = Path(tempfile.mkdtemp(prefix="maas-bench-handler-"))
    model_path = onnx_models.save(onnx_models.digits_mlp(hidden=128), work / "digits.onnx")
    registry = Registry(LocalStore(work / "registry"))
    release(registry, model_path, "digits", alias="production")
    handler = inference_handler(
        ServingConfig(registry_url=registry.url, cache_dir=work / "cache"),
        telemetry=metrics.Telemetry(EphemeralMetrics(namespace="bench")),
    )
    session = ort.InferenceSession(
        str(model_path), session_options(), providers=["CPUExecutionProvider"]
    )
    context = LocalContext()
    rows = []
    for batch in (1, 64):
        x = np.random.default_rng(0).random((batch, 8, 8), dtype=np.float32)
        json_body = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [batch, 8, 8],
                        "datatype": "FP32",
                        "data": x.flatten().tolist(),
                    }
                ]
            }
        ).encode()
        json_event = build_event(
            "POST", "/v2/models/digits/infer", {"content-type": "application/json"}, json_body
        )
        raw = x.astype("<f4").tobytes()
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [batch, 8, 8],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": len(raw)},
                    }
                ],
                "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
            }
        ).encode()
        binary_event = build_event(
            "POST",
            "/v2/models/digits/infer",
            {"inference-header-content-length": str(len(header))},
            header + raw,
        )

        def baseline(body: bytes = json_body) -> object:
            request = json.loads(body)
            tensor = request["inputs"][0]
            array = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            (probabilities,) = session.run(None, {"input": array})
            return json.dumps(
                {"outputs": [{"name": "probabilities", "data": probabilities.flatten().tolist()}]}
            )

        def via_handler(event: dict[str, Any] = json_event) -> object:
            response = handler(event, context)
            assert response["statusCode"] == 200
            return response

        def via_handler_binary(event: dict[str, Any] = binary_event) -> object:
            response = handler(event, context)
            assert response["statusCode"] == 200
            return base64.b64decode(response["body"])

        cases: dict[str, Callable[[], object]] = {
            "baseline: json.loads → numpy → run → json.dumps": baseline,
            "handler, V2 JSON": via_handler,
            "handler, V2 binary in and out": via_handler_binary,
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        order = list(cases)
        # The handler prints one EMF record per invocation, as on Lambda; keep it off the tty.
        with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
            for fn in cases.values():
                for _ in range(200):
                    fn()
            for _ in range(40):
                random.shuffle(order)
                for name in order:
                    samples[name] += measure(cases[name], 1, 50)
        base = statistics.median(samples["baseline: json.loads → numpy → run → json.dumps"])
        for name in cases:
            p50 = statistics.median(samples[name])
            rows.append((batch, name, p50, percentile(samples[name], 0.99), p50 / base))

    ratio_64 = {name: ratio for b, name, _, _, ratio in rows if b == 64}
    lines = [
        "",
        "# Warm inference handler",
        "",
        "`benchmarks/bench_handler.py`: a payload-2.0 event through the whole Lambda handler",
        "(Powertools resolver, Logger context, EMF flush, codecs, core, onnxruntime), warm,",
        "against the minimal baseline `json.loads → numpy → session.run → json.dumps`, in",
        "the same run. 2,000 calls per case, interleaved in shuffled rounds.",
        "",
        "| batch | case | p50 (µs) | p99 (µs) | p50 / baseline |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += table_rows(rows)
    lines += [
        "",
        "On top of the baseline, the handler does routing, the Logger's per-invocation",
        "context, the metric flush (one EMF line), input validation and the response",
        "envelope; this run does not split those costs. Binary tensors skip JSON number",
        f"parsing and printing: at batch 64, {ratio_64['handler, V2 JSON']:.2f}x (JSON) against "
        f"{ratio_64['handler, V2 binary in and out']:.2f}x (binary) of the baseline.",
        "",
    ]
    append_section(out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
