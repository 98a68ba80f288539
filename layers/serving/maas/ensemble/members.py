"""An ensemble's members: parsed, resolved in the registry, and checked to agree.

``maas ensemble create`` and the deployer ask the same questions of the members,
and refuse with the same words: at least two; each ``NAME@ALIAS`` or
``NAME:VERSION`` that exists, is a model (not an ensemble) and is not archived;
one positive weight each; and one signature they all share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from maas.documents import Manifest, manifest_kind
from maas.errors import InvalidInput, NotFound
from maas.names import ModelRef
from maas.registry import Registry
from maas.signature_guard import signature_difference

#: The datatypes a combiner can average or vote over.
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})


class EnsembleRefused(InvalidInput):
    """An ensemble that cannot be built or served as asked (exit 2)."""


@dataclass(frozen=True)
class MemberSpec:
    """One ``members`` entry of an ensemble manifest."""

    ref: ModelRef
    weight: float

    def as_json(self) -> dict[str, Any]:
        return {"ref": str(self.ref), "weight": self.weight}


@dataclass(frozen=True)
class Member:
    """A member resolved to one committed version."""

    spec: MemberSpec
    version: int
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.spec.ref.name

    def lineage(self) -> dict[str, Any]:
        return {
            "ref": str(self.spec.ref),
            "name": self.name,
            "version": self.version,
            "sha256": self.manifest["model"]["sha256"],
        }


def parse_ref(text: str) -> ModelRef:
    ref = ModelRef.parse(text)
    if ref.version is None and ref.alias is None:
        raise EnsembleRefused(
            f"member {text!r} names no version: give NAME@ALIAS (followed) or NAME:VERSION"
        )
    return ref


def member_specs(refs: Sequence[str], weights: Sequence[float] | None = None) -> list[MemberSpec]:
    """Members from ``--member`` and ``--weight`` (every weight 1 when none is given)."""
    if len(refs) < 2:
        raise EnsembleRefused(f"an ensemble needs at least two members, got {len(refs)}")
    parsed = [parse_ref(text) for text in refs]
    if weights is None or len(weights) == 0:
        weights = [1.0] * len(parsed)
    if len(weights) != len(parsed):
        raise EnsembleRefused(
            f"{len(weights)} weight(s) for {len(parsed)} members: give one --weight per --member"
        )
    for ref, weight in zip(parsed, weights, strict=True):
        if not (math.isfinite(weight) and weight > 0):
            raise EnsembleRefused(f"member {ref} has weight {weight:g}: weights must be positive")
    return [MemberSpec(ref, float(w)) for ref, w in zip(parsed, weights, strict=True)]


def specs_of(manifest: Manifest) -> list[MemberSpec]:
    """The members an ensemble manifest lists."""
    refs = [entry["ref"] for entry in manifest["members"]]
    return member_specs(refs, [float(entry["weight"]) for entry in manifest["members"]])


def resolve_member(registry: Registry, spec: MemberSpec) -> Member:
    """The version ``spec`` names now: it must exist, be a model and not be archived."""
    try:
        version, _ = registry.resolve(spec.ref)
        manifest = registry.get_manifest(spec.ref.name, version)
    except NotFound as exc:
        raise EnsembleRefused(f"member {spec.ref} does not exist: {exc}") from None
    if manifest_kind(manifest) == "ensemble":
        raise EnsembleRefused(
            f"member {spec.ref} is {spec.ref.name}:{version}, itself an ensemble; "
            "members must be models"
        )
    if registry.is_archived(spec.ref.name, version):
        raise EnsembleRefused(
            f"member {spec.ref} is {spec.ref.name}:{version}, an archived version "
            f"(`maas models archive {spec.ref.name}:{version} --undo` restores it)"
        )
    return Member(spec, version, manifest)


def resolve_members(registry: Registry, specs: Sequence[MemberSpec]) -> list[Member]:
    return [resolve_member(registry, spec) for spec in specs]


def _merged_shape(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Two compatible shapes as one: a fixed dimension wins over a dynamic one."""
    return [y if x == -1 else x for x, y in zip(a, b, strict=True)]


def shared_signature(members: Sequence[Member], combiner: str) -> dict[str, list[dict[str, Any]]]:
    """The ``inputs`` and ``outputs`` every member accepts and produces, or the refusal
    naming the first difference."""
    first = members[0]
    signature = {
        side: [{k: t[k] for k in ("name", "datatype", "shape")} for t in first.manifest[side]]
        for side in ("inputs", "outputs")
    }
    for other in members[1:]:
        difference = signature_difference(first.manifest, other.manifest)
        if difference is not None:
            raise EnsembleRefused(
                f"members {first.spec.ref} and {other.spec.ref} do not agree: {difference}"
            )
        for side in ("inputs", "outputs"):
            for merged, theirs in zip(signature[side], other.manifest[side], strict=True):
                merged["shape"] = _merged_shape(merged["shape"], theirs["shape"])
    for output in signature["outputs"]:
        if output["datatype"] not in FLOAT_TYPES:
            raise EnsembleRefused(
                f"output {output['name']!r} is {output['datatype']}: a combiner needs "
                "probabilities (FP16, FP32 or FP64)"
            )
        if combiner == "vote" and (len(output["shape"]) != 2 or output["shape"][-1] < 2):
            raise EnsembleRefused(
                f"output {output['name']!r} has shape {output['shape']}: a vote needs "
                "[batch, classes] with a fixed number of classes"
            )
    return signature


def shared_labels(members: Sequence[Member]) -> list[str] | None:
    """The members' class labels when they all have the same ones."""
    labels = [member.manifest.get("labels") for member in members]
    return labels[0] if all(label == labels[0] for label in labels) else None


def ensembles_following(registry: Registry, name: str, alias: str) -> list[str]:
    """``ENSEMBLE:VERSION`` of every unarchived ensemble version with ``name@alias``
    as a member: deleting that alias would leave them unable to answer."""
    wanted = str(ModelRef(name, alias=alias))
    found = []
    for model in registry.list_models():
        for version in registry.list_versions(model):
            manifest = registry.get_manifest(model, version)
            if manifest_kind(manifest) != "ensemble":
                continue
            refs = {entry["ref"] for entry in manifest["members"]}
            if wanted in refs and not registry.is_archived(model, version):
                found.append(f"{model}:{version}")
    return found
