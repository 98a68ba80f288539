"""The model registry: immutable integer versions, aliases with their history, and
deployment records, over one :class:`~maas.store.Store`.

One job per module: :mod:`~maas.registry.versions` (key layout, reading,
publishing), :mod:`~maas.registry.aliases` (compare-and-swap moves, history,
rollback) and :mod:`~maas.registry.deployments` (records and raw uploads).
"""

from __future__ import annotations

from maas.registry.aliases import DEFAULT_ALIAS, Aliases, VersionArchived, alias_not_found
from maas.registry.deployments import Deployments
from maas.registry.versions import Published, default_actor, encode_json, version_number
from maas.store import open_store, registry_url

__all__ = [
    "DEFAULT_ALIAS",
    "Published",
    "Registry",
    "VersionArchived",
    "alias_not_found",
    "default_actor",
    "encode_json",
    "open_registry",
    "version_number",
]


class Registry(Aliases, Deployments):
    """Versions, manifests, aliases and deployment records of every model under one store."""


def open_registry(url: str | None = None, *, must_exist: bool = False) -> Registry:
    """The registry named by ``url``, else ``MAAS_REGISTRY``, else ``.maas/registry``.

    With ``must_exist``, a local path that is not a registry is :class:`NotFound`
    naming it, rather than looking like an empty one.
    """
    registry = Registry(open_store(registry_url(url)))
    if must_exist:
        registry.store.require_existing()
    return registry
