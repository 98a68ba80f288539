"""Serving an ensemble: its members resolved and loaded through the data plane's own
alias cache and model cache, then run together and combined.

- Members load lazily, each as any version does, into the same model cache under
  the same memory budget; an ensemble holds no session of its own.
- A ``NAME@ALIAS`` member follows its alias within the alias TTL, like any alias
  (its main version: a member's canary split is not applied inside an ensemble).
- A member that cannot be resolved or loaded is :class:`NotReady` (503) naming
  it; nothing else is affected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maas.documents import Manifest, manifest_kind
from maas.ensemble.combine import combine
from maas.errors import MaasError, NotReady
from maas.names import ModelRef
from maas.serving.alias_cache import AliasCache
from maas.serving.model_cache import ModelCache
from maas.serving.runtime import DeclaredSignature, LoadedModel

#: What ``GET /v2/models/{m}`` reports as an ensemble's platform.
ENSEMBLE_PLATFORM = "maas_ensemble"


@dataclass
class EnsembleModel(DeclaredSignature):
    """An ensemble version ready to answer: called exactly as a :class:`LoadedModel`."""

    name: str
    version: int
    manifest: Manifest
    members: list[LoadedModel]
    weights: list[float]
    footprint: int = field(default=0)  # the members are budgeted in the model cache

    @property
    def parameters(self) -> dict[str, Any]:
        """V2 response ``parameters``: the member versions that answered."""
        return {"members": [{"name": m.name, "version": str(m.version)} for m in self.members]}

    def run(
        self, feed: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str]
    ) -> list[np.ndarray[Any, Any]]:
        answers = [member.run(feed, outputs) for member in self.members]
        return combine(self.manifest["combiner"], self.weights, answers)


Runnable = LoadedModel | EnsembleModel


class Ensembles:
    """Resolves and loads ensembles' members for a data plane."""

    def __init__(self, models: ModelCache, aliases: AliasCache) -> None:
        self.models = models
        self.aliases = aliases

    def member_versions(self, manifest: Manifest) -> list[tuple[str, int, float]]:
        """``(name, version, weight)`` of each member as it resolves now."""
        resolved = []
        for entry in manifest["members"]:
            ref = ModelRef.parse(entry["ref"])
            try:
                if ref.version is not None:
                    version = ref.version
                else:
                    assert ref.alias is not None  # a stored member ref names one or the other
                    version = int(self.aliases.get(ref.name, ref.alias)["version"])
            except MaasError as exc:
                raise self._unavailable(manifest, str(ref), exc) from exc
            resolved.append((ref.name, version, float(entry["weight"])))
        return resolved

    def load(self, manifest: Manifest) -> tuple[EnsembleModel, bool]:
        """The ensemble with every member loaded, and whether all already were."""
        members, all_loaded = [], True
        for name, version, _ in self.member_versions(manifest):
            model = self.models.peek(name, version)
            if model is None:
                all_loaded = False
                try:
                    if manifest_kind(self.models.manifest(name, version)) == "ensemble":
                        raise NotReady(f"{name}:{version} is itself an ensemble")
                    model = self.models.get(name, version)
                except MaasError as exc:
                    raise self._unavailable(manifest, f"{name}:{version}", exc) from exc
            members.append(model)
        weights = [float(entry["weight"]) for entry in manifest["members"]]
        ensemble = EnsembleModel(manifest["name"], manifest["version"], manifest, members, weights)
        return ensemble, all_loaded

    @staticmethod
    def _unavailable(manifest: Manifest, member: str, exc: MaasError) -> NotReady:
        return NotReady(
            f"ensemble {manifest['name']}:{manifest['version']} cannot answer: its member "
            f"{member} cannot be loaded: {exc}"
        )
