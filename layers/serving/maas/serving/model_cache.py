"""Loaded models: a memory-budgeted LRU of sessions over a sha256-keyed file cache.

- ``cache_dir`` is private to the user: created 0700, and an existing one is
  refused at start-up unless the user owns it and nobody else may write to it
  (a shared ``/tmp`` lets anyone create ``/tmp/maas-models`` first and plant files).
- A version is downloaded once into ``cache_dir/{sha256}.onnx`` and verified;
  a file found there (even one left by an earlier process) is used only after
  its sha256 is verified again. The file is read once: the session is built
  from the very bytes whose sha256 matched, so a file swapped between the check
  and the load is never run.
- Concurrent first uses of one version share a single load (single flight).
- Sessions are evicted least-recently-used when the budget would be exceeded;
  a request still running on an evicted session finishes on it (it holds a
  reference), the next one reloads.
- A model whose footprint exceeds the whole budget is refused before download.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from maas import metrics
from maas.documents import Manifest
from maas.errors import IntegrityError, InvalidInput, MaasError, ModelTooLarge
from maas.registry import Registry
from maas.serving.runtime import LoadedModel, estimate_footprint

log = logging.getLogger(__name__)

Key = tuple[str, int]
Loader = Callable[[str, int, Manifest, bytes], LoadedModel]


def private_directory(path: Path) -> Path:
    """``path`` as a directory only this user can write to: created 0700 if missing,
    else refused (naming it) when it is a symlink, someone else's, or writable by
    group or others."""
    try:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=True)
        info = path.lstat()
    except OSError as exc:
        raise InvalidInput(
            f"cannot use model cache directory {path} (MAAS_CACHE_DIR): {exc.strerror or exc}"
        ) from None
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.geteuid():
        problem = f"is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):03o})"
    if problem is not None:
        raise InvalidInput(
            f"refusing model cache directory {path} (MAAS_CACHE_DIR): it {problem}; "
            "models are loaded from it, so it must be this user's alone (mode 0700)"
        )
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Keep the verified bytes for the next load (after an eviction); a failure to
    write only costs that load a download, so it is logged, not raised."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as exc:
        log.warning("could not keep %s in the model cache: %s", path.name, exc)
    finally:
        partial.unlink(missing_ok=True)


def verified(data: bytes, sha256: str, size: int) -> bool:
    return len(data) == size and hashlib.sha256(data).hexdigest() == sha256


class ModelCache:
    def __init__(
        self,
        registry: Registry,
        cache_dir: Path,
        budget_bytes: int,
        telemetry: metrics.Telemetry | None = None,
        loader: Loader = LoadedModel.load,
    ) -> None:
        self.registry = registry
        self.cache_dir = private_directory(cache_dir)
        self.budget_bytes = budget_bytes
        self.telemetry = telemetry or metrics.Telemetry()
        self._loader = loader
        self._lock = threading.Lock()
        self._models: OrderedDict[Key, LoadedModel] = OrderedDict()
        self._inflight: dict[Key, Future[LoadedModel]] = {}
        self._manifests: dict[Key, Manifest] = {}
        self._failed_prefetch: dict[Key, float] = {}

    # ----------------------------------------------------------------- reads
    def peek(self, name: str, version: int) -> LoadedModel | None:
        """The loaded model, marked as recently used, or ``None``; never loads."""
        with self._lock:
            model = self._models.get((name, version))
            if model is not None:
                self._models.move_to_end((name, version))
            return model

    def loaded(self) -> list[Key]:
        with self._lock:
            return list(self._models)

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(m.footprint for m in self._models.values())

    def manifest(self, name: str, version: int) -> Manifest:
        """Manifests are immutable, so each is read from the registry once."""
        key = (name, version)
        cached = self._manifests.get(key)
        if cached is None:
            cached = self.registry.get_manifest(name, version)
            self._manifests[key] = cached
        return cached

    # ----------------------------------------------------------------- loads
    def get(self, name: str, version: int) -> LoadedModel:
        """The loaded model, loading it (once, whatever the concurrency) if needed."""
        model = self.peek(name, version)
        if model is not None:
            return model
        return self._load_shared(name, version).result()

    def prefetch(self, name: str, version: int, retry_after: float) -> None:
        """Start loading in the background (no-op if loaded, loading, or recently failed)."""
        key = (name, version)
        with self._lock:
            if key in self._models or key in self._inflight:
                return
            failed_at = self._failed_prefetch.get(key)
            if failed_at is not None and time.monotonic() - failed_at < retry_after:
                return
        thread = threading.Thread(
            target=self._prefetch, args=key, daemon=True, name=f"maas-prefetch-{name}-{version}"
        )
        thread.start()

    def _prefetch(self, name: str, version: int) -> None:
        try:
            self._load_shared(name, version).result()
        except MaasError as exc:
            with self._lock:
                self._failed_prefetch[(name, version)] = time.monotonic()
            log.warning(
                "background load of %s:%s failed, still serving the previous version: %s",
                name,
                version,
                exc,
            )

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until no load is in flight (used by preload and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._inflight.values())
            if not pending:
                return
            for future in pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("model loads still in flight")
                with contextlib.suppress(MaasError):
                    future.result(remaining)

    def _load_shared(self, name: str, version: int) -> Future[LoadedModel]:
        key = (name, version)
        with self._lock:
            if key in self._models:
                done: Future[LoadedModel] = Future()
                done.set_result(self._models[key])
                return done
            future = self._inflight.get(key)
            if future is not None:
                return future
            future = Future()
            self._inflight[key] = future
        try:
            model = self._load(name, version)
        except BaseException as exc:
            future.set_exception(exc)
            with self._lock:
                del self._inflight[key]
            raise
        with self._lock:
            self._insert(key, model)
            del self._inflight[key]
            self._failed_prefetch.pop(key, None)
        future.set_result(model)
        return future

    def _measured_footprint(self, name: str, version: int) -> int | None:
        """What the deployer's bounded check measured the session to take (one GET
        per version loaded); None for versions verified before it measured."""
        record = self.registry.read_record(self.registry.deployment_key(name, version))
        resources = (record or {}).get("resources") or {}
        measured = resources.get("footprint_bytes")
        return int(measured) if isinstance(measured, int | float) else None

    def _load(self, name: str, version: int) -> LoadedModel:
        started = time.perf_counter()
        manifest = self.manifest(name, version)
        footprint = estimate_footprint(manifest, self._measured_footprint(name, version))
        if footprint > self.budget_bytes:
            raise ModelTooLarge(
                f"{name}:{version} needs about {footprint / 2**20:.1f} MB, more than the whole "
                f"model cache budget of {self.budget_bytes / 2**20:.1f} MB (MAAS_CACHE_MB); "
                "not loaded"
            )
        # The verified bytes themselves, so the file cannot change between check and load;
        # budgeted by what was measured, as the check above was.
        model = dataclasses.replace(
            self._loader(name, version, manifest, self._model_bytes(name, version, manifest)),
            footprint=footprint,
        )
        self.telemetry.model_loaded(name, version, (time.perf_counter() - started) * 1000)
        return model

    def _model_bytes(self, name: str, version: int, manifest: Manifest) -> bytes:
        """The model's bytes, read once from the cache file and verified in memory."""
        sha256, size = manifest["model"]["sha256"], manifest["model"]["size"]
        # Again at each load (they are rare): /tmp cleaners may have removed it since.
        path = private_directory(self.cache_dir) / f"{sha256}.onnx"
        with contextlib.suppress(FileNotFoundError):
            data = path.read_bytes()
            if verified(data, sha256, size):
                return data
            log.warning("cached file %s failed verification; downloading again", path)
            path.unlink(missing_ok=True)
        try:
            # One GET, verified in memory: what is loaded is what was checked.
            data = self.registry.read_model(name, version, manifest)
        except IntegrityError:
            self.telemetry.integrity_failure(name, version)
            raise
        self.telemetry.downloaded(name, version, size)
        _write_atomically(path, data)
        return data

    def _insert(self, key: Key, model: LoadedModel) -> None:
        """Add under the budget, evicting least-recently-used sessions. Caller holds the lock."""
        while self._models and (
            sum(m.footprint for m in self._models.values()) + model.footprint > self.budget_bytes
        ):
            evicted_key, evicted = self._models.popitem(last=False)
            self.telemetry.evicted(*evicted_key)
            log.info("evicted %s:%s from the model cache", *evicted_key)
            self._forget_file(evicted, keep=model)
        self._models[key] = model

    def _forget_file(self, evicted: LoadedModel, keep: LoadedModel) -> None:
        """Keep /tmp (512 MB by default on Lambda) from filling with evicted versions."""
        sha256 = evicted.manifest["model"]["sha256"]
        still_used = {m.manifest["model"]["sha256"] for m in (*self._models.values(), keep)}
        if sha256 not in still_used:
            (self.cache_dir / f"{sha256}.onnx").unlink(missing_ok=True)
