"""onnxruntime sessions tuned for Lambda, and the loaded-model object the cache holds."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.documents import Manifest
from maas.errors import InvalidInput, RunTimedOut, ServerFault
from maas.serving.watchdog import WATCHDOG

#: Footprint estimate: weights are held by the session and, for MatMul/Gemm,
#: often once more in prepacked form; activations for large batches come on
#: top. Twice the file size is a deliberately simple, slightly conservative
#: figure to budget the cache by.
FOOTPRINT_FACTOR = 2


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, not the host's core count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session_options(cpus: int | None = None) -> Any:
    """Session options for a Lambda environment.

    - Thread counts are explicit and derived from the affinity mask: left at 0,
      onnxruntime sizes its pool from the host's cores and tries to pin threads
      to them, which fails ("pthread_setaffinity_np failed") inside Lambda's
      sandbox and oversubscribes the 1-6 vCPUs a function actually gets.
    - inter-op = 1: sequential execution; these are small graphs, one request
      at a time, and parallel branches only add scheduling overhead.
    - Spinning off: idle pool threads otherwise busy-wait after each run,
      burning billed CPU time between requests for a latency gain that only
      matters under back-to-back load.
    - ORT_ENABLE_ALL: full (hardware-specific) graph optimisation happens here,
      on the machine that serves, never offline.
    """
    import onnxruntime as ort

    threads = cpus or available_cpus()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; warnings go nowhere useful on Lambda
    return options


class DeclaredSignature:
    """``inputs`` and ``outputs`` as the manifest declares them, for whatever answers."""

    manifest: Manifest

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list(self.manifest["inputs"])

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.manifest["outputs"])


@dataclass
class LoadedModel(DeclaredSignature):
    """A version ready to answer: its manifest and its onnxruntime session."""

    name: str
    version: int
    manifest: Manifest
    session: Any
    footprint: int
    run_timeout_ms: float = 20_000.0

    @classmethod
    def load(
        cls,
        name: str,
        version: int,
        manifest: Manifest,
        model: bytes | Path,
        run_timeout_ms: float | None = None,
    ) -> LoadedModel:
        """A session over ``model``: the verified bytes themselves (what serving
        passes, so the file cannot change between its check and the load), or a path.
        ``run_timeout_ms`` defaults to ``MAAS_RUN_TIMEOUT_MS``; a data plane that holds a
        :class:`~maas.config.ServingConfig` passes its ``run_timeout_ms``."""
        import onnxruntime as ort

        from maas.config import run_timeout_ms_from_env

        try:
            session = ort.InferenceSession(
                model if isinstance(model, bytes) else str(model),
                session_options(),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime's own exception types are not exported
            raise ServerFault(
                f"{name}:{version} does not load in onnxruntime: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
            ) from exc
        timeout = run_timeout_ms_from_env() if run_timeout_ms is None else run_timeout_ms
        return cls(name, version, manifest, session, estimate_footprint(manifest), timeout)

    @property
    def parameters(self) -> dict[str, Any]:
        """What a V2 response's ``parameters`` carry for this model: nothing (an
        ensemble names its members there)."""
        return {}

    def run(
        self, feed: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> list[np.ndarray[Any, Any]]:
        """Run validated inputs, stopped at ``run_timeout_ms`` (:class:`RunTimedOut`, 503).

        onnxruntime's own complaints become client errors: validation runs
        first, so what reaches here is a model-specific rule (e.g. a value out
        of an op's range) that the request still broke."""
        import onnxruntime as ort

        run_options = ort.RunOptions()
        armed = WATCHDOG.arm(run_options, self.run_timeout_ms / 1000)
        try:
            results: list[np.ndarray[Any, Any]] = self.session.run(
                list(outputs), dict(feed), run_options
            )
        except Exception as exc:
            if armed.fired:
                raise RunTimedOut(
                    f"{self.name}:{self.version} did not finish within "
                    f"{self.run_timeout_ms:g} ms (MAAS_RUN_TIMEOUT_MS); the run was stopped"
                ) from exc
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            if type(exc).__name__ == "InvalidArgument":
                raise InvalidInput(
                    f"{self.name}:{self.version} rejected the input: {message}"
                ) from exc
            raise ServerFault(f"{self.name}:{self.version} failed: {message}") from exc
        finally:
            armed.disarm()
        return results


def estimate_footprint(manifest: Manifest, measured_bytes: int | None = None) -> int:
    """Bytes to budget a loaded model by: what verification measured its session
    take (``Verification.footprint_bytes``), and never less than twice its file."""
    return max(int(manifest["model"]["size"]) * FOOTPRINT_FACTOR, measured_bytes or 0)
