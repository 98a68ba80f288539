"""Evaluation and calibration data: ``.npz`` files checked against the model's inputs.

An ``.npz`` holds ``x`` (the input of a single-input model; a multi-input model
reads one array per input name instead) and optionally ``y``, integer labels.
Every array is checked against the model's signature before any work is done,
so a wrong shape or dtype is one clear error instead of a failure deep inside
onnxruntime.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maas.errors import InvalidInput
from maas.onnxfile import file_sha256

from .sources import IOSpec

#: Inputs generated for parity checks when no evaluation data is given.
GENERATED_SAMPLES = 64


@dataclass(frozen=True)
class Dataset:
    """Model inputs keyed by ONNX input name, with labels when the file had them."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    path: Path | None = None
    sha256: str | None = None

    @property
    def generated(self) -> bool:
        return self.path is None

    def __len__(self) -> int:
        return len(next(iter(self.feeds.values())))

    def take(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: array[start:stop] for name, array in self.feeds.items()}


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file; anything unreadable is :class:`InvalidInput`."""
    if not path.is_file():
        raise InvalidInput(f"{what} {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise InvalidInput(
            f"{what} {path} is not an .npz archive; write one with "
            "np.savez(path, x=inputs, y=labels)"
        )
    try:
        # allow_pickle=False: an object array would run arbitrary code on load.
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InvalidInput(
            f"{what} {path} is not a readable .npz of numeric arrays: {detail}"
        ) from exc


def load_dataset(path: Path, inputs: Sequence[IOSpec], what: str) -> Dataset:
    """Read ``path`` and check it against ``inputs``; see :func:`bind`."""
    arrays = read_npz(path, what)
    return bind(arrays, inputs, f"{what} {path}", path, file_sha256(path)[0])


def bind(
    arrays: dict[str, np.ndarray],
    inputs: Sequence[IOSpec],
    label: str,
    path: Path | None = None,
    sha256: str | None = None,
) -> Dataset:
    """Map arrays onto the model's inputs, checking presence, shape, dtype and length."""
    feeds: dict[str, np.ndarray] = {}
    for spec in inputs:
        keys = ["x", spec.name] if len(inputs) == 1 else [spec.name]
        key = next((k for k in keys if k in arrays), None)
        if key is None:
            raise InvalidInput(
                f"{label} has no array {' or '.join(map(repr, keys))} for "
                f"model input {spec.name!r} (it has: "
                f"{', '.join(sorted(arrays)) or 'nothing'})"
            )
        feeds[spec.name] = _check_input(arrays[key], spec, f"{label}[{key!r}]")
    lengths = {len(array) for array in feeds.values()}
    if len(lengths) != 1:
        raise InvalidInput(f"{label}: the input arrays have different lengths {sorted(lengths)}")
    (count,) = lengths
    if count == 0:
        raise InvalidInput(f"{label} holds no samples")
    labels = None
    if "y" in arrays:
        labels = _check_labels(arrays["y"], count, f"{label}['y']")
    return Dataset(feeds, labels, path, sha256)


def _check_input(array: np.ndarray, spec: IOSpec, label: str) -> np.ndarray:
    want = spec.dtype
    if want.kind == "f":
        ok = array.dtype.kind == "f"
    elif want.kind in "iu":
        ok = array.dtype.kind in "iu"
    else:
        ok = array.dtype == want
    if not ok:
        raise InvalidInput(
            f"{label} has dtype {array.dtype}, but model input {spec.name!r} "
            f"takes {want} (convert the data, e.g. x.astype(np.{want}))"
        )
    if array.ndim != len(spec.shape) or any(
        expected is not None and got != expected
        for got, expected in zip(array.shape[1:], spec.shape[1:], strict=True)
    ):
        raise InvalidInput(
            f"{label} has shape {tuple(array.shape)}, but model input "
            f"{spec.name!r} takes {spec.shape_text()}"
        )
    if want.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput(f"{label} contains NaN or infinite values")
    return np.ascontiguousarray(array, dtype=want)


def _check_labels(labels: np.ndarray, count: int, label: str) -> np.ndarray:
    if labels.dtype.kind not in "iu":
        raise InvalidInput(
            f"{label} has dtype {labels.dtype}: labels must be integer class indices"
        )
    if labels.shape != (count,):
        raise InvalidInput(
            f"{label} has shape {tuple(labels.shape)}; expected ({count},), "
            "one class index per sample"
        )
    if count and labels.min() < 0:
        raise InvalidInput(f"{label} holds negative class indices")
    return labels.astype(np.int64)


def generated(inputs: Sequence[IOSpec], count: int = GENERATED_SAMPLES, seed: int = 0) -> Dataset:
    """Deterministic inputs in [0, 1) for a parity check when no data is given.

    Free dimensions other than the batch become 1.
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in inputs:
        shape = (count, *(1 if d is None else d for d in spec.shape[1:]))
        if spec.dtype.kind == "f":
            feeds[spec.name] = rng.random(shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            feeds[spec.name] = rng.random(shape) < 0.5
        else:
            feeds[spec.name] = np.zeros(shape, spec.dtype)
    return Dataset(feeds)
