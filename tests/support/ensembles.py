"""Registries with ensemble members, and the combiners worked out by hand, for tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from maas.promotion import release
from maas.registry import Registry
from tests.support import onnx_models

#: Three digits members (seeds 0, 1, 2), each NAME:1 and NAME@production.
MEMBERS = ("digits-a", "digits-b", "digits-c")


def publish_members(registry: Registry, directory: Path) -> dict[str, Path]:
    paths = {}
    for seed, name in enumerate(MEMBERS):
        path = onnx_models.save(onnx_models.digits_mlp(seed=seed), directory / f"{name}.onnx")
        release(registry, path, name, alias="production")
        paths[name] = path
    return paths


def run_members(paths: Sequence[Path], x: np.ndarray) -> list[np.ndarray]:
    """Each member's probabilities, from an onnxruntime session of its own."""
    answers = []
    for path in paths:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        answers.append(np.asarray(session.run(["probabilities"], {"input": x})[0]))
    return answers


def mean_by_hand(answers: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    total = sum(weights)
    combined = np.zeros(answers[0].shape)
    for w, p in zip(weights, answers, strict=True):
        combined += w * p.astype(np.float64)
    return combined / total


def vote_by_hand(answers: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The issue's rule, row by row: weighted vote fractions; on a tie the tied class
    with the highest weighted mean probability gets +1e-4."""
    total = sum(weights)
    mean = mean_by_hand(answers, weights)
    rows, classes = answers[0].shape
    out = np.zeros((rows, classes))
    for row in range(rows):
        for w, p in zip(weights, answers, strict=True):
            out[row, int(np.argmax(p[row]))] += w / total
        top = out[row].max()
        tied = [c for c in range(classes) if abs(out[row, c] - top) < 1e-6]
        if len(tied) > 1:
            out[row, max(tied, key=lambda c: (mean[row, c], -c))] += 1e-4
    return out


def v2_body(x: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": list(x.shape),
                "data": x.reshape(-1).tolist(),
            }
        ]
    }


def digits_rows(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 8, 8), dtype=np.float32)
