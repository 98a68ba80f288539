"""Tags, a description and the archived flag of a version: mutable notes kept beside
the immutable manifest, outside the write-once ``versions/`` prefix, at
``models/{name}/tags/{v}.json``, changed by compare-and-swap."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

from maas.documents import TagsDoc, decode, encode, iso
from maas.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from maas.names import check_name
from maas.registry.versions import Versions


class Tags(Versions):
    @staticmethod
    def tags_key(name: str, version: int) -> str:
        return f"models/{check_name(name)}/tags/{version}.json"

    def read_tags(self, name: str, version: int) -> TagsDoc:
        """The version's notes; a version never tagged has none and is not archived."""
        key = self.tags_key(name, version)
        try:
            return decode("tags", self.store.get(key).data, key)  # type: ignore[no-any-return]
        except NotFound:
            return {
                "version": version,
                "tags": {},
                "description": None,
                "archived": False,
                "updated_at": None,
            }

    def is_archived(self, name: str, version: int) -> bool:
        return bool(self.read_tags(name, version)["archived"])

    def update_tags(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str] | None = None,
        remove: tuple[str, ...] = (),
        description: str | None = None,
        archived: bool | None = None,
    ) -> TagsDoc:
        """Merge ``tags`` in, drop ``remove``, set the description or the archived flag."""
        self.get_manifest(name, version)  # NotFound for a version that does not exist

        def change(current: TagsDoc) -> TagsDoc:
            merged = {**current["tags"], **(tags or {})}
            for key in remove:
                merged.pop(key, None)
            return {
                "version": version,
                "tags": merged,
                "description": current["description"] if description is None else description,
                "archived": current["archived"] if archived is None else archived,
                "updated_at": iso(self.clock(), micro=True),
            }

        return self._swap_tags(name, version, change)

    def _swap_tags(self, name: str, version: int, change: Callable[[TagsDoc], TagsDoc]) -> TagsDoc:
        key = self.tags_key(name, version)
        for attempt in range(self.cas_attempts):
            try:
                stored = self.store.get(key)
                current, etag = decode("tags", stored.data, key), stored.etag
            except NotFound:
                current, etag = self.read_tags(name, version), None
            document = change(current)
            try:
                body = encode("tags", document)
                if etag is None:
                    self.store.put(key, body, if_none_match=True)
                else:
                    self.store.put(key, body, if_match=etag)
            except PreconditionFailed:
                time.sleep(random.uniform(0, min(0.2, 0.01 * (2**attempt))))
                continue
            return document
        raise Conflict(f"the tags of {name}:{version} kept changing; gave up")


def parse_tag(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from the command line."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidInput(f"invalid tag {text!r}: give KEY=VALUE")
    return key, value
