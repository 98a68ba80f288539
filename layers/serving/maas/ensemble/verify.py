"""The deployer's verification of an ensemble manifest, before any alias moves to it.

It passes when the manifest matches the schema, its members exist, are models,
are not archived and agree on the signature the manifest declares, and its
golden samples reproduce from the member versions it was created with (named
in ``lineage.members`` with their sha256; the members as they resolve now when
a hand-written manifest has no lineage). The promotion policy is the models' own.
"""

from __future__ import annotations

import time
from typing import Any

from maas.documents import Manifest, validate
from maas.ensemble.members import (
    EnsembleRefused,
    Member,
    MemberSpec,
    parse_ref,
    resolve_members,
    shared_signature,
    specs_of,
)
from maas.ensemble.runner import CombinedSession, load_members
from maas.errors import IntegrityError, InvalidInput, NotFound, ServerFault
from maas.model_checks import Check, Verification
from maas.model_info import TensorSpec
from maas.model_probes import golden_probe, random_feed
from maas.registry import Registry
from maas.signature_guard import signature_difference


def verify_ensemble(registry: Registry, manifest: Manifest) -> Verification:
    """Every check, in order, stopping at the first failure; I/O trouble raises."""
    started = time.perf_counter()
    result = Verification()

    def done(check: Check) -> Verification:
        result.checks.append(check)
        result.seconds = time.perf_counter() - started
        return result

    try:
        validate("manifest", manifest)
    except InvalidInput as exc:
        return done(Check("schema", False, str(exc)))
    result.checks.append(Check("schema", True, "manifest matches maas.manifest/1"))
    try:
        members = resolve_members(registry, specs_of(manifest))
        signature = shared_signature(members, manifest["combiner"])
        difference = signature_difference(manifest, signature)
        if difference is not None:
            raise EnsembleRefused(
                f"the manifest declares a signature its members do not share: {difference}"
            )
        created_with = _created_with(registry, manifest, members)
    except EnsembleRefused as exc:
        return done(Check("members", False, str(exc)))
    shown = ", ".join(f"{m.name}:{m.version}" for m in created_with)
    result.checks.append(Check("members", True, f"{len(members)} models that agree ({shown})"))
    try:
        sessions = load_members(registry, created_with)
    except (IntegrityError, ServerFault) as exc:
        return done(Check("golden_samples", False, f"a member does not load: {exc}"))
    weights = [member.spec.weight for member in created_with]
    session = CombinedSession(sessions, weights, manifest["combiner"])
    samples = manifest["golden_samples"]
    if samples:
        datatypes = {t["name"]: t["datatype"] for t in manifest["inputs"]}
        return done(golden_probe(session, samples, datatypes))
    return done(_runs(session, manifest))


def _created_with(registry: Registry, manifest: Manifest, current: list[Member]) -> list[Member]:
    """The member versions ``lineage.members`` records, each as its sha256 says."""
    recorded: list[dict[str, Any]] | None = manifest["lineage"].get("members")
    if not recorded:
        return current
    if len(recorded) != len(current):
        raise EnsembleRefused(
            f"lineage.members lists {len(recorded)} members, the manifest {len(current)}"
        )
    members = []
    for entry, now in zip(recorded, current, strict=True):
        name, version = entry["name"], entry["version"]
        try:
            member_manifest = registry.get_manifest(name, version)
        except NotFound as exc:
            raise EnsembleRefused(
                f"member {name}:{version} (lineage) does not exist: {exc}"
            ) from None
        if member_manifest["model"]["sha256"] != entry.get("sha256"):
            raise EnsembleRefused(
                f"member {name}:{version} has sha256 {member_manifest['model']['sha256']}, "
                f"lineage says {entry.get('sha256')}"
            )
        spec = MemberSpec(parse_ref(entry.get("ref", f"{name}:{version}")), now.spec.weight)
        members.append(Member(spec, version, member_manifest))
    return members


def _runs(session: CombinedSession, manifest: Manifest) -> Check:
    inputs = [TensorSpec.from_json(spec) for spec in manifest["inputs"]]
    names = [spec["name"] for spec in manifest["outputs"]]
    try:
        session.run(names, random_feed(inputs, 0))
    except (InvalidInput, ServerFault) as exc:
        return Check("golden_samples", False, f"the members do not run together: {exc}")
    return Check("golden_samples", True, "none in the manifest; the members run together")
