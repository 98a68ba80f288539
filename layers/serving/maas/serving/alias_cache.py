"""Alias documents as the serving core sees them: cached, refreshed by conditional GET.

An alias is re-read at most every ``ttl`` seconds, with ``If-None-Match`` on
its ETag, so an unchanged alias costs a 304 with no body. A missing alias is
remembered for the same TTL. When the registry fails during a refresh, the
last known document keeps being used (and counted as a stale serve) until a
refresh succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from maas import metrics
from maas.documents import AliasDoc
from maas.errors import NotFound, NotReady, StoreUnavailable
from maas.registry import Registry, alias_not_found

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    document: AliasDoc | None  # None: the alias does not exist, and `missing` says why
    etag: str | None
    checked_at: float
    stale: bool = False
    missing: Callable[[], NotFound] | None = None


class AliasCache:
    def __init__(
        self,
        registry: Registry,
        ttl_seconds: float,
        telemetry: metrics.Telemetry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.ttl = ttl_seconds
        self.telemetry = telemetry or metrics.Telemetry()
        self.clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def get(self, name: str, alias: str) -> AliasDoc:
        """The alias document, no older than the TTL; NotFound when the alias is missing."""
        key = (name, alias)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or now - entry.checked_at >= self.ttl:
            entry = self._refresh(key, entry, now)
        if entry.document is None:
            assert entry.missing is not None  # set whenever the document is
            raise entry.missing()
        if entry.stale:
            self.telemetry.stale_serve(name)
        return entry.document

    def _refresh(self, key: tuple[str, str], entry: _Entry | None, now: float) -> _Entry:
        name, alias = key
        try:
            if entry is not None and entry.etag is not None:
                changed = self.registry.read_alias_if_changed(name, alias, entry.etag)
                if changed is None:  # 304: unchanged, nothing to parse or reload
                    fresh = _Entry(entry.document, entry.etag, now)
                else:
                    fresh = _Entry(changed[0], changed[1], now)
            else:
                found = self.registry.read_alias(name, alias)
                if found is None:
                    fresh = _Entry(None, None, now, missing=self._why_missing(name, alias))
                else:
                    fresh = _Entry(found[0], found[1], now)
        except NotFound:  # deleted since the last read
            fresh = _Entry(None, None, now, missing=self._why_missing(name, alias))
        except StoreUnavailable as exc:
            if entry is None:
                raise NotReady(
                    f"cannot resolve {name}@{alias}: registry unavailable ({exc})"
                ) from exc
            # Keep serving what we know; try again after another TTL, not on every request.
            log.warning(
                "registry unavailable, serving %s@%s from a stale alias: %s", name, alias, exc
            )
            fresh = _Entry(entry.document, entry.etag, now, stale=True)
        with self._lock:
            self._entries[key] = fresh
        return fresh

    def _why_missing(self, name: str, alias: str) -> Callable[[], NotFound]:
        """A fresh error per raise (an exception instance carries its traceback)."""
        try:
            self.registry.require_model(name)
        except NotFound as exc:
            message = str(exc)
            return lambda: NotFound(message)
        existing = self.registry.alias_names(name)
        return lambda: alias_not_found(name, alias, existing=existing)
