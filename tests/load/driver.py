"""A bounded load on `maas serve`: N clients, each on one kept-open connection, send M
inference requests each, alternating V2 JSON and V2 binary tensors, while the
``production`` alias moves from version 1 to version 2 half-way through.

Every answer is checked, not just its status: it must come from version 1 or 2 and
carry that version's outputs for the input sent (computed here with onnxruntime).
The run passes when there is no error, the move is seen within the alias TTL + 2 s
(the first answer from version 2 by then, and none from version 1 for a request
started after it), and, when asked, the server's RSS stays within a tolerance after
warm-up. Only loopback traffic; every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import onnxruntime as ort

from tests.support.serve_process import ServeProcess, small_registry

MODEL = "digits"
ALIAS = "production"
INPUTS = 16  # distinct inputs, batch sizes 1..4
HEADER = "inference-header-content-length"
SWITCH_GRACE_SECONDS = 2.0
WARM_UP_SHARE = 0.1  # of all requests, before RSS samples count


@dataclass(frozen=True)
class LoadSpec:
    clients: int = 8
    requests: int = 5000  # per client
    alias_ttl_seconds: float = 1.0
    rss_tolerance: float | None = 0.05  # None: RSS is reported, not judged
    timeout_seconds: float = 600.0  # the whole run stops by then, whatever happens


@dataclass(frozen=True)
class Answer:
    started: float
    finished: float
    version: int | None
    error: str | None


@dataclass
class LoadReport:
    spec: LoadSpec
    answers: list[Answer]
    seconds: float
    moved_at: float
    rss: list[tuple[float, int]]  # (time, bytes) after warm-up
    problems: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Answer]:
        return [a for a in self.answers if a.error is not None]

    def latency_ms(self, quantile: float) -> float:
        elapsed = sorted((a.finished - a.started) * 1000 for a in self.answers)
        if len(elapsed) < 2:
            return elapsed[0] if elapsed else 0.0
        return statistics.quantiles(elapsed, n=100, method="inclusive")[round(quantile * 100) - 1]

    @property
    def switch_seconds(self) -> float | None:
        """From the move to the first answer by version 2."""
        after = [a.finished for a in self.answers if a.version == 2 and a.finished >= self.moved_at]
        return min(after) - self.moved_at if after else None

    @property
    def rss_growth(self) -> float:
        values = [value for _, value in self.rss]
        return (max(values) - min(values)) / min(values) if values else 0.0

    def summary(self) -> dict[str, Any]:
        rss = [value for _, value in self.rss]
        switch = self.switch_seconds
        return {
            "clients": self.spec.clients,
            "requests_per_client": self.spec.requests,
            "requests": len(self.answers),
            "errors": len(self.errors),
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(len(self.answers) / self.seconds, 1),
            "p50_ms": round(self.latency_ms(0.50), 3),
            "p99_ms": round(self.latency_ms(0.99), 3),
            "alias_ttl_seconds": self.spec.alias_ttl_seconds,
            "switch_seconds": None if switch is None else round(switch, 3),
            "answers_by_version": {
                str(v): sum(1 for a in self.answers if a.version == v) for v in (1, 2)
            },
            "rss_mb_min_max": [round(min(rss) / 2**20, 1), round(max(rss) / 2**20, 1)]
            if rss
            else None,
            "rss_growth_percent": round(self.rss_growth * 100, 2),
            "rss_samples": len(rss),
            "problems": self.problems,
        }


class _Expected:
    """Each input in both encodings, and what each version must answer for it."""

    def __init__(self, model_files: dict[int, Path]) -> None:
        rng = np.random.default_rng(10)
        self.inputs = [rng.random((1 + i % 4, 8, 8), dtype=np.float32) for i in range(INPUTS)]
        self.outputs: dict[int, list[np.ndarray[Any, Any]]] = {}
        for version, path in model_files.items():
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.outputs[version] = [session.run(None, {"input": x})[0] for x in self.inputs]

    def json_request(self, index: int) -> tuple[bytes, dict[str, str]]:
        x = self.inputs[index]
        tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32"}
        body = {"id": str(index), "inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}
        return json.dumps(body).encode(), {"content-type": "application/json"}

    def binary_request(self, index: int) -> tuple[bytes, dict[str, str]]:
        """As tritonclient sends it: JSON header, raw tensor, binary outputs asked for."""
        x = self.inputs[index]
        header = json.dumps(
            {
                "id": str(index),
                "parameters": {"binary_data_output": True},
                "inputs": [
                    {
                        "name": "input",
                        "shape": list(x.shape),
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
            }
        ).encode()
        return header + x.astype("<f4").tobytes(), {HEADER: str(len(header))}

    def check(self, index: int, status: int, headers: http.client.HTTPMessage, body: bytes) -> int:
        """The version that answered, when the answer is right; raises otherwise."""
        if status != 200:
            raise ValueError(f"status {status}: {body[:200]!r}")
        version = int(headers["x-maas-model-version"])
        if version not in self.outputs:
            raise ValueError(f"answered by unexpected version {version}")
        length = headers.get(HEADER)
        document = json.loads(body if length is None else body[: int(length)])
        if document.get("id") != str(index):
            raise ValueError(f"answer for request {document.get('id')!r}, not {index}")
        if document["model_version"] != str(version):
            raise ValueError(
                f"body says version {document['model_version']}, header says {version}"
            )
        (output,) = document["outputs"]
        if length is None:
            values = np.asarray(output["data"], np.float32)
        else:
            values = np.frombuffer(body[int(length) :], "<f4")
        expected = self.outputs[version][index]
        if values.size != expected.size or not np.allclose(
            values.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6
        ):
            raise ValueError(f"outputs differ from version {version}'s for input {index}")
        return version


class _Client(threading.Thread):
    def __init__(self, number: int, address: tuple[str, int], count: int, run: _Run) -> None:
        super().__init__(name=f"load-client-{number}", daemon=True)
        self.number, self.address, self.count, self.run_state = number, address, count, run
        self.answers: list[Answer] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        expected = self.run_state.expected
        for i in range(self.count):
            if time.monotonic() > self.run_state.deadline:
                self.answers.append(Answer(time.monotonic(), time.monotonic(), None, "deadline"))
                break
            index = (self.number * 7 + i) % INPUTS
            body, headers = (expected.json_request if i % 2 else expected.binary_request)(index)
            started = time.monotonic()
            try:
                connection.request("POST", f"/v2/models/{MODEL}/infer", body, headers)
                response = connection.getresponse()
                data = response.read()
                version = expected.check(index, response.status, response.headers, data)
                self.answers.append(Answer(started, time.monotonic(), version, None))
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                self.answers.append(Answer(started, time.monotonic(), None, repr(exc)[:300]))
                connection.close()  # a new connection for the next request
                connection = http.client.HTTPConnection(*self.address, timeout=30)
            self.run_state.completed()
        connection.close()


class _Run:
    """What the clients share: expectations, a completion count, the deadline."""

    def __init__(self, expected: _Expected, total: int, deadline: float) -> None:
        self.expected = expected
        self.total = total
        self.deadline = deadline
        self.done = 0
        self._lock = threading.Lock()
        self.half_way = threading.Event()
        self.warmed_up = threading.Event()

    def completed(self) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        if done >= self.total * WARM_UP_SHARE:
            self.warmed_up.set()
        if done >= self.total / 2:
            self.half_way.set()


def _get(address: tuple[str, int], path: str) -> int:
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def run_load(spec: LoadSpec, workdir: Path | None = None) -> LoadReport:
    with tempfile.TemporaryDirectory(prefix="maas-load-") as temp:
        root = workdir or Path(temp)
        registry = small_registry(root)
        registry.set_alias(MODEL, ALIAS, 1, reason="load: start on version 1")
        expected = _Expected(
            {1: root / "models" / "digits-0.onnx", 2: root / "models" / "digits-1.onnx"}
        )
        environment = {"MAAS_ALIAS_TTL_SECONDS": f"{spec.alias_ttl_seconds:g}"}
        with ServeProcess(registry, root / "serve", environment) as server:
            url = urlsplit(server.url)
            address = (url.hostname or "127.0.0.1", int(url.port or 80))
            # Warm-up: both versions loaded before anything is measured.
            for path in (
                f"/v2/models/{MODEL}/versions/1/ready",
                f"/v2/models/{MODEL}/versions/2/ready",
            ):
                if _get(address, path) != 200:
                    raise RuntimeError(f"GET {path} failed; see {server.log}")
            report = _measure(spec, server, address, registry, expected)
        report.problems += _output_problems(server.log)
        return report


def _output_problems(log: Path) -> list[str]:
    """Every line `maas serve` printed (access log, EMF metrics) must be one JSON
    document: concurrent invocations must not interleave their output."""
    broken = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            json.loads(line)
        except json.JSONDecodeError:
            broken += 1
    return [f"{broken} lines of the server's output are not one JSON document"] if broken else []


def _measure(
    spec: LoadSpec,
    server: ServeProcess,
    address: tuple[str, int],
    registry: Any,
    expected: _Expected,
) -> LoadReport:
    total = spec.clients * spec.requests
    state = _Run(expected, total, time.monotonic() + spec.timeout_seconds)
    clients = [_Client(n, address, spec.requests, state) for n in range(spec.clients)]
    rss: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(0.25):
            if state.warmed_up.is_set():
                rss.append((time.monotonic(), server.rss_bytes()))

    sampler = threading.Thread(target=sample_rss, name="load-rss", daemon=True)
    started = time.monotonic()
    sampler.start()
    for client in clients:
        client.start()
    moved_at = float("nan")
    if state.half_way.wait(spec.timeout_seconds):
        registry.set_alias(MODEL, ALIAS, 2, reason="load: move half-way")
        moved_at = time.monotonic()
    for client in clients:
        client.join(max(1.0, state.deadline - time.monotonic()))
    seconds = time.monotonic() - started
    stop.set()
    sampler.join(5)
    answers = sorted((a for c in clients for a in c.answers), key=lambda a: a.started)
    report = LoadReport(spec, answers, seconds, moved_at, rss)
    report.problems = _problems(report, total)
    return report


def _problems(report: LoadReport, total: int) -> list[str]:
    spec = report.spec
    problems = []
    if len(report.answers) != total:
        problems.append(f"{len(report.answers)} answers for {total} requests")
    if report.errors:
        first = report.errors[0].error
        problems.append(f"{len(report.errors)} errors, the first: {first}")
    limit = spec.alias_ttl_seconds + SWITCH_GRACE_SECONDS
    switch = report.switch_seconds
    if switch is None or switch > limit:
        problems.append(f"the alias move was not seen within {limit:g} s (first answer: {switch})")
    late = [a for a in report.answers if a.version == 1 and a.started > report.moved_at + limit]
    if late:
        problems.append(f"{len(late)} requests started {limit:g} s after the move got version 1")
    if spec.rss_tolerance is not None:
        if len(report.rss) < 4:
            problems.append(f"only {len(report.rss)} RSS samples after warm-up; run longer")
        elif report.rss_growth > spec.rss_tolerance:
            problems.append(
                f"server RSS varied {report.rss_growth:.1%} after warm-up "
                f"(limit {spec.rss_tolerance:.0%})"
            )
    return problems
