"""The registry's JSON documents: manifests, alias documents, history records.

Each is validated against a JSON Schema (shipped in ``maas/schemas``) on every
write and every read, so a malformed document is refused at the boundary
instead of failing somewhere deep in serving. fastjsonschema compiles each
schema once into plain Python, which keeps validation cheap on the hot path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from maas.errors import IntegrityError, InvalidInput, MaasError

MANIFEST_SCHEMA = "maas.manifest/1"
DocumentKind = Literal["manifest", "alias", "history", "tags"]

Manifest = dict[str, Any]
AliasDoc = dict[str, Any]
HistoryRecord = dict[str, Any]
TagsDoc = dict[str, Any]

#: A manifest's ``kind``: a model with its ONNX bytes, or an ensemble of other versions.
ModelKind = Literal["model", "ensemble"]


def manifest_kind(manifest: Manifest) -> ModelKind:
    """``"ensemble"`` or ``"model"``; manifests written before ensembles existed are models."""
    return "ensemble" if manifest.get("kind") == "ensemble" else "model"


@cache
def _validator(kind: DocumentKind) -> Any:
    import fastjsonschema

    text = resources.files("maas").joinpath(f"schemas/{kind}.schema.json").read_text("utf-8")
    return fastjsonschema.compile(json.loads(text))


def validate(
    kind: DocumentKind, document: Any, error: type[MaasError] = InvalidInput, where: str = ""
) -> Any:
    """Return ``document`` if it matches the ``kind`` schema, else raise ``error``."""
    import fastjsonschema

    try:
        _validator(kind)(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        # fastjsonschema says "data.model.sha256 must match pattern ..."; name the document.
        detail = str(exc).replace("data.", "", 1).replace("data ", f"{kind} ", 1)
        raise error(f"malformed {kind}{' ' + where if where else ''}: {detail}") from exc
    return document


def encode(kind: DocumentKind, document: Any) -> bytes:
    """Validate then serialise; writing an invalid document is a bug or bad input."""
    validate(kind, document)
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode("utf-8")


def decode(kind: DocumentKind, data: bytes, where: str) -> Any:
    """Parse and validate a stored document; a bad one is an integrity failure."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"malformed {kind} {where}: not JSON ({exc})") from exc
    return validate(kind, document, IntegrityError, where)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime, micro: bool = False) -> str:
    """``2026-11-28T12:00:00Z`` (or with microseconds)."""
    text = moment.astimezone(UTC).isoformat(timespec="microseconds" if micro else "seconds")
    return text.replace("+00:00", "Z")
