"""Bounded verification: a candidate model is vetted, loaded and run in a child process.

The child (:mod:`maas.sandbox_child`, started with ``subprocess`` as
``sys.executable -m maas.sandbox_child``) limits its own memory
(``RLIMIT_DATA``) before importing anything, and loads the model with the
serving session options. The parent:

- refuses a file over ``MAAS_MAX_MODEL_BYTES`` before anything parses it;
- kills the child at ``MAAS_VERIFY_TIMEOUT_S``;
- reads the child's peak RSS from ``os.wait4``;
- turns every way the child can end (a result, a refusal, out of memory, out
  of time, a crash) into a result or a :class:`ModelRefused` naming the limit.
  Nothing the model does can crash or exhaust the parent.

No multiprocessing: Lambda has no ``/dev/shm``, so its queues, pools and locks
fail there. The job goes in, and the result comes out, through temporary files
(no pipe can fill up and stall either side).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from maas.config import VerifyLimits
from maas.errors import InvalidInput, ModelRefused
from maas.model_info import OnnxInfo, ResourceUse, TensorSpec, file_sha256
from maas.model_probes import Check
from maas.sandbox_protocol import STAGE_PREFIX, is_memory_failure, status_kb
from maas.serving.runtime import available_cpus

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Job:
    """What the child runs after loading: golden samples, else a zero input; a smoke test."""

    golden_samples: Sequence[Mapping[str, Any]] = ()
    datatypes: Mapping[str, str] = field(default_factory=dict)
    smoke_seed: int | None = None
    declared_outputs: Sequence[TensorSpec] = ()

    def as_json(self, path: Path, limits: VerifyLimits) -> dict[str, Any]:
        return {
            "path": str(path),
            "max_nodes": limits.max_nodes,
            "golden_samples": list(self.golden_samples),
            # Only samples need them: leaving them out otherwise lets a deploy
            # reuse publish's inspection of the same bytes (the memo key).
            "datatypes": dict(self.datatypes) if self.golden_samples else {},
            "smoke_seed": self.smoke_seed,
            "outputs": [s.as_json() for s in self.declared_outputs],
        }


@dataclass(frozen=True)
class Outcome:
    """How the bounded run went: the signature and probes, or why the model was refused."""

    info: OnnxInfo | None  # with its cost; None when refused
    checks: list[Check]
    refusal: str | None
    cost: ResourceUse

    def refused(self) -> ModelRefused:
        """The refusal as the error to raise, carrying what verifying cost."""
        error = ModelRefused(self.refusal or "refused")
        error.resources = self.cost.as_json()
        return error


def inspect_bounded(path: Path, limits: VerifyLimits | None = None) -> OnnxInfo:
    """Vet, load (serving options) and run ``path`` on a zero input, bounded; its signature."""
    outcome = run_bounded(path, Job(), limits)
    if outcome.info is None:
        raise outcome.refused()
    return outcome.info


def run_bounded(path: Path, job: Job, limits: VerifyLimits | None = None) -> Outcome:
    """Run ``job`` on ``path`` in a bounded child; refusals are outcomes, not exceptions.

    ``InvalidInput`` is raised only for a file that does not exist. A passing
    outcome is remembered for these exact bytes (by sha256), job and limits,
    so publish and the deploy that follows it do not load the same model twice.
    """
    limits = limits or VerifyLimits.from_env()
    label = str(path)
    if not path.is_file():
        raise InvalidInput(f"{label}: no such file")
    size = path.stat().st_size
    if size == 0:
        return _refused(f"{label} is empty, not an ONNX model")
    if size > limits.max_model_bytes:
        return _refused(
            f"{label} is {size} bytes, over the {limits.max_model_bytes} byte limit "
            "(MAAS_MAX_MODEL_BYTES); refused without parsing"
        )
    request = job.as_json(path, limits)
    key = _memo_key(path, request, limits)
    remembered = _memo.get(key)
    if remembered is not None:
        return remembered
    outcome = _spawn(label, request, limits)
    if outcome.refusal is None:
        _memo.put(key, outcome)
        if job.smoke_seed is not None and not job.golden_samples:
            # It inspected and ran a zero input on the way: all a plain inspection
            # does, so publishing a vetted upload needs no second child.
            inspection = _memo_key(path, Job().as_json(path, limits), limits)
            _memo.put(inspection, dataclasses.replace(outcome, checks=[]))
    return outcome


def _refused(reason: str, cost: ResourceUse | None = None) -> Outcome:
    return Outcome(None, [], reason, cost or ResourceUse(0, 0, 0.0, 0.0))


# ------------------------------------------------------------------ the child


@dataclass
class _Ended:
    status: int  # as from os.wait4
    #: ``ru_maxrss`` from wait4: an upper bound only. Linux starts a child's
    #: count from the parent's own peak at spawn (the memory it was forked or
    #: vforked from), so the child's exact peak comes from the child itself.
    maxrss_bytes: int
    wall_seconds: float
    timed_out: bool
    peak_when_killed: int  # VmHWM read just before the deadline's kill


def _spawn(label: str, request: dict[str, Any], limits: VerifyLimits) -> Outcome:
    cpu_seconds = math.ceil(limits.timeout_s * available_cpus()) + 5
    command = [
        sys.executable,
        "-m",
        "maas.sandbox_child",
        str(limits.memory_bytes),
        str(cpu_seconds),
    ]
    with (
        tempfile.TemporaryFile() as job_file,
        tempfile.TemporaryFile() as out_file,
        tempfile.TemporaryFile() as err_file,
    ):
        job_file.write(json.dumps(request).encode())
        job_file.seek(0)
        ended = _run_with_deadline(command, job_file, out_file, err_file, limits.timeout_s)
        out_file.seek(0)
        output = out_file.read()
        err_file.seek(0)
        errors = err_file.read().decode(errors="replace")
    return _interpret(label, ended, output, errors, limits)


def _child_env() -> dict[str, str]:
    # The child needs no AWS access: credentials stay with the parent.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # Wherever maas was imported from (the layer's /opt/python on Lambda, a
    # checkout in development), the child imports the same code.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env["OPENBLAS_NUM_THREADS"] = "1"  # numpy's BLAS pool: memory the child never needs
    return env


def _run_with_deadline(
    command: list[str], stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes], timeout_s: float
) -> _Ended:
    """Start the child, kill it at the deadline, and reap it with its resource usage.

    The child is waited for with ``WNOWAIT`` first: it stays a zombie (its pid
    cannot be reused) until the deadline timer is cancelled and joined, so the
    timer can never signal an unrelated process.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr, env=_child_env())
    expired = threading.Event()
    peak_when_killed = 0

    def kill() -> None:
        nonlocal peak_when_killed
        peak_when_killed = status_kb("VmHWM", process.pid) * 1024
        expired.set()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    exited = False
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        exited = True
    finally:
        timer.cancel()
        timer.join()
        if not exited:  # unwinding (e.g. KeyboardInterrupt): never leave the child behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return _Ended(
        status,
        int(usage.ru_maxrss) * 1024,  # KiB on Linux
        time.perf_counter() - started,
        expired.is_set(),
        peak_when_killed,
    )


def _stages(errors: str) -> tuple[str, int]:
    """The last stage the child announced, and the highest peak its lines report."""
    name, peak = "starting", 0
    for line in errors.splitlines():
        if line.startswith(STAGE_PREFIX):
            announced = json.loads(line[len(STAGE_PREFIX) :])
            name, peak = announced["stage"], max(peak, int(announced["peak_bytes"]))
    return name, peak


def _last_error_line(errors: str) -> str:
    lines = [
        line.strip()
        for line in errors.splitlines()
        if line.strip() and not line.startswith(STAGE_PREFIX)
    ]
    return lines[-1][:300] if lines else "no message"


def _interpret(
    label: str, ended: _Ended, output: bytes, errors: str, limits: VerifyLimits
) -> Outcome:
    stage, stage_peak = _stages(errors)
    code = os.waitstatus_to_exitcode(ended.status)
    if ended.timed_out or code == -signal.SIGXCPU:
        peak = max(stage_peak, ended.peak_when_killed) or ended.maxrss_bytes
        return _refused(
            f"{label} did not finish within {limits.timeout_s:g} s "
            f"(MAAS_VERIFY_TIMEOUT_S) while {stage}; verification stopped",
            ResourceUse(peak, 0, 0.0, ended.wall_seconds),
        )
    memory_limit = (
        f"{label} exceeded the {limits.memory_mb:g} MB verification memory limit "
        f"(MAAS_VERIFY_MEMORY_MB) while {stage}"
    )
    if code != 0 or not output:
        # It died without a word: its last peak is unknown, wait4's bound must do.
        cost = ResourceUse(ended.maxrss_bytes, 0, 0.0, ended.wall_seconds)
        detail = _last_error_line(errors)
        if is_memory_failure(errors):
            return _refused(f"{memory_limit}: {detail}", cost)
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return _refused(
            f"{label} crashed the verification process ({how}) while {stage}: {detail}", cost
        )
    result = json.loads(output)
    final_peak = int(result["final_peak_bytes"])
    before = int(result.get("rss_before_load_bytes") or 0)
    cost = ResourceUse(
        # Without /proc (not Linux), wait4's upper bound is all there is.
        peak_rss_bytes=max(stage_peak, final_peak) or ended.maxrss_bytes,
        # The session's peak over what was resident before it; without a
        # resettable peak mark, the whole run's peak is charged to the model.
        footprint_bytes=max(0, final_peak - before) if before else 0,
        load_seconds=float(result.get("load_seconds") or 0.0),
        wall_seconds=ended.wall_seconds,
    )
    refusal = result["refusal"]
    if refusal is not None:
        reason = refusal["detail"]
        return _refused(
            f"{memory_limit}: {reason}" if refusal["kind"] == "memory" else reason, cost
        )
    info = OnnxInfo.from_json(result["info"], cost)
    return Outcome(info, [Check.from_json(c) for c in result["checks"]], None, cost)


# ------------------------------------------------------------------- the memo


def _memo_key(path: Path, request: dict[str, Any], limits: VerifyLimits) -> str:
    sha256, _ = file_sha256(path)
    described = {**request, "path": None, "sha256": sha256, "limits": repr(limits)}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


class _Memo:
    """The last few passing outcomes, by model bytes, job and limits (same bytes, same verdict)."""

    def __init__(self, capacity: int = 32) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Outcome] = OrderedDict()

    def get(self, key: str) -> Outcome | None:
        with self._lock:
            outcome = self._items.get(key)
            if outcome is not None:
                self._items.move_to_end(key)
            return outcome

    def put(self, key: str, outcome: Outcome) -> None:
        with self._lock:
            self._items[key] = outcome
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_memo = _Memo()


def forget_outcomes() -> None:
    """Drop remembered outcomes (tests that measure a fresh run)."""
    _memo.clear()
