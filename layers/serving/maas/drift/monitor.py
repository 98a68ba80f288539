"""Drift while serving: bin counts per (model, version) on the request path, PSI only at
window boundaries.

Per request this costs one vectorised count (a comparison against the padded
edges and a ``bincount``) under a lock; every ``MAAS_DRIFT_WINDOW`` rows the
window's PSI goes out as one EMF record with the model and version dimensions
(``DriftPSI``, ``DriftPSIMean``, ``DriftedFeatures``, ``PredictionDriftPSI``) and
a new window starts. Counts are per execution environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maas.drift.reference import Binning, DriftScores, feature_matrix, score

Emit = Callable[[str, int, DriftScores], None]


@dataclass
class _Window:
    reference: Mapping[str, Any]
    binning: Binning
    counts: np.ndarray
    prediction: np.ndarray | None
    inputs: Sequence[Mapping[str, Any]]
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.counts[:] = 0
        if self.prediction is not None:
            self.prediction[:] = 0
        self.rows = 0


class DriftMonitor:
    def __init__(self, window_rows: int, emit: Emit) -> None:
        self.window_rows = window_rows
        self.emit = emit
        self._windows: dict[tuple[str, int], _Window | None] = {}
        self._lock = threading.Lock()

    def _window(self, name: str, version: int, manifest: Mapping[str, Any]) -> _Window | None:
        key = (name, version)
        if key in self._windows:
            return self._windows[key]
        reference = (manifest.get("monitoring") or {}).get("reference")
        built = None
        if reference is not None:
            binning = Binning.of(reference)
            prediction = reference.get("prediction")
            built = _Window(
                reference,
                binning,
                np.zeros((len(binning.bins), binning.max_bins), np.int64),
                None if prediction is None else np.zeros(len(prediction["proportions"]), np.int64),
                manifest["inputs"],
            )
        with self._lock:
            return self._windows.setdefault(key, built)

    def observe(
        self,
        name: str,
        version: int,
        manifest: Mapping[str, Any],
        feeds: Mapping[str, np.ndarray],
        outputs: Sequence[np.ndarray],
    ) -> None:
        """Count one request's rows; at a window boundary, emit its scores."""
        window = self._window(name, version, manifest)
        if window is None:
            return  # a version without a reference is served as before
        features = feature_matrix(feeds, window.inputs)
        if features is None or not window.binning.accepts(features):
            return  # e.g. a dynamic feature dimension the reference was not built at
        counts = window.binning.counts(features)
        top1 = None
        if window.prediction is not None and outputs:
            scores = np.asarray(outputs[0])
            if scores.ndim == 2 and scores.shape[1] == len(window.prediction):
                top1 = np.bincount(scores.argmax(axis=1), minlength=len(window.prediction))
        finished = None
        with window.lock:
            window.counts += counts
            if top1 is not None and window.prediction is not None:
                window.prediction += top1
            window.rows += len(features)
            if window.rows >= self.window_rows:
                finished = score(
                    window.reference,
                    window.binning,
                    window.counts.copy(),
                    window.rows,
                    None if window.prediction is None else window.prediction.copy(),
                )
                window.reset()
        if finished is not None:
            self.emit(name, version, finished)
