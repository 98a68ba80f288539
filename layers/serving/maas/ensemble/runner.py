"""Members run together and combined, outside serving: what creation computes the
golden samples with and what the deployer reproduces them with."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from maas.ensemble.combine import Combiner, combine
from maas.ensemble.members import Member
from maas.model_info import TensorSpec
from maas.model_probes import random_feed
from maas.registry import Registry
from maas.serving.runtime import LoadedModel

#: Golden samples an ensemble is created with, and the tolerance they are checked to:
#: the members' own runtime reproduces them, so only float rounding may differ.
GOLDEN_SAMPLES = 3
GOLDEN_ATOL = 1e-5

Array = np.ndarray[Any, Any]


class RunsFeed(Protocol):
    def run(self, feed: Mapping[str, Array], outputs: Sequence[str]) -> list[Array]: ...


class CombinedSession:
    """The members behind one ``run(output_names, feed)``, called as an onnxruntime
    session is, so the golden-sample probe checks an ensemble as it checks a model."""

    def __init__(self, members: Sequence[RunsFeed], weights: Sequence[float], combiner: Combiner):
        self.members = list(members)
        self.weights = list(weights)
        self.combiner = combiner

    def run(self, names: Sequence[str] | None, feed: Mapping[str, Array]) -> list[Array]:
        wanted = list(names or [])
        answers = [member.run(feed, wanted) for member in self.members]
        return combine(self.combiner, self.weights, answers)


def load_members(registry: Registry, members: Sequence[Member]) -> list[LoadedModel]:
    """Each member's session from the registry's own bytes (sha256 checked on download)."""
    loaded = []
    with tempfile.TemporaryDirectory(prefix="maas-ensemble-") as scratch:
        for index, member in enumerate(members):
            path = Path(scratch) / f"{index}.onnx"
            manifest = registry.fetch_model(member.name, member.version, path)
            loaded.append(LoadedModel.load(member.name, member.version, manifest, path))
    return loaded


def golden_samples(
    session: CombinedSession, signature: Mapping[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Random in-range inputs (batch 1) and what the combined members answer."""
    inputs = [TensorSpec.from_json(spec) for spec in signature["inputs"]]
    names = [spec["name"] for spec in signature["outputs"]]
    samples = []
    for seed in range(GOLDEN_SAMPLES):
        feed = random_feed(inputs, seed)
        produced = session.run(names, feed)
        samples.append(
            {
                "inputs": {k: _sample_tensor(v) for k, v in feed.items()},
                "outputs": dict(zip(names, map(_sample_tensor, produced), strict=True)),
                "atol": GOLDEN_ATOL,
            }
        )
    return samples


def _sample_tensor(array: Array) -> dict[str, Any]:
    return {"shape": [int(d) for d in array.shape], "data": array.reshape(-1).tolist()}
