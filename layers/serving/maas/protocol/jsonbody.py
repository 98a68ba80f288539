"""JSON request bodies in, JSON response bodies out.

One place decides how a malformed body is reported, so that a bad byte, a
non-object document or a nesting bomb is always a 400 naming the problem and
never a ``JSONDecodeError``, ``UnicodeDecodeError`` or ``RecursionError``.
"""

from __future__ import annotations

import json
from typing import Any

from maas.errors import InvalidInput


def parse_object(raw: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``raw``; ``what`` names the body in the error message.

    Bare ``NaN``/``Infinity`` tokens are accepted because Triton's and TF
    Serving's own clients send them for non-finite inputs.
    """
    if not raw or raw.isspace():
        raise InvalidInput(f"{what} is empty; expected a JSON object")
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not valid JSON: it is not UTF-8 text") from None
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{what} must be a JSON object, not {_json_type(document)}")
    return document


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON; ``allow_nan=False`` because the codecs never emit bare NaN."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
