"""Cold start with the model in S3 (a moto server): a fresh process to its first answer,
for maas (with and without MAAS_PRELOAD), a naive handler (boto3 `get_object` +
`InferenceSession(bytes)` + stdlib JSON), the floor (numpy + onnxruntime + a session
from local bytes) and a Keras handler (`get_object` + `load_model` + `predict`).
Wall time and peak RSS, each a fresh process, the cases interleaved.

Not a test: run with `make bench` (after bench_core, whose RESULTS.md this extends).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_core import append_section
from benchmarks.common import keras_mlp, keras_to_onnx, record
from maas.promotion import release
from maas.registry import Registry
from maas.store import S3Store

BUCKET = "bench"
REPEATS = 7
PEAK = "import re; peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])"
BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]}
)

MAAS = f"""
import json, runpy, sys, time
t0 = time.perf_counter()
handler = runpy.run_path(sys.argv[1])["handler"]
t1 = time.perf_counter()
from maas.local_context import LocalContext
from maas.local_server import build_event
event = build_event("POST", "/v2/models/digits/infer", {{"content-type": "application/json"}},
                    {BODY!r}.encode())
response = handler(event, LocalContext())
assert response["statusCode"] == 200, response
t2 = time.perf_counter()
{PEAK}
print(json.dumps({{"init": t1 - t0, "first": t2 - t1, "peak_kb": peak}}))
"""

NAIVE = f"""
import json, time
t0 = time.perf_counter()
import boto3, numpy as np, onnxruntime as ort
s3 = boto3.client("s3")
model = s3.get_object(Bucket="{BUCKET}", Key="naive/digits.onnx")["Body"].read()
session = ort.InferenceSession(model)
def handler(event, context):
    request = json.loads(event["body"])
    tensor = request["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    (y,) = session.run(None, {{"input": x}})
    body = json.dumps({{"outputs": [{{"data": y.ravel().tolist()}}]}})
    return {{"statusCode": 200, "body": body}}
t1 = time.perf_counter()
assert handler({{"body": {BODY!r}}}, None)["statusCode"] == 200
t2 = time.perf_counter()
{PEAK}
print(json.dumps({{"init": t1 - t0, "first": t2 - t1, "peak_kb": peak}}))
"""

FLOOR = f"""
import json, time
t0 = time.perf_counter()
import numpy as np, onnxruntime as ort
import sys
session = ort.InferenceSession(open(sys.argv[1], "rb").read())
t1 = time.perf_counter()
session.run(None, {{"input": np.full((1, 8, 8), 0.5, np.float32)}})
t2 = time.perf_counter()
{PEAK}
print(json.dumps({{"init": t1 - t0, "first": t2 - t1, "peak_kb": peak}}))
"""

KERAS = f"""
import json, os, tempfile, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
t0 = time.perf_counter()
import boto3, numpy as np
import keras
s3 = boto3.client("s3")
path = os.path.join(tempfile.mkdtemp(), "digits.keras")
s3.download_file("{BUCKET}", "keras/digits.keras", path)
model = keras.models.load_model(path)
def handler(event, context):
    request = json.loads(event["body"])
    tensor = request["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    y = model.predict(x, verbose=0)
    body = json.dumps({{"outputs": [{{"data": y.ravel().tolist()}}]}})
    return {{"statusCode": 200, "body": body}}
t1 = time.perf_counter()
assert handler({{"body": {BODY!r}}}, None)["statusCode"] == 200
t2 = time.perf_counter()
{PEAK}
print(json.dumps({{"init": t1 - t0, "first": t2 - t1, "peak_kb": peak}}))
"""

MAAS_CASE, PRELOAD_CASE = "maas", "maas, MAAS_PRELOAD=digits"
NAIVE_CASE, FLOOR_CASE, KERAS_CASE = (
    "naive handler (boto3 + InferenceSession(bytes) + json)",
    "floor: numpy + onnxruntime + session",
    "Keras handler (boto3 + load_model + predict)",
)


def run(code: str, env: dict[str, str], argument: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, argument], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    parts: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**parts, "wall": wall}


def main() -> int:
    import boto3
    from moto.server import ThreadedMotoServer

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/RESULTS.md")
    work = Path(tempfile.mkdtemp(prefix="maas-bench-cold-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env_s3 = {
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(env_s3)
    try:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        keras_model = keras_mlp((128, 10), (8, 8))
        onnx_path = keras_to_onnx(keras_model, work, "digits")
        release(Registry(S3Store(BUCKET, client=s3)), onnx_path, "digits", alias="production")
        s3.upload_file(str(onnx_path), BUCKET, "naive/digits.onnx")
        s3.upload_file(str(work / "digits.keras"), BUCKET, "keras/digits.keras")
        app = str(Path("functions/inference/app.py").resolve())
        base_env = {
            **os.environ,
            "MAAS_REGISTRY": f"s3://{BUCKET}",
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        programs = {
            MAAS_CASE: (MAAS, {}, app),
            PRELOAD_CASE: (MAAS, {"MAAS_PRELOAD": "digits"}, app),
            NAIVE_CASE: (NAIVE, {}, ""),
            FLOOR_CASE: (FLOOR, {}, str(onnx_path)),
            KERAS_CASE: (KERAS, {}, ""),
        }
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in programs}
        for attempt in range(REPEATS):
            for name, (code, extra, argument) in programs.items():
                cache = {"MAAS_CACHE_DIR": str(work / f"cache-{attempt}-{len(samples[name])}")}
                samples[name].append(run(code, {**base_env, **extra, **cache}, argument))
    finally:
        server.stop()
    rows = summarize(samples)
    record("cold", rows)
    append_section(out, section(rows))
    return 0


def summarize(samples: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    def median(name: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[name])

    naive_wall, naive_rss = median(NAIVE_CASE, "wall"), median(NAIVE_CASE, "peak_kb")
    return [
        {
            "case": name,
            "wall_ms": median(name, "wall") * 1000,
            "init_ms": median(name, "init") * 1000,
            "first_ms": median(name, "first") * 1000,
            "peak_mib": median(name, "peak_kb") / 1024,
            "wall_vs_naive": median(name, "wall") / naive_wall,
            "rss_vs_naive": median(name, "peak_kb") / naive_rss,
        }
        for name in samples
    ]


def section(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "# Cold start, model in S3",
        "",
        "`benchmarks/bench_cold.py`: a moto server holds the registry; each case is a",
        f"fresh process (median of {REPEATS}, cases interleaved), from interpreter start to",
        "the first answer. `init` is what Lambda's init phase would run (imports, client,",
        "session where the handler builds it at import); `first request` the rest.",
        "",
        "| case | wall (ms) | init (ms) | first request (ms) | peak RSS (MiB) "
        "| wall / naive | RSS / naive |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['case']} | {r['wall_ms']:.0f} | {r['init_ms']:.0f} | {r['first_ms']:.0f} | "
        f"{r['peak_mib']:.0f} | {r['wall_vs_naive']:.2f}x | {r['rss_vs_naive']:.2f}x |"
        for r in rows
    ]
    lines += [
        "",
        "maas reads on a cold first request: the alias, the manifest, the deployment",
        "record (the measured footprint) and the model: four GETs, none repeated",
        "(docs/architecture.md). With MAAS_PRELOAD they happen at init.",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
