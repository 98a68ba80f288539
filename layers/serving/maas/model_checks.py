"""Verification of a model version: the one function `maas publish` and the deployer share.

A version passes only when its manifest matches the schema, its bytes match
the manifest's size and sha256, no tensor anywhere uses external data, it
passes the ONNX checker, loads in onnxruntime with the serving options and
runs (its golden samples, else a zero input) within the verification limits,
its declared signature is its real one, and its golden samples reproduce
within their tolerance. Each check is reported, passed or not, so a refusal
says exactly why.

Everything that reads the model runs in a bounded child process
(:mod:`maas.model_sandbox`): a model that balloons, hangs or crashes is a
refusal naming the limit, never a crash or a hang of the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maas.config import VerifyLimits
from maas.documents import Manifest, validate
from maas.errors import InvalidInput
from maas.model_probes import Check
from maas.model_sandbox import Job, Outcome, run_bounded
from maas.onnxfile import OnnxInfo, ResourceUse, file_sha256

__all__ = ["Check", "Verification", "smoke_check", "verify_model", "vet_upload"]


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    #: Measured in the verification child (0 when it never got to load the model).
    peak_rss_bytes: int = 0
    footprint_bytes: int = 0
    load_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        return f"{failed[0].name}: {failed[0].detail}" if failed else "all checks passed"

    def as_json(self) -> list[dict[str, Any]]:
        return [c.as_json() for c in self.checks]

    def resources_json(self) -> dict[str, Any]:
        """What verifying cost, for the deployment record (and a cache's footprint)."""
        return {
            "peak_rss_bytes": self.peak_rss_bytes,
            "footprint_bytes": self.footprint_bytes,
            "load_seconds": round(self.load_seconds, 6),
            "seconds": round(self.seconds, 6),
        }

    def measured(self, cost: ResourceUse) -> None:
        self.peak_rss_bytes = cost.peak_rss_bytes
        self.footprint_bytes = cost.footprint_bytes
        self.load_seconds = cost.load_seconds


def verify_model(
    path: Path,
    manifest: Manifest,
    info: OnnxInfo | None = None,
    limits: VerifyLimits | None = None,
) -> Verification:
    """Run every check on a model file against its manifest; stop at the first failure.

    ``info``, when the caller already inspected these very bytes with
    :func:`maas.onnxfile.inspect_onnx` (bounded: it loaded the model and ran a
    zero input), saves loading it again when the manifest has no golden
    samples. Only refusals are recorded as failed checks; I/O trouble (the
    caller's download, a full disk) raises, so that it is retried, never
    mistaken for a bad model.
    """
    started = time.perf_counter()
    result = Verification()

    def record(name: str, passed: bool, detail: str) -> bool:
        result.checks.append(Check(name, passed, detail))
        return passed

    def done() -> Verification:
        result.seconds = time.perf_counter() - started
        return result

    try:
        validate("manifest", manifest)
    except InvalidInput as exc:
        record("schema", False, str(exc))
        return done()
    record("schema", True, "manifest matches maas.manifest/1")

    sha256, size = file_sha256(path)
    expected = manifest["model"]
    if (sha256, size) != (expected["sha256"], expected["size"]):
        record(
            "integrity",
            False,
            f"bytes are {size} with sha256 {sha256}; the manifest says "
            f"{expected['size']} with sha256 {expected['sha256']}",
        )
        return done()
    record("integrity", True, f"{size} bytes, sha256 {sha256}")

    samples = manifest["golden_samples"]
    runs: list[Check] = []
    if samples or info is None or info.sha256 != sha256 or info.cost is None:
        datatypes = {t["name"]: t["datatype"] for t in manifest["inputs"]}
        outcome = run_bounded(path, Job(samples, datatypes), limits)
        if outcome.info is None:
            result.measured(outcome.cost)
            record("model", False, outcome.refusal or "refused")
            return done()
        info, runs = outcome.info, outcome.checks
    assert info.cost is not None  # set by every bounded inspection
    result.measured(info.cost)
    record("model", True, _model_detail(info.cost))

    if not record(*_signature_check(info, manifest)):
        return done()
    if samples:
        result.checks.extend(runs)
    else:
        record("golden_samples", True, "none in the manifest; a zero input runs")
    return done()


def _model_detail(cost: ResourceUse) -> str:
    return (
        "self-contained ONNX (no external data), passes the checker, loads in onnxruntime "
        f"with the serving options in {cost.load_seconds:.3f} s and runs, peak "
        f"{cost.peak_rss_bytes / 2**20:.0f} MB, footprint {cost.footprint_bytes / 2**20:.1f} MB"
    )


def _signature_check(info: OnnxInfo, manifest: Manifest) -> tuple[str, bool, str]:
    real = {
        "inputs": [s.as_json() for s in info.inputs],
        "outputs": [s.as_json() for s in info.outputs],
    }
    for side in ("inputs", "outputs"):
        declared = [{k: t[k] for k in ("name", "datatype", "shape")} for t in manifest[side]]
        if declared != real[side]:
            return (
                "signature",
                False,
                f"the manifest declares {side} {declared}, the model has {real[side]}",
            )
    return ("signature", True, "declared inputs and outputs are the model's")


def _smoke_outcome(
    path: Path, seed: int, info: OnnxInfo | None, limits: VerifyLimits | None
) -> Outcome:
    declared = info.outputs if info is not None else ()
    return run_bounded(path, Job(smoke_seed=seed, declared_outputs=declared), limits)


def smoke_check(
    path: Path, info: OnnxInfo, seed: int = 0, limits: VerifyLimits | None = None
) -> Check:
    """Random in-range inputs (batch 1), bounded; finite outputs of ``info``'s declared shapes.

    For raw uploads, which come with no golden samples: it catches a model that
    loads but cannot run, or that produces NaN on ordinary input.
    """
    outcome = _smoke_outcome(path, seed, info, limits)
    if outcome.refusal is not None:
        return Check("smoke_test", False, outcome.refusal)
    return next(c for c in outcome.checks if c.name == "smoke_test")


def vet_upload(
    path: Path, seed: int = 0, limits: VerifyLimits | None = None
) -> tuple[OnnxInfo, Check]:
    """:func:`maas.onnxfile.inspect_onnx` and :func:`smoke_check` in one bounded child.

    Raises :class:`ModelRefused` when the model itself is refused; the smoke
    test's verdict is the returned check.
    """
    outcome = _smoke_outcome(path, seed, None, limits)
    if outcome.info is None:
        raise outcome.refused()
    return outcome.info, next(c for c in outcome.checks if c.name == "smoke_test")
