"""Cold path: a fresh process importing the inference function and answering its first
request (model downloaded from a local registry, verified, session built), against
the floor of a fresh process importing onnxruntime and numpy, in the same run.

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

from benchmarks.bench_core import append_section
from maas.promotion import release
from maas.registry import Registry
from maas.store import LocalStore
from tests.support import onnx_models

FLOOR = "import numpy, onnxruntime"
COLD = """
import json, runpy, time
t0 = time.perf_counter()
handler = runpy.run_path({app!r})["handler"]
t1 = time.perf_counter()
from maas.local_server import LocalContext, build_event
body = json.dumps({{"inputs": [{{"name": "input", "shape": [1, 8, 8], "datatype": "FP32",
                               "data": [0.5] * 64}}]}}).encode()
response = handler(build_event("POST", "/v2/models/digits/infer",
                               {{"content-type": "application/json"}}, body), LocalContext())
assert response["statusCode"] == 200, response
t2 = time.perf_counter()
print(json.dumps({{"init": t1 - t0, "first": t2 - t1}}))
"""


def run(code: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return time.perf_counter() - started, done.stdout.strip().splitlines()[
        -1
    ] if done.stdout else ""


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/RESULTS.md")
    work = Path(tempfile.mkdtemp(prefix="maas-bench-cold-"))
    model = onnx_models.save(onnx_models.digits_mlp(hidden=128), work / "digits.onnx")
    release(Registry(LocalStore(work / "registry")), model, "digits", alias="production")
    app = str(Path("functions/inference/app.py").resolve())
    floors, totals, inits, firsts = [], [], [], []
    for attempt in range(7):
        cache = work / f"cache-{attempt}"  # a cold /tmp each time
        env = {
            **os.environ,
            "MAAS_REGISTRY": str(work / "registry"),
            "MAAS_CACHE_DIR": str(cache),
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
        }
        floors.append(run(FLOOR, env)[0])
        total, line = run(COLD.format(app=app), env)
        totals.append(total)
        parts = json.loads(line)
        inits.append(parts["init"])
        firsts.append(parts["first"])
    floor = statistics.median(floors)
    rows = [
        ("python + `import numpy, onnxruntime` (the floor)", floor),
        ("cold process: handler import + first request", statistics.median(totals)),
        ("  of which: importing the function module (init)", statistics.median(inits)),
        ("  of which: first request (download, verify, session, infer)", statistics.median(firsts)),
    ]
    lines = [
        "",
        "# Cold path",
        "",
        "`benchmarks/bench_cold.py`: fresh processes, median of 7, each with an empty model",
        "cache; the model comes from a local-directory registry (on Lambda, S3 adds the",
        "download time). Bytecode for the venv is already compiled, as it is in the layer.",
        "",
        "| case | median (ms) | / floor |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {name} | {seconds * 1000:.0f} | {seconds / floor:.2f}x |" for name, seconds in rows
    ]
    lines.append("")
    append_section(out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
