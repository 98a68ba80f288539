"""What a conversion source is: its kind, its signature and its reference outputs.

A :class:`Source` knows its signature (with the names its ONNX conversion will
carry) and computes reference outputs, the ground truth every variant is
checked against. Loading one is :mod:`.sources`' job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

SourceKind = Literal["keras", "savedmodel", "tflite", "onnx"]

#: The training settings file that ``maas train-example`` writes beside its model.
TRAINING_FILE = "training.json"

#: The framework recorded in the manifest, per kind of source.
FRAMEWORKS: dict[SourceKind, str] = {
    "keras": "keras",
    "savedmodel": "tensorflow-savedmodel",
    "tflite": "tflite",
    "onnx": "onnx",
}

#: Samples per reference call: small enough for any model, large enough to be quick.
REFERENCE_BATCH = 256

SUFFIXES: dict[str, SourceKind] = {
    ".keras": "keras",
    ".h5": "keras",
    ".tflite": "tflite",
    ".onnx": "onnx",
}
SUPPORTED_FORMATS = ".keras, a SavedModel directory, .tflite or .onnx"

#: onnxruntime type strings → numpy dtypes, for ONNX sources.
ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class IOSpec:
    """One input or output: its ONNX name, the name in the source, shape (None = free), dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]
    source_name: str = ""

    def shape_text(self) -> str:
        dims = [
            "batch" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(self.shape)
        ]
        return f"({', '.join(dims)})"


Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Source:
    """A loaded model and its reference-output function."""

    path: Path
    kind: SourceKind
    model: Any
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    sha256: str
    predict_batch: Predict = field(repr=False)
    #: A fixed batch size the source insists on (e.g. a .tflite with batch 1), else None.
    fixed_batch: int | None = None
    training: dict[str, Any] | None = None

    @property
    def framework(self) -> str:
        return FRAMEWORKS[self.kind]

    @property
    def labels(self) -> list[str] | None:
        """Class names recorded with the training settings, when they fit the first output."""
        names = (self.training or {}).get("labels")
        width = self.outputs[0].shape[-1] if self.outputs and self.outputs[0].shape else None
        if (
            isinstance(names, list)
            and all(isinstance(n, str) for n in names)
            and width is not None
            and len(names) == width
        ):
            return names
        return None

    def predict(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Reference outputs keyed by ONNX output name, computed in batches."""
        count = len(next(iter(feeds.values())))
        step = self.fixed_batch or REFERENCE_BATCH
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, count, step):
            chunk = {name: array[start : start + step] for name, array in feeds.items()}
            short = step - len(next(iter(chunk.values())))
            if self.fixed_batch and short:
                # A fixed-batch model takes exactly its batch: pad, then drop the padding.
                chunk = {
                    n: np.concatenate([a, np.repeat(a[-1:], short, axis=0)])
                    for n, a in chunk.items()
                }
            result = self.predict_batch(chunk)
            parts.append(
                {n: a[: step - short] if self.fixed_batch else a for n, a in result.items()}
            )
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


# ------------------------------------------------------------------ names

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def sanitize(name: str, fallback: str) -> str:
    """A name safe for ONNX and for a TensorFlow TensorSpec: ``serving_default_x:0`` →
    ``serving_default_x``, anything unusual → ``_``, never empty."""
    text = _UNSAFE.sub("_", re.sub(r":0$", "", name)).strip("_.-")
    return text or fallback


def unique(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        result.append(candidate)
    return result


def named_specs(
    raw: list[tuple[str, tuple[int | None, ...], Any]], prefix: str, taken: Iterable[str] = ()
) -> list[IOSpec]:
    taken = list(taken)
    names = unique([*taken, *(sanitize(n, f"{prefix}_{i}") for i, (n, _, _) in enumerate(raw))])
    return [
        IOSpec(new, tuple(shape), np.dtype(dtype), old)
        for new, (old, shape, dtype) in zip(names[len(taken) :], raw, strict=True)
    ]
