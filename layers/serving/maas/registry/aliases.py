"""Aliases: documents moved by compare-and-swap, their append-only history, rollback."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from maas.documents import AliasDoc, decode, encode, iso
from maas.errors import (
    AliasNotFound,
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
)
from maas.names import LATEST, ModelRef, check_alias, check_name, check_writable_alias
from maas.registry.history import History
from maas.signature_guard import SignatureMismatch, refusal

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "production"

#: Said when a bare model name finds no default alias: never "the highest version".
DEFAULT_ALIAS_HINT = (
    "the default alias for a bare model name; set MAAS_DEFAULT_ALIAS or name a version"
)


def alias_not_found(
    name: str, alias: str, *, defaulted: bool = False, existing: list[str] | None = None
) -> AliasNotFound:
    """The one wording of a missing alias; ``defaulted`` when the caller named none;
    ``existing`` lists (up to 10 of) the aliases the model does have."""
    hint = f" ({DEFAULT_ALIAS_HINT})" if defaulted else ""
    known = ""
    if existing is not None:
        known = f"; its aliases: {', '.join(existing[:10])}" if existing else "; it has no aliases"
        known += f" and {len(existing) - 10} more" if len(existing) > 10 else ""
    error = AliasNotFound(f"model {name!r} has no alias {alias!r}{hint}{known}", name, alias)
    error.existing = existing
    return error


class VersionArchived(InvalidInput):
    """An alias move whose target (or canary) is an archived version."""


class Aliases(History):
    """Alias documents and their history, beside the versions they point at."""

    @staticmethod
    def alias_key(name: str, alias: str) -> str:
        return f"models/{check_name(name)}/aliases/{check_alias(alias)}.json"

    def latest_version_unarchived(self, name: str) -> int | None:
        """What ``NAME:latest`` names: the highest committed version not archived."""
        for version in reversed(self.list_versions(name)):
            if not self.is_archived(name, version):
                return version
        return None

    def _latest(self, name: str) -> tuple[AliasDoc, str] | None:
        version = self.latest_version_unarchived(name)
        if version is None:
            return None
        document = {
            "alias": LATEST,
            "version": version,
            "canary": None,
            "previous": None,
            "updated_at": iso(self.clock(), micro=True),
        }
        return document, f'"latest-{version}"'

    def read_alias(self, name: str, alias: str) -> tuple[AliasDoc, str] | None:
        """The alias document and its ETag, or ``None`` when the alias does not exist.
        ``latest`` is computed, never stored."""
        if alias == LATEST:
            return self._latest(name)
        found = self._read_stored(name, alias)
        if found is None or found[0].get("deleted"):
            return None
        return found

    def _read_stored(self, name: str, alias: str) -> tuple[AliasDoc, str] | None:
        """The stored document, a deletion's tombstone included, and its ETag."""
        key = self.alias_key(name, alias)
        try:
            stored = self.store.get(key)
        except NotFound:
            return None
        return decode("alias", stored.data, key), stored.etag

    def read_alias_if_changed(
        self, name: str, alias: str, etag: str
    ) -> tuple[AliasDoc, str] | None:
        """A conditional read: ``None`` while the document still has ``etag`` (a 304);
        :class:`NotFound` once the alias is gone."""
        if alias == LATEST:
            latest = self._latest(name)
            if latest is None:
                raise NotFound(f"model {name!r} has no unarchived version")
            return None if latest[1] == etag else latest
        key = self.alias_key(name, alias)
        changed = self.store.get_if_changed(key, etag)
        if changed is None:
            return None
        document = decode("alias", changed.data, key)
        if document.get("deleted"):
            raise alias_not_found(name, alias)
        return document, changed.etag

    def alias_names(self, name: str) -> list[str]:
        """The model's live alias names (deleted ones are tombstones, not aliases)."""
        return sorted(self.list_aliases(name))

    def missing_alias(self, name: str, alias: str, *, defaulted: bool = False) -> AliasNotFound:
        """:class:`AliasNotFound` listing what the model has, or NotFound for the model."""
        self.require_model(name)
        return alias_not_found(name, alias, defaulted=defaulted, existing=self.alias_names(name))

    def get_alias(self, name: str, alias: str) -> AliasDoc:
        found = self.read_alias(name, alias)
        if found is None:
            raise self.missing_alias(name, alias)
        return found[0]

    def list_aliases(self, name: str) -> dict[str, AliasDoc]:
        prefix = f"models/{check_name(name)}/aliases/"
        aliases: dict[str, AliasDoc] = {}
        for key in self.store.list_keys(prefix):
            alias = key[len(prefix) :].removesuffix(".json")
            found = self.read_alias(name, alias) if key.endswith(".json") else None
            if found is not None:
                aliases[alias] = found[0]
        return aliases

    def resolve(
        self, ref: ModelRef, default_alias: str = DEFAULT_ALIAS
    ) -> tuple[int, AliasDoc | None]:
        """The version a reference names. A bare name goes through ``default_alias``;
        when that alias is missing this is NotFound, never "the highest version"."""
        if ref.version is not None:
            self.get_manifest(ref.name, ref.version)
            return ref.version, None
        alias = ref.alias or default_alias
        found = self.read_alias(ref.name, alias)
        if found is None:
            raise self.missing_alias(ref.name, alias, defaulted=ref.alias is None)
        return found[0]["version"], found[0]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        canary: int | None = None,
        weight: float | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> AliasDoc:
        """Point ``alias`` at ``version`` (optionally with a canary) by compare-and-swap.

        Setting an alias without a canary clears any canary. A version (or canary)
        whose signature its clients cannot call alike is :class:`SignatureMismatch`,
        unless ``force``; a forced move is recorded as such.
        """
        check_alias(alias)
        target = self.get_manifest(name, version)
        manifests = {version: target}
        canary_doc: dict[str, Any] | None = None
        if (canary is None) != (weight is None):
            raise InvalidInput("a canary needs both a version and a weight")
        if canary is not None and weight is not None:
            if not 0.0 < weight < 1.0:
                raise InvalidInput(f"canary weight {weight} must be strictly between 0 and 1")
            if canary == version:
                raise InvalidInput(f"canary version {canary} is the alias's own version")
            manifests[canary] = self.get_manifest(name, canary)
            canary_doc = {"version": canary, "weight": weight}
        overridden: list[str] = []

        def change(current: AliasDoc | None) -> AliasDoc:
            overridden.clear()
            served = None if current is None else current["version"]
            if served is not None and served not in manifests:
                manifests[served] = self.get_manifest(name, served)
            # The main version must match what the alias served; a canary, the main version.
            pairs: list[tuple[int, int]] = [] if served is None else [(served, version)]
            if canary is not None:
                pairs.append((version, canary))
            for before, after in pairs:
                if before == after:
                    continue
                why = refusal(name, alias, manifests[before], manifests[after])
                if why is not None and not force:
                    raise SignatureMismatch(why)
                if why is not None:
                    overridden.append(why)
            if current is None:
                previous = None
            elif current["version"] == version:
                previous = current["previous"]  # only the canary changes
            else:
                previous = current["version"]
            return self.alias_document(alias, version, canary_doc, previous)

        moved = self.swap_alias(
            name, alias, change, action="move", reason=reason, forced=lambda: bool(overridden)
        )
        assert moved is not None  # change() always returns a document
        return moved

    def rollback(
        self, name: str, alias: str = DEFAULT_ALIAS, reason: str | None = None
    ) -> AliasDoc:
        """Move ``alias`` back to its ``previous`` version and clear any canary.

        The new ``previous`` is the target before that one, found by replaying
        the alias's history as a stack (moves push, rollbacks pop), so repeated
        rollbacks walk back one step at a time.
        """
        check_alias(alias)

        def change(current: AliasDoc | None) -> AliasDoc:
            if current is None:
                self.require_model(name)
                raise AliasNotFound(
                    f"model {name!r} has no alias {alias!r} to roll back", name, alias
                )
            target = current["previous"]
            if target is None:
                raise NotFound(
                    f"alias {alias!r} of {name!r} has no previous version to roll back to"
                )
            stack = self._alias_stack(name, alias)
            if stack and stack[-1] == current["version"]:
                stack.pop()
            while stack and stack[-1] != target:
                stack.pop()
            previous = stack[-2] if len(stack) >= 2 else None
            return self.alias_document(alias, target, None, previous)

        moved = self.swap_alias(name, alias, change, action="rollback", reason=reason or "rollback")
        assert moved is not None  # change() always returns a document
        return moved

    def alias_document(
        self, alias: str, version: int, canary: dict[str, Any] | None, previous: int | None
    ) -> AliasDoc:
        return {
            "alias": alias,
            "version": version,
            "canary": canary,
            "previous": previous,
            "updated_at": iso(self.clock(), micro=True),
        }

    def swap_alias(
        self,
        name: str,
        alias: str,
        change: Callable[[AliasDoc | None], AliasDoc | None],
        *,
        action: str,
        reason: str | None,
        forced: Callable[[], bool] = lambda: False,
    ) -> AliasDoc | None:
        """Compare-and-swap the alias document to ``change(current)``, retrying on races.

        ``change`` sees the document as just read. It returns ``None`` to leave
        the alias as it is (then nothing is written and ``None`` is returned), or
        raises to abandon the move with an error.
        """
        check_writable_alias(alias)
        key = self.alias_key(name, alias)
        for attempt in range(self.cas_attempts):
            found = self._read_stored(name, alias)
            current, etag = found if found is not None else (None, None)
            if current is not None:
                self._repair(name, current)  # a deletion's record too
            if current is not None and current.get("deleted"):
                current = None  # deleted: the next move creates it anew, over its tombstone
            document = change(current)
            if document is None:
                return None
            self._refuse_archived(name, alias, current, document)
            move = self._move(name, alias, current, document, action, reason)
            if forced():  # a guard was overridden for this very document
                move["forced"] = True
            document = {**document, "move": move}
            try:
                if etag is None:
                    self.store.put(key, encode("alias", document), if_none_match=True)
                else:
                    self.store.put(key, encode("alias", document), if_match=etag)
            except PreconditionFailed:
                # Someone else moved it between our read and write: re-read and retry.
                time.sleep(random.uniform(0, min(0.2, 0.01 * (2**attempt))))
                continue
            try:
                self._append(document)
            except StoreUnavailable as exc:
                # The move itself is durable; its record waits in the document.
                log.warning(
                    "%s@%s moved, but its history record could not be written (%s); the "
                    "next move or `maas models history --repair` writes it",
                    name,
                    alias,
                    exc,
                )
            return document
        raise Conflict(
            f"alias {alias!r} of {name!r} kept changing under us; "
            f"gave up after {self.cas_attempts} compare-and-swap attempts"
        )

    def delete_alias(
        self, name: str, alias: str, *, protected: str | None = None, reason: str | None = None
    ) -> AliasDoc:
        """Delete ``alias`` by compare-and-swap; ``protected`` (the default alias) is refused.

        The document becomes a tombstone (S3 has no conditional delete that every
        store offers; a write keeps the compare-and-swap), recorded in the history
        as ``action: "delete"``, ``to: null``. Readers see no alias.
        """
        check_writable_alias(alias)
        if alias == protected:
            raise InvalidInput(
                f"{alias!r} is the default alias: requests for a bare {name!r} resolve through "
                "it; use --force to delete it anyway"
            )

        def change(current: AliasDoc | None) -> AliasDoc:
            if current is None:
                self.require_model(name)
                raise alias_not_found(name, alias)
            return {**current, "deleted": True, "updated_at": iso(self.clock(), micro=True)}

        deleted = self.swap_alias(name, alias, change, action="delete", reason=reason)
        assert deleted is not None  # change() always returns a document
        return deleted

    def _refuse_archived(
        self, name: str, alias: str, current: AliasDoc | None, document: AliasDoc
    ) -> None:
        """No alias moves to an archived version, nor sets one as its canary."""
        if document.get("deleted"):
            return
        # A version that keeps its role (the main version, or the canary) is no move
        # to it; a canary promoted to the main version is.
        current_canary = None if current is None or current["canary"] is None else current["canary"]
        moves = [(document["version"], None if current is None else current["version"])]
        if document["canary"] is not None:
            moves.append(
                (
                    document["canary"]["version"],
                    None if current_canary is None else current_canary["version"],
                )
            )
        for version, held in moves:
            if version != held and self.is_archived(name, version):
                raise VersionArchived(
                    f"{name}:{version} is archived: {name}@{alias} cannot move to it "
                    f"(`maas models archive {name}:{version} --undo` restores it)"
                )

    def repair_history(self, name: str) -> list[str]:
        """Write every alias's missing last history record (see :meth:`_repair`);
        the aliases repaired."""
        self.require_model(name)
        return [alias for alias, doc in self.list_aliases(name).items() if self._repair(name, doc)]
