"""The serving core: resolve a model reference, get it loaded, validate, run.

Independent of HTTP: protocol adapters build an :class:`InferenceRequest` and
render the :class:`InferenceResult`. Nothing is loaded at import or
construction; :meth:`DataPlane.preload` loads ``MAAS_PRELOAD`` explicitly.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maas import metrics
from maas.config import ServingConfig
from maas.documents import manifest_kind
from maas.drift.monitor import DriftMonitor
from maas.errors import AliasNotFound, NotReady, StoreUnavailable
from maas.names import ModelRef, check_alias, check_name
from maas.registry import Registry, alias_not_found
from maas.serving.alias_cache import AliasCache
from maas.serving.ensemble import ENSEMBLE_PLATFORM, EnsembleModel, Ensembles, Runnable
from maas.serving.model_cache import ModelCache
from maas.serving.request_checks import select_outputs, validate_inputs
from maas.serving.runtime import LoadedModel, session_options
from maas.serving.statistics import InferenceStatistics, Timing
from maas.store import open_store
from maas.tensors import InferenceRequest, InferenceResult, Tensor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    model: Runnable  # one session, or an ensemble of them
    version: int  # the version that answers (may differ from the resolved one during a move)
    was_loaded: bool


@dataclass(frozen=True)
class Resolved:
    name: str
    version: int
    alias: str | None  # the alias that led here, if any


class DataPlane:
    def __init__(
        self,
        config: ServingConfig,
        registry: Registry | None = None,
        telemetry: metrics.Telemetry | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.registry = registry or Registry(open_store(config.registry_url))
        self.telemetry = telemetry or metrics.Telemetry()
        # A private generator: canary splits must not depend on (or disturb)
        # anyone else's use of the global one; SnapStart reseeds it on restore.
        self.rng = rng or random.Random()
        self.aliases = AliasCache(self.registry, config.alias_ttl_seconds, self.telemetry, clock)
        self.models = ModelCache(
            self.registry,
            config.cache_dir,
            config.cache_bytes,
            self.telemetry,
            loader=functools.partial(LoadedModel.load, run_timeout_ms=config.run_timeout_ms),
        )
        self.ensembles = Ensembles(self.models, self.aliases)
        #: What this execution environment has answered (Triton's statistics).
        self.statistics = InferenceStatistics()
        # Through self.telemetry at emit time: `maas serve` swaps in per-thread telemetry.
        self.drift = (
            DriftMonitor(config.drift_window, lambda *scores: self.telemetry.drift(*scores))
            if config.drift
            else None
        )
        self._serving: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> DataPlane:
        return cls(ServingConfig.from_env())

    def warm_up(self) -> None:
        """At init, what every first request would otherwise pay for: onnxruntime's
        import (and its session options) and the S3 client. Under SnapStart and
        provisioned concurrency both are then part of the initialised environment."""
        session_options()
        self.registry.connect()

    def after_restore(self) -> None:
        """Called after a SnapStart restore: fresh randomness, a fresh S3 client
        (the snapshot's connections and credentials are not this environment's),
        built here, before the first request."""
        import os

        self.rng.seed(int.from_bytes(os.urandom(16), "little"))
        self.registry.reconnect()
        self.registry.connect()

    # ---------------------------------------------------------- resolution
    def resolve(self, name: str, version: int | None = None, alias: str | None = None) -> Resolved:
        """Which version answers. A version is exact; an alias (or, for a bare name,
        the default alias) goes through its document and its canary split."""
        check_name(name)
        if version is not None:
            self.models.manifest(name, version)  # NotFound for an unknown version
            return Resolved(name, version, None)
        chosen_alias, document = self._alias(name, alias)
        target = document["version"]
        canary = document.get("canary")
        if canary and self.rng.random() < canary["weight"]:
            target = canary["version"]
        return Resolved(name, target, chosen_alias)

    def model(self, resolved: Resolved) -> tuple[Runnable, int, bool]:
        """The loaded model to answer with, its version, and whether it was already loaded.

        For an alias, a version that is not loaded yet is loaded in the
        background while the alias's current version keeps answering; requests
        switch once it is ready, so a move causes no cold start. With nothing
        loaded, the load happens in the request.
        """
        loaded = self.models.peek(resolved.name, resolved.version)
        if loaded is not None:
            self._remember(resolved, resolved.version)
            return loaded, resolved.version, True
        ensemble = self._ensemble(resolved.name, resolved.version)
        if ensemble is not None:
            return ensemble[0], resolved.version, ensemble[1]
        if resolved.alias is not None:
            with self._lock:
                current = self._serving.get((resolved.name, resolved.alias))
            fallback = self.models.peek(resolved.name, current) if current is not None else None
            if fallback is not None and current is not None:
                self.models.prefetch(
                    resolved.name,
                    resolved.version,
                    retry_after=max(self.config.alias_ttl_seconds, 1.0),
                )
                return fallback, current, True
        try:
            model = self.models.get(resolved.name, resolved.version)
        except StoreUnavailable as exc:
            raise NotReady(
                f"{resolved.name}:{resolved.version} is not loaded and the registry "
                f"is unavailable: {exc}"
            ) from exc
        self._remember(resolved, resolved.version)
        return model, resolved.version, False

    def _ensemble(self, name: str, version: int) -> tuple[EnsembleModel, bool] | None:
        """The ensemble ``name:version`` is, its members loaded (and whether they all
        were already); None for a model. A manifest the registry cannot give now is
        left to the model path, which knows how to answer without it."""
        try:
            manifest = self.models.manifest(name, version)
        except StoreUnavailable:
            return None
        if manifest_kind(manifest) != "ensemble":
            return None
        return self.ensembles.load(manifest)

    def _remember(self, resolved: Resolved, version: int) -> None:
        if resolved.alias is not None:
            with self._lock:
                self._serving[(resolved.name, resolved.alias)] = version

    # ----------------------------------------------------------- inference
    def select(self, name: str, version: int | None = None, alias: str | None = None) -> Selection:
        """Resolve and get loaded: the model that will answer this request."""
        model, answered_by, was_loaded = self.model(self.resolve(name, version, alias))
        return Selection(model, answered_by, was_loaded)

    def run(self, selection: Selection, request: InferenceRequest) -> InferenceResult:
        """Validate ``request`` against the selected model's signature and run it."""
        model = selection.model
        started = time.perf_counter_ns()
        try:
            feed = validate_inputs(
                request.inputs,
                model.inputs,
                max_batch=self.config.max_batch,
                nan_policy=self.config.nan_policy,
            )
            wanted = select_outputs(request.outputs, model.outputs)
            validated = time.perf_counter_ns()
            arrays = model.run(feed, wanted)
            ran = time.perf_counter_ns()
            datatypes = {spec["name"]: spec["datatype"] for spec in model.outputs}
            outputs = [
                Tensor(out, datatypes[out], array)
                for out, array in zip(wanted, arrays, strict=True)
            ]
        except Exception:
            self.statistics.failed(model.name, selection.version, time.perf_counter_ns() - started)
            raise
        first = request.inputs[0].array
        rows = int(first.shape[0]) if first.ndim else 1
        timing = Timing(validated - started, ran - validated, time.perf_counter_ns() - ran)
        self.statistics.succeeded(model.name, selection.version, rows, timing)
        if self.drift is not None:
            self._observe_drift(model, selection.version, feed, wanted, arrays)
        self.telemetry.request(
            model.name,
            selection.version,
            timing.infer_ns / 1e6,
            rows,
            cache_hit=selection.was_loaded,
        )
        return InferenceResult(model.name, selection.version, outputs, request.id, model.parameters)

    def _observe_drift(
        self, model: Any, version: int, feed: Any, wanted: list[str], arrays: list[Any]
    ) -> None:
        assert self.drift is not None
        first = model.outputs[0]["name"] if model.outputs else None
        scores = [array for out, array in zip(wanted, arrays, strict=True) if out == first]
        try:
            self.drift.observe(model.name, version, model.manifest, feed, scores)
        except Exception:  # monitoring must never fail the answer it watches
            log.exception("drift statistics failed for %s:%s", model.name, version)

    def infer(
        self,
        name: str,
        request: InferenceRequest,
        version: int | None = None,
        alias: str | None = None,
    ) -> InferenceResult:
        return self.run(self.select(name, version, alias), request)

    # ------------------------------------------------------ metadata, health
    def metadata(
        self, name: str, version: int | None = None, alias: str | None = None
    ) -> dict[str, Any]:
        """Signature of the version a reference resolves to (without the canary split)."""
        resolved = self._resolve_main(name, version, alias)
        manifest = self.models.manifest(name, resolved)
        meta = {
            "name": name,
            "version": resolved,
            "versions": self.registry.list_versions(name),
            "inputs": manifest["inputs"],
            "outputs": manifest["outputs"],
            "manifest": manifest,
        }
        if manifest_kind(manifest) == "ensemble":
            members = self.ensembles.member_versions(manifest)
            meta["ensemble"] = {
                "platform": ENSEMBLE_PLATFORM,
                "members": [
                    {"name": member, "version": str(version), "ref": entry["ref"], "weight": weight}
                    for (member, version, weight), entry in zip(
                        members, manifest["members"], strict=True
                    )
                ],
                "combiner": manifest["combiner"],
            }
        return meta

    def ready(self, name: str, version: int | None = None, alias: str | None = None) -> int:
        """Load the referenced version if needed (a readiness probe also warms it)."""
        resolved = self._resolve_main(name, version, alias)
        try:
            if self._ensemble(name, resolved) is None:
                self.models.get(name, resolved)
        except StoreUnavailable as exc:
            raise NotReady(f"{name}:{resolved} cannot be loaded now: {exc}") from exc
        return resolved

    def _resolve_main(self, name: str, version: int | None, alias: str | None) -> int:
        check_name(name)
        if version is not None:
            self.models.manifest(name, version)
            return version
        return int(self._alias(name, alias)[1]["version"])

    def _alias(self, name: str, alias: str | None) -> tuple[str, dict[str, Any]]:
        """The alias a reference goes through (the default one for a bare name) and its
        document; never a fallback to the highest version."""
        chosen = check_alias(alias) if alias is not None else self.config.default_alias
        try:
            return chosen, self.aliases.get(name, chosen)
        except AliasNotFound as exc:
            if alias is None:
                raise alias_not_found(name, chosen, defaulted=True, existing=exc.existing) from None
            raise

    def server_ready(self) -> tuple[bool, str | None]:
        """Ready when a model is loaded or the registry answers."""
        if self.models.loaded():
            return True, None
        try:
            self.registry.check_readable()
        except StoreUnavailable as exc:
            return False, str(exc)
        return True, None

    def preload(self, refs: tuple[ModelRef, ...] | None = None) -> list[tuple[str, int]]:
        """Load ``MAAS_PRELOAD`` models now (for provisioned concurrency or SnapStart)."""
        loaded = []
        for ref in self.config.preload if refs is None else refs:
            resolved = self.ready(ref.name, ref.version, ref.alias)
            loaded.append((ref.name, resolved))
            log.info("preloaded %s as %s:%s", ref, ref.name, resolved)
        return loaded
