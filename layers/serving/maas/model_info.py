"""What maas knows of a model file: its bytes' digest, its signature, and what
loading it cost. Plain data, shared by inspection, the bounded child and probes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def file_sha256(path: Path) -> tuple[str, int]:
    """Streamed sha256 and size, so a large model is never held twice in memory."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TensorSpec:
        return cls(document["name"], document["datatype"], list(document["shape"]))


@dataclass(frozen=True)
class ResourceUse:
    """What loading and running a model cost, measured in the verification child.

    ``peak_rss_bytes`` is the child's whole peak (interpreter and libraries
    included); ``footprint_bytes`` is the part the model's session added (its
    peak during load and runs over the resident size just before loading):
    the figure a model cache should budget by.
    """

    peak_rss_bytes: int
    footprint_bytes: int
    load_seconds: float
    wall_seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "peak_rss_bytes": self.peak_rss_bytes,
            "footprint_bytes": self.footprint_bytes,
            "load_seconds": round(self.load_seconds, 6),
            "wall_seconds": round(self.wall_seconds, 6),
        }


@dataclass(frozen=True)
class OnnxInfo:
    sha256: str
    size: int
    opset: int | None
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    producer: str = ""
    #: Set by the bounded inspection: it loaded and ran the model at this cost.
    cost: ResourceUse | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "opset": self.opset,
            "inputs": [s.as_json() for s in self.inputs],
            "outputs": [s.as_json() for s in self.outputs],
            "producer": self.producer,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any], cost: ResourceUse | None = None) -> OnnxInfo:
        return cls(
            document["sha256"],
            document["size"],
            document["opset"],
            [TensorSpec.from_json(s) for s in document["inputs"]],
            [TensorSpec.from_json(s) for s in document["outputs"]],
            document["producer"],
            cost,
        )
