"""What a registry holds, summarised: `maas models list`, `GET /v2/models` (maas's
index) and `POST /v2/repository/index` (Triton's) are all built from here.

Each model costs two listings and one read per alias (the index reads the latest
manifest too); these are operator routes, not the request path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maas.registry import Registry


def model_entry(registry: Registry, name: str, *, with_versions: bool = False) -> dict[str, Any]:
    """``{"name", "latest_version", "aliases": {alias: version}}``, plus ``"canaries"``
    when an alias has one (only then, so the shape scripts read is unchanged), plus
    ``"versions"`` (ascending) and ``"kind"`` (of the latest version: ``"model"`` or
    ``"ensemble"``) when asked."""
    versions = registry.list_versions(name)
    aliases = registry.list_aliases(name)
    entry: dict[str, Any] = {
        "name": name,
        "latest_version": versions[-1] if versions else None,
        "aliases": {alias: doc["version"] for alias, doc in sorted(aliases.items())},
    }
    canaries = {alias: doc["canary"] for alias, doc in sorted(aliases.items()) if doc["canary"]}
    if canaries:
        entry["canaries"] = canaries
    if with_versions:
        entry["versions"] = versions
        entry["kind"] = registry.kind(name, versions[-1]) if versions else "model"
    return entry


def model_index(registry: Registry) -> dict[str, Any]:
    """``GET /v2/models`` (a maas extension): every model, its aliases and versions."""
    return {
        "models": [
            model_entry(registry, name, with_versions=True) for name in registry.list_models()
        ]
    }


def repository_index(registry: Registry) -> list[dict[str, Any]]:
    """Triton's ``POST /v2/repository/index``: one entry per committed version.

    Every committed version is READY in Triton's sense, that it can be inferred:
    maas loads it on first use, in whichever execution environment answers. So
    ``{"ready": true}`` filters nothing out.
    """
    return [
        {"name": name, "version": str(version), "state": "READY", "reason": ""}
        for name in registry.list_models()
        for version in registry.list_versions(name)
    ]
