"""Alias history: one append-only record per move, written from the alias document
that carries it, so a failed append is repaired later; rollback replays it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from maas.documents import AliasDoc, HistoryRecord, decode, encode
from maas.errors import PreconditionFailed
from maas.names import check_name
from maas.registry.tags import Tags


class History(Tags):
    @staticmethod
    def history_prefix(name: str) -> str:
        return f"models/{check_name(name)}/history/"

    def history(self, name: str, alias: str | None = None) -> list[HistoryRecord]:
        """Alias moves, oldest first (keys sort by time)."""
        prefix = self.history_prefix(name)
        records: list[HistoryRecord] = []
        for key in self.store.list_keys(prefix):
            record: HistoryRecord = decode("history", self.store.get(key).data, key)
            if alias is None or record["alias"] == alias:
                records.append(record)
        return records

    # -------------------------------------------------------------- aliases

    def rolled_back_from(self, name: str, alias: str) -> set[int]:
        """Versions this alias was rolled back away from."""
        return {
            r["from"]
            for r in self.history(name, alias)
            if r.get("action") == "rollback" and r["from"] is not None
        }

    def _alias_stack(self, name: str, alias: str) -> list[int]:
        stack: list[int] = []
        for record in self.history(name, alias):
            if record.get("action") == "delete":
                stack = []  # a later alias of that name starts a new life
            elif record.get("action") == "rollback":
                if stack:
                    stack.pop()
            elif not stack or stack[-1] != record["to"]:
                stack.append(record["to"])
        return stack

    def _move(
        self,
        name: str,
        alias: str,
        before: AliasDoc | None,
        after: AliasDoc,
        action: str,
        reason: str | None,
    ) -> dict[str, Any]:
        """What the history record of this move needs beyond the document itself.

        It travels inside the alias document, written in the same compare-and-swap,
        so a failure before the record is appended loses nothing: :meth:`_repair`
        writes it from the document later.
        """
        # The move's time is the alias document's, stamped before its compare-and-swap:
        # a clock read after the write could order two racing moves backwards.
        moved_at = datetime.fromisoformat(after["updated_at"].replace("Z", "+00:00"))
        stamp = moved_at.strftime("%Y%m%dT%H%M%S.%fZ")
        return {
            "from": before["version"] if before else None,
            "action": action,
            "by": self.actor,
            "reason": reason,
            "record": f"{self.history_prefix(name)}{stamp}-{alias}-{uuid.uuid4().hex[:12]}.json",
        }

    def _repair(self, name: str, document: AliasDoc) -> bool:
        """Append the history record of the move that wrote ``document``, if it is
        missing; True when it had to be written. Documents from before moves
        carried their record have nothing to repair."""
        move = document.get("move")
        if not move or self.store.head(move["record"]) is not None:
            return False
        return self._append(document)

    def _append(self, document: AliasDoc) -> bool:
        """Write the history record a document carries; False when it already exists."""
        move = document["move"]
        record: HistoryRecord = {
            "alias": document["alias"],
            "from": move["from"],
            "to": None if document.get("deleted") else document["version"],
            "canary": document["canary"],
            "at": document["updated_at"],
            "by": move["by"],
            "reason": move["reason"],
            "action": move["action"],
        }
        if move.get("forced"):
            record["forced"] = True
        try:
            self.store.put(move["record"], encode("history", record), if_none_match=True)
        except PreconditionFailed:
            return False  # a concurrent repair wrote it
        return True
