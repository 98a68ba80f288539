"""``maas ensemble create``: an ensemble version, or with ``fuse`` one fused ONNX graph.

Everything is checked before anything is written: the members (see
:mod:`maas.ensemble.members`), their shared signature, the golden samples
computed from them, and, with an alias, that the alias's clients can call the
new version. An unfused ensemble is a manifest without bytes, committed like any
version and then deployed by the same policy; a fused one is an ordinary model
published through :func:`maas.promotion.release`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maas.ensemble.combine import Combiner
from maas.ensemble.members import (
    EnsembleRefused,
    Member,
    MemberSpec,
    resolve_members,
    shared_labels,
    shared_signature,
)
from maas.ensemble.runner import CombinedSession, golden_samples, load_members
from maas.names import check_writable_alias, check_writable_name
from maas.promotion import Release, deploy_version, release, signature_refusal
from maas.registry import Registry
from maas.signature_guard import SignatureMismatch

#: Fused and unfused ensembles agree to this, and a fused graph's golden samples say so.
FUSED_ATOL = 1e-6


def _lineage(members: Sequence[Member], combiner: Combiner) -> dict[str, Any]:
    return {
        "parent_version": None,
        "git_commit": None,
        "members": [member.lineage() for member in members],
        "combiner": combiner,
        "weights": [member.spec.weight for member in members],
    }


def _prepared(
    registry: Registry, name: str, specs: Sequence[MemberSpec], combiner: Combiner
) -> tuple[list[Member], dict[str, list[dict[str, Any]]], CombinedSession]:
    check_writable_name(name)
    members = resolve_members(registry, specs)
    signature = shared_signature(members, combiner)
    sessions = load_members(registry, members)
    weights = [spec.weight for spec in specs]
    return members, signature, CombinedSession(sessions, weights, combiner)


def create_ensemble(
    registry: Registry,
    name: str,
    specs: Sequence[MemberSpec],
    combiner: Combiner,
    *,
    alias: str | None = None,
    reason: str | None = None,
    force: bool = False,
    fuse: bool = False,
) -> Release:
    """Publish the next version of ``name`` as an ensemble of ``specs`` (with ``fuse``,
    as one fused graph); then, with an alias, deploy it by the same policy and
    verification as any version."""
    if alias is not None:
        check_writable_alias(alias)
    followed = [str(spec.ref) for spec in specs if spec.ref.version is None]
    if fuse and followed:
        raise EnsembleRefused(
            f"--fuse takes NAME:VERSION members only: a fused graph cannot follow an alias, "
            f"and {followed[0]} is one"
        )
    members, signature, session = _prepared(registry, name, specs, combiner)
    if fuse:
        with tempfile.TemporaryDirectory(prefix="maas-fuse-") as scratch:
            path, fused = _fused(registry, members, signature, session, Path(scratch))
            return release(
                registry, path, name, alias=alias, details=fused, reason=reason, force=force
            )
    details: dict[str, Any] = {
        "kind": "ensemble",
        "members": [spec.as_json() for spec in specs],
        "combiner": combiner,
        **signature,
        "metrics": {},
        "labels": shared_labels(members),
        "golden_samples": golden_samples(session, signature),
        "lineage": _lineage(members, combiner),
        "deploy": {"alias": alias, "canary_weight": None},
    }
    if alias is not None and not force:
        why = signature_refusal(registry, name, alias, details, "the new ensemble")
        if why is not None:
            raise SignatureMismatch(why)
    published = registry.publish_manifest(name, details)
    if alias is None:
        return Release(name, published.version, published.manifest)
    deployment = deploy_version(
        registry, name, published.version, reason=reason or "ensemble create", force=force
    )
    return Release(name, published.version, published.manifest, alias, deployment)


def _fused(
    registry: Registry,
    members: Sequence[Member],
    signature: dict[str, list[dict[str, Any]]],
    session: CombinedSession,
    scratch: Path,
) -> tuple[Path, dict[str, Any]]:
    """The members merged into one graph, with the details of a model whose lineage
    lists them and whose golden samples are the unfused ensemble's answers."""
    import onnx

    from maas.ensemble.fuse import fuse_models

    samples = golden_samples(session, signature)
    for sample in samples:
        sample["atol"] = FUSED_ATOL
    precisions = {member.manifest["precision"] for member in members}
    protos = []
    for index, member in enumerate(members):
        path = scratch / f"member-{index}.onnx"
        registry.fetch_model(member.name, member.version, path)
        protos.append(onnx.load(str(path)))
    fused = fuse_models(protos, session.weights, session.combiner, signature)
    target = scratch / "fused.onnx"
    onnx.save_model(fused, str(target))
    details = {
        "golden_samples": samples,
        "lineage": _lineage(members, session.combiner),
        "labels": shared_labels(members),
        "precision": precisions.pop() if len(precisions) == 1 else "fp32",
    }
    return target, details
