"""The verification child: ``python -m maas.sandbox_child MEMORY_BYTES CPU_SECONDS``.

It limits itself before importing anything heavy, reads one job (JSON) on
stdin, vets, loads and runs the model, and writes one result (JSON) on stdout.
The parent (:mod:`maas.model_sandbox`) enforces the wall-clock deadline and
reads the peak RSS; progress lines on stderr tell it which stage was running
when the child was killed.

The memory limit is ``RLIMIT_DATA`` (private writable memory: heap and
anonymous mappings), not ``RLIMIT_AS``: address space also counts the
reservations of every thread's stack and malloc arena, which grow with the
CPU count and would leave a model much less than the limit says. Linux does
not enforce ``RLIMIT_RSS``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from maas.sandbox_protocol import STAGE_PREFIX, is_memory_failure, status_kb


def limit_self(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    # Backstop for an orphan: the parent's deadline is what normally stops us.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def stage(name: str) -> None:
    """Tell the parent what is running now, and the peak RSS so far (it may kill us)."""
    line = json.dumps({"stage": name, "peak_bytes": status_kb("VmHWM") * 1024})
    sys.stderr.write(f"{STAGE_PREFIX}{line}\n")
    sys.stderr.flush()


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark, so the session's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _warm_up_onnxruntime() -> None:
    """Pay onnxruntime's one-time costs (import, environment, kernel registry:
    about 35 MB) on a one-node model first, so the candidate's footprint is
    its own, as in a serving process that already holds a session."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from maas.serving.runtime import session_options

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "warm_up",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    ort.InferenceSession(
        model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"]
    )


class _Refused(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _refusal(detail: str) -> _Refused:
    return _Refused("memory" if is_memory_failure(detail) else "model", detail)


def _vet_load_run(job: dict[str, Any], memory_bytes: int, result: dict[str, Any]) -> None:
    from maas.model_probes import golden_probe, oversized_input, smoke_probe, zero_input_probe
    from maas.onnxfile import TensorSpec, load_serving_session, vet_onnx_file

    path = Path(job["path"])
    stage("parsing and checking the file")
    info = vet_onnx_file(path, job["max_nodes"])
    _warm_up_onnxruntime()
    stage("creating the onnxruntime session")  # its line carries the parse's peak
    result["rss_before_load_bytes"] = status_kb("VmRSS") * 1024
    result["peak_reset"] = _reset_peak()
    started = time.perf_counter()
    session, inputs, outputs = load_serving_session(path)
    result["load_seconds"] = time.perf_counter() - started
    result["info"] = dataclasses.replace(info, inputs=inputs, outputs=outputs).as_json()
    too_big = oversized_input(inputs, memory_bytes)
    if too_big is not None:
        raise _Refused("model", f"{path} {too_big}")
    checks = []
    if job["golden_samples"]:
        stage("running the golden samples")
        checks.append(golden_probe(session, job["golden_samples"], job["datatypes"]))
    else:
        stage("running a zero input")
        zero = zero_input_probe(session, inputs)
        if not zero.passed:
            raise _refusal(f"{path} {zero.detail}")
    if job["smoke_seed"] is not None:
        stage("running the smoke test")
        declared = [TensorSpec.from_json(s) for s in job["outputs"]] or outputs
        checks.append(smoke_probe(session, inputs, declared, job["smoke_seed"]))
    for check in checks:
        if not check.passed and is_memory_failure(check.detail):
            raise _Refused("memory", f"{check.name}: {check.detail}")
    result["checks"] = [c.as_json() for c in checks]


def run_job(job: dict[str, Any], memory_bytes: int) -> dict[str, Any]:
    """Vet, load and run; every refusal is a result, never an exception.

    ``final_peak_bytes`` is the peak since the mark was reset before loading
    (``peak_reset``), else the whole run's; the stage lines carry the peak
    before that.
    """
    from maas.errors import MaasError

    result: dict[str, Any] = {"refusal": None, "info": None, "checks": []}
    try:
        _vet_load_run(job, memory_bytes, result)
    except _Refused as refused:
        result["refusal"] = {"kind": refused.kind, "detail": refused.detail}
    except MaasError as exc:
        classified = _refusal(str(exc))
        result["refusal"] = {"kind": classified.kind, "detail": classified.detail}
    except MemoryError as exc:
        result["refusal"] = {"kind": "memory", "detail": f"MemoryError {exc}".strip()}
    result["final_peak_bytes"] = status_kb("VmHWM") * 1024
    return result


def main(argv: list[str]) -> int:
    memory_bytes, cpu_seconds = int(argv[1]), int(argv[2])
    limit_self(memory_bytes, cpu_seconds)
    # The result gets the real stdout to itself: anything a library prints
    # goes to stderr instead of corrupting the JSON.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    job = json.load(sys.stdin)
    result = run_job(job, memory_bytes)
    with os.fdopen(result_fd, "w") as out:
        out.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
