"""Verification of a model version: the one function `maas publish` and the deployer share.

A version passes only when its manifest matches the schema, its bytes match
the manifest's size and sha256, no tensor anywhere uses external data, it
passes the ONNX checker and loads in onnxruntime, its declared signature is
its real one, and its golden samples reproduce within their tolerance.
Each check is reported, passed or not, so a refusal says exactly why.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maas.documents import Manifest, validate
from maas.errors import InvalidInput, MaasError
from maas.onnxfile import OnnxInfo, file_sha256, inspect_onnx
from maas.tensors import tensor_from_data


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        return f"{failed[0].name}: {failed[0].detail}" if failed else "all checks passed"

    def as_json(self) -> list[dict[str, Any]]:
        return [c.as_json() for c in self.checks]


def verify_model(path: Path, manifest: Manifest, info: OnnxInfo | None = None) -> Verification:
    """Run every check on a model file against its manifest; stop at the first failure.

    ``info``, when the caller already inspected this file, saves loading it
    again. Only refusals are recorded as failed checks; I/O trouble (the caller's
    download, a full disk) raises, so that it is retried, never mistaken for a
    bad model.
    """
    started = time.perf_counter()
    result = Verification()

    def record(name: str, passed: bool, detail: str) -> bool:
        result.checks.append(Check(name, passed, detail))
        return passed

    try:
        validate("manifest", manifest)
    except InvalidInput as exc:
        record("schema", False, str(exc))
        return _done(result, started)
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
        return _done(result, started)
    record("integrity", True, f"{size} bytes, sha256 {sha256}")

    if info is None or info.sha256 != sha256:  # reuse an inspection of these very bytes
        try:
            info = inspect_onnx(path)
        except MaasError as exc:
            record("model", False, str(exc))
            return _done(result, started)
    record(
        "model",
        True,
        "self-contained ONNX (no external data), passes the checker, loads in onnxruntime",
    )

    if not record(*_signature_check(info, manifest)):
        return _done(result, started)
    record(*_golden_check(path, manifest))
    return _done(result, started)


def _done(result: Verification, started: float) -> Verification:
    result.seconds = time.perf_counter() - started
    return result


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


def _golden_check(path: Path, manifest: Manifest) -> tuple[str, bool, str]:
    samples = manifest["golden_samples"]
    if not samples:
        return ("golden_samples", True, "none in the manifest")
    import onnxruntime as ort

    from maas.serving.runtime import session_options

    session = ort.InferenceSession(
        str(path), session_options(1), providers=["CPUExecutionProvider"]
    )
    datatypes = {t["name"]: t["datatype"] for t in manifest["inputs"]}
    worst = 0.0
    for index, sample in enumerate(samples):
        try:
            feed = {
                name: tensor_from_data(
                    name, datatypes.get(name, "FP32"), tensor["shape"], tensor["data"]
                ).array
                for name, tensor in sample["inputs"].items()
            }
            names = list(sample["outputs"])
            produced = session.run(names, feed)
        except Exception as exc:  # onnxruntime's exception types are not exported
            return ("golden_samples", False, f"sample {index} does not run: {exc}")
        for name, got in zip(names, produced, strict=True):
            want = np.asarray(sample["outputs"][name]["data"], dtype=np.float64)
            got64 = np.asarray(got, dtype=np.float64).reshape(-1)
            if got64.shape != want.reshape(-1).shape:
                return (
                    "golden_samples",
                    False,
                    f"sample {index} output {name!r} has {got64.size} values, expected {want.size}",
                )
            diff = float(np.max(np.abs(got64 - want.reshape(-1)))) if want.size else 0.0
            if not math.isfinite(diff) or diff > sample["atol"]:
                return (
                    "golden_samples",
                    False,
                    f"sample {index} output {name!r} differs by {diff:.3g}, over its "
                    f"tolerance {sample['atol']:.3g}",
                )
            worst = max(worst, diff)
    return ("golden_samples", True, f"{len(samples)} reproduced (max diff {worst:.3g})")


def smoke_check(path: Path, info: OnnxInfo, seed: int = 0) -> Check:
    """Run random in-range inputs (batch 1); require finite outputs of the declared shape.

    For raw uploads, which come with no golden samples: it catches a model that
    loads but cannot run, or that produces NaN on ordinary input.
    """
    import onnxruntime as ort

    from maas.datatypes import numpy_dtype
    from maas.serving.runtime import session_options

    rng = np.random.default_rng(seed)
    feed: dict[str, Any] = {}
    for spec in info.inputs:
        shape = [1 if d == -1 else d for d in spec.shape]
        dtype = numpy_dtype(spec.datatype)
        if spec.datatype == "BYTES":
            values = np.empty(shape, dtype=object)
            values.fill(b"maas")
        elif spec.datatype == "BOOL":
            values = rng.random(shape) < 0.5
        elif dtype.kind in "iu":
            values = rng.integers(0, 10, size=shape).astype(dtype)
        else:
            values = rng.random(shape).astype(dtype)
        feed[spec.name] = values
    try:
        session = ort.InferenceSession(
            str(path), session_options(1), providers=["CPUExecutionProvider"]
        )
        outputs = session.run([s.name for s in info.outputs], feed)
    except Exception as exc:  # onnxruntime's exception types are not exported
        return Check("smoke_test", False, f"random in-range inputs do not run: {exc}")
    for spec, array in zip(info.outputs, outputs, strict=True):
        array = np.asarray(array)
        if array.ndim != len(spec.shape) or any(
            want != -1 and got != want for got, want in zip(array.shape, spec.shape, strict=True)
        ):
            return Check(
                "smoke_test",
                False,
                f"output {spec.name!r} has shape {list(array.shape)}, declared {spec.shape}",
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return Check(
                "smoke_test", False, f"output {spec.name!r} is not finite on random in-range inputs"
            )
    return Check("smoke_test", True, "finite outputs of the declared shapes on random inputs")
