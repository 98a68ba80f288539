"""The hostile-model corpus through publish and the deployer, with the default limits:
reason, wall time, and peak RSS of the caller and of the verification child.

Each case runs in a fresh process (so the caller's peak is its own): `publish`
is ``Registry.publish(..., alias="production")`` on a local registry (what
`maas publish --alias production` does), `deployer` is the deployer's
``verify_model`` on a committed manifest. Not a test: `make bench` runs it
(about three minutes: the endless loop runs into the 60 s deadline twice).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_core import append_section
from tests.support.hostile_models import CASES, MANIFEST_LIES

ONE_CASE = """
import json, resource, sys, time
from pathlib import Path
from maas.errors import ModelRefused
from maas.model_checks import verify_model
from maas.onnxfile import OnnxInfo, TensorSpec, file_sha256
from maas.registry import Registry
from maas.store import LocalStore
from tests.support.hostile_models import CASES, MANIFEST_LIES

case, mode, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
path = work / f"{case}.onnx"
CASES[case](path)
registry = Registry(LocalStore(work / "registry"))
started = time.perf_counter()
child_peak, reason = 0, "accepted"
if mode == "publish":
    try:
        registry.publish(path, "hostile")
    except ModelRefused as exc:
        reason, child_peak = str(exc), (exc.resources or {}).get("peak_rss_bytes", 0)
else:
    sha256, size = file_sha256(path)
    io = ([TensorSpec("x", "FP32", [1])], [TensorSpec("y", "FP32", [1])])
    if case in MANIFEST_LIES:
        io = ([TensorSpec("input", "FP32", [-1, 8, 8])],
              [TensorSpec("probabilities", "FP32", [-1, 10])])
    manifest = registry.build_manifest("hostile", 1, OnnxInfo(sha256, size, 17, *io))
    if case in MANIFEST_LIES:
        MANIFEST_LIES[case](manifest)
    verification = verify_model(path, manifest)
    reason = "accepted" if verification.passed else verification.reason
    child_peak = verification.peak_rss_bytes
wall = time.perf_counter() - started
parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall": wall, "parent": parent_peak, "child": child_peak, "reason": reason}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    lines = [
        "",
        "## Hostile models, default limits (1024 MB, 60 s), one fresh process per row",
        "",
        "| case | path | file | wall s | caller peak MB | child peak MB | refused because |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for case in args.cases:
        # publish writes the manifest from the model itself: it cannot carry a lie.
        modes = ("deployer",) if case in MANIFEST_LIES else ("publish", "deployer")
        for mode in modes:
            with tempfile.TemporaryDirectory() as work:
                done = subprocess.run(
                    [sys.executable, "-c", ONE_CASE, case, mode, work],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                size = (Path(work) / f"{case}.onnx").stat().st_size
            row = json.loads(done.stdout.strip().splitlines()[-1])
            reason = row["reason"].replace(work, "").replace("|", "/")[:110]
            lines.append(
                f"| {case} | {mode} | {size:,} | {row['wall']:.2f} | {row['parent'] / 2**20:.0f} "
                f"| {row['child'] / 2**20:.0f} | {reason} |"
            )
            print(lines[-1], flush=True)
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
