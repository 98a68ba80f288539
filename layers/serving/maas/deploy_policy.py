"""The deploy policy: where a verified version's manifest asks its alias to go.

Pure decisions, applied inside the alias compare-and-swap:

- a version older than the alias's current target never moves it;
- nor does a version the alias was rolled back from (only an explicit
  `maas models alias` does that);
- a manifest with ``deploy.canary_weight`` sets the canary instead of moving
  the alias;
- a version the alias already serves changes nothing (S3 redelivers events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from maas.documents import AliasDoc, Manifest
from maas.registry import Registry

Status = Literal["succeeded", "failed", "skipped"]


class AliasPlan(TypedDict):
    version: int
    canary: dict[str, Any] | None
    previous: int | None


@dataclass(frozen=True)
class Skip:
    """The policy's refusal to move the alias to this version, and why."""

    reason: str


def plan_move(
    manifest: Manifest, current: AliasDoc | None, rolled_back_from: set[int]
) -> AliasPlan | Skip | None:
    """The alias the deploy policy asks for; ``None`` when the alias is already
    there, or a :class:`Skip` naming why this version must not move it."""
    alias = manifest["deploy"]["alias"]
    weight = manifest["deploy"]["canary_weight"]
    version = manifest["version"]
    if version in rolled_back_from:
        return Skip(
            f"{alias} was rolled back from version {version}; only an explicit "
            "`maas models alias` promotes it again"
        )
    if current is None:
        return {"version": version, "canary": None, "previous": None}
    if version < current["version"]:
        return Skip(
            f"version {version} is older than {alias}'s current version {current['version']}"
        )
    if weight is None:
        if version == current["version"] and current["canary"] is None:
            return None
        previous = current["previous"] if version == current["version"] else current["version"]
        return {"version": version, "canary": None, "previous": previous}
    if version == current["version"]:
        return Skip(f"version {version} is already {alias}'s main version; no canary to set")
    canary = {"version": version, "weight": weight}
    if current["canary"] == canary:
        return None
    return {"version": current["version"], "canary": canary, "previous": current["previous"]}


def apply_policy(
    registry: Registry, manifest: Manifest, reason: str, forced: bool = False
) -> tuple[Status, str, AliasDoc | None]:
    """Move the manifest's deploy alias as the policy says, by compare-and-swap."""
    name, version = manifest["name"], manifest["version"]
    alias = manifest["deploy"]["alias"]
    if alias is None:
        return "skipped", "verified; the manifest names no deploy alias", None
    rolled_back = registry.rolled_back_from(name, alias)
    decided: list[AliasPlan | Skip | None] = []

    def change(current: AliasDoc | None) -> AliasDoc | None:
        planned = plan_move(manifest, current, rolled_back)
        decided.append(planned)
        if planned is None or isinstance(planned, Skip):
            return None
        return registry.alias_document(
            alias, planned["version"], planned["canary"], planned["previous"]
        )

    document = registry.swap_alias(
        name, alias, change, action="move", reason=reason, forced=lambda: forced
    )
    final = decided[-1]  # the decision on the document the swap last read
    if isinstance(final, Skip):
        return "skipped", f"verified, not promoted: {final.reason}", None
    if document is None:
        return (
            "succeeded",
            f"{alias} already serves version {version}",
            registry.get_alias(name, alias),
        )
    if document["canary"] is not None and document["version"] != version:
        weight = manifest["deploy"]["canary_weight"]
        return "succeeded", f"{alias} canary -> {version} at weight {weight}", document
    return "succeeded", f"{alias} -> {version}", document
