"""Reference statistics and the population stability index (PSI), one implementation for
`maas convert`, `maas publish`, the serving path and `maas drift`.

* Features: the numeric inputs, each row flattened and concatenated in signature
  order (BYTES inputs are skipped). Inputs wider than ``MAX_FEATURES`` (images) are
  summarised by a fixed, seeded subset of ``SUMMARY_FEATURES`` of their features,
  whose indices the reference stores, so the manifest stays small.
* Bins: at most ``MAX_BINS`` per feature, on the reference's quantiles, with
  duplicate edges removed (a constant feature has one bin and never drifts).
* PSI: ``Σ (p - q)·ln(p / q)`` over bins, empty bins clipped to ``EPSILON``.
* Predictions: for classifier-shaped outputs (last dimension >= 2, rows summing to
  1), the distribution of the top-1 class; it shows prior shift that input PSI misses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EPSILON = 1e-4
MAX_BINS = 10
MAX_FEATURES = 1024
#: Wider inputs are watched on this many of their features, a fixed seeded subset:
#: 19 numbers a feature keeps 256 of them near 40 KB of JSON (1,024 would be 175 KB).
SUMMARY_FEATURES = 256
SUMMARY_SEED = 0
#: PSI above this marks a feature as drifted (the usual "significant" threshold).
DRIFTED_PSI = 0.25


def feature_matrix(
    feeds: Mapping[str, np.ndarray], inputs: Sequence[Mapping[str, Any]]
) -> np.ndarray | None:
    """Rows x features of the numeric inputs, in signature order; None when there are none."""
    parts = []
    for spec in inputs:
        if spec["datatype"] == "BYTES" or spec["name"] not in feeds:
            continue
        array = np.asarray(feeds[spec["name"]])
        rows = array.shape[0] if array.ndim else 1
        parts.append(array.reshape(rows, -1))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def is_classifier_output(scores: np.ndarray) -> bool:
    if scores.ndim != 2 or scores.shape[1] < 2 or scores.dtype.kind != "f" or not len(scores):
        return False
    return bool(np.allclose(scores.sum(axis=1), 1.0, atol=1e-3) and scores.min() >= -1e-6)


@dataclass
class Binning:
    """The reference's edges, padded into one matrix so rows are counted in one pass."""

    edges: np.ndarray  # features x (max bins - 1), padded with +inf
    bins: np.ndarray  # bins per feature
    indices: np.ndarray | None  # the summary's feature indices, when the input is wide
    offsets: np.ndarray  # each feature's first slot in the flattened counts
    expected: np.ndarray | None = None  # the reference proportions, padded with zeros

    @classmethod
    def of(cls, reference: Mapping[str, Any]) -> Binning:
        edges = reference["features"]["edges"]
        width = max((len(e) for e in edges), default=0)
        padded = np.full((len(edges), max(width, 1)), np.inf)
        for i, row in enumerate(edges):
            padded[i, : len(row)] = row
        summary = reference.get("summary")
        indices = np.asarray(summary["indices"]) if summary else None
        offsets = np.arange(len(edges)) * (padded.shape[1] + 1)
        expected = None
        proportions = reference["features"].get("proportions")
        if proportions is not None:
            # Padded bins hold 0 on both sides: clipped alike, they add nothing to PSI.
            expected = np.zeros((len(edges), padded.shape[1] + 1))
            for i, row in enumerate(proportions):
                expected[i, : len(row)] = row
        return cls(padded, np.asarray([len(e) + 1 for e in edges]), indices, offsets, expected)

    def accepts(self, features: np.ndarray) -> bool:
        """Whether rows of this width are what the reference was built on."""
        if self.indices is None:
            return features.ndim == 2 and features.shape[1] == len(self.offsets)
        return features.ndim == 2 and features.shape[1] > int(self.indices.max())

    @property
    def max_bins(self) -> int:
        return int(self.edges.shape[1] + 1)

    def counts(self, features: np.ndarray) -> np.ndarray:
        """features x max_bins counts of ``features`` (rows x all features)."""
        x = features if self.indices is None else features[:, self.indices]
        bins = (x[:, :, None] >= self.edges).sum(axis=2)  # = searchsorted(side="right")
        total = len(self.offsets) * self.max_bins
        flat = (bins + self.offsets).ravel()
        return np.bincount(flat, minlength=total).reshape(len(self.offsets), self.max_bins)


def build_reference(
    features: np.ndarray, scores: np.ndarray | None, data_sha256: str | None
) -> dict[str, Any]:
    """``monitoring.reference`` for a version, from the rows it was trained or evaluated on."""
    summary = None
    every_feature = features
    if features.shape[1] > MAX_FEATURES:
        rng = np.random.default_rng(SUMMARY_SEED)
        indices = np.sort(rng.choice(features.shape[1], SUMMARY_FEATURES, replace=False))
        summary = {
            "kind": "seeded-subset",
            "seed": SUMMARY_SEED,
            "width": int(features.shape[1]),
            "indices": indices.tolist(),
        }
        features = features[:, indices]
    quantiles = np.linspace(0.0, 1.0, MAX_BINS + 1)[1:-1]
    edges = [
        []  # a constant feature: one bin, which every value falls in
        if column.min() == column.max()
        else [float(f"{e:.6g}") for e in np.unique(np.quantile(column, quantiles))]
        for column in features.T
    ]
    reference: dict[str, Any] = {
        "epsilon": EPSILON,
        "rows": int(features.shape[0]),
        "data_sha256": data_sha256,
        "features": {"edges": edges},
        "summary": summary,
        "prediction": None,
    }
    binning = Binning.of(reference)
    counts = binning.counts(every_feature)  # the summary's subset is taken there
    reference["features"]["proportions"] = [
        [round(float(c) / len(features), 6) for c in row[:bins]]
        for row, bins in zip(counts, binning.bins, strict=True)
    ]
    if scores is not None and is_classifier_output(scores):
        classes = scores.shape[1]
        top1 = np.bincount(scores.argmax(axis=1), minlength=classes) / len(scores)
        reference["prediction"] = {"proportions": [round(float(p), 6) for p in top1]}
    return reference


def psi(expected: np.ndarray, observed: np.ndarray, epsilon: float = EPSILON) -> float:
    p = np.clip(np.asarray(observed, np.float64), epsilon, None)
    q = np.clip(np.asarray(expected, np.float64), epsilon, None)
    return float(np.sum((p - q) * np.log(p / q)))


@dataclass(frozen=True)
class DriftScores:
    rows: int
    feature_psi: np.ndarray
    prediction_psi: float | None

    @property
    def psi_max(self) -> float:
        return float(self.feature_psi.max()) if self.feature_psi.size else 0.0

    @property
    def psi_mean(self) -> float:
        return float(self.feature_psi.mean()) if self.feature_psi.size else 0.0

    @property
    def drifted_features(self) -> int:
        return int((self.feature_psi > DRIFTED_PSI).sum())


def score(
    reference: Mapping[str, Any],
    binning: Binning,
    counts: np.ndarray,
    rows: int,
    prediction_counts: np.ndarray | None,
) -> DriftScores:
    """PSI per feature (and of the top-1 distribution) of ``counts`` against the reference."""
    epsilon = float(reference.get("epsilon", EPSILON))
    assert binning.expected is not None  # a reference always has its proportions
    observed = np.clip(counts / max(rows, 1), epsilon, None)
    expected = np.clip(binning.expected, epsilon, None)
    per_feature = np.sum((observed - expected) * np.log(observed / expected), axis=1)
    prediction = reference.get("prediction")
    prediction_psi = None
    if prediction is not None and prediction_counts is not None:
        total = max(int(prediction_counts.sum()), 1)
        prediction_psi = psi(
            np.asarray(prediction["proportions"]), prediction_counts / total, epsilon
        )
    return DriftScores(rows, per_feature, prediction_psi)
