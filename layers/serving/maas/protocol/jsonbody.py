"""JSON request bodies in, JSON response bodies out.

One place decides how a malformed body is reported, so that a bad byte, a
non-object document or a nesting bomb is always a 400 naming the problem and
never a ``JSONDecodeError``, ``UnicodeDecodeError`` or ``RecursionError``.

orjson parses and prints (about five times the standard library's speed on
numbers, and it prints numpy arrays without ``tolist``); the standard library
stays as the reference. A body orjson refuses is parsed again by ``json``, so
everything it accepts today is still accepted, and every malformed body gets
the message it got before: bare ``NaN``/``Infinity`` tokens, numbers beyond a
double (``1e400`` is ``inf``), lone surrogates, a byte-order mark, UTF-16/32
text, nesting over orjson's 1,024 levels. One difference is not a refusal:
orjson reads an integer outside [-2**63, 2**64) as a float where ``json`` keeps
it exact. Such a float is at least 2**63 in magnitude, so a document holding
one is parsed again by ``json``. Scanning the text for long digit runs costs
more than orjson's whole parse (``re`` takes 11 ms on a 1 MB body), so the
check walks the document instead, skipping lists of more than
:data:`_SHORT_LIST` numbers: those are tensor data, where numpy gives an
integer and that float the same outcome (the same value, or the same
``OverflowError`` for an integer datatype).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from maas.errors import InvalidInput

#: The smallest magnitude of a float orjson makes of an integer (below -2**63).
_HUGE = float(2**63)
#: Longer lists of numbers are tensor data (a shape has at most 64 dimensions).
_SHORT_LIST = 64
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def parse_object(raw: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``raw``; ``what`` names the body in the error message.

    Bare ``NaN``/``Infinity`` tokens are accepted because Triton's and TF
    Serving's own clients send them for non-finite inputs.
    """
    if not raw or raw.isspace():
        raise InvalidInput(f"{what} is empty; expected a JSON object")
    document = _fast_parse(raw)
    if document is _REPARSE:
        document = _stdlib_parse(raw, what)
    if not isinstance(document, dict):
        raise InvalidInput(f"{what} must be a JSON object, not {_json_type(document)}")
    return document


_REPARSE = object()


def _fast_parse(raw: bytes) -> Any:
    """orjson's reading of ``raw``, or ``_REPARSE`` when the standard library must decide
    (it accepts more, and words the refusal)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _REPARSE
    return _REPARSE if _may_hold_a_wide_integer(document) else document


def _may_hold_a_wide_integer(document: Any) -> bool:
    stack = [document]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if abs(item) >= _HUGE:
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list and item:
            if type(item[0]) in (float, int):
                if len(item) > _SHORT_LIST:
                    continue
                try:  # numbers only: min and max answer in C
                    wide = max(item) >= _HUGE or min(item) <= -_HUGE
                except TypeError:  # mixed with other values: look at each
                    stack.extend(item)
                    continue
                if wide:
                    return True
                continue
            stack.extend(item)
    return False


def _stdlib_parse(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
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


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON; numpy arrays are written as nested lists.

    The codecs never put a non-finite float in a document (they write the
    strings ``"NaN"``...; see :mod:`maas.protocol.values`). What orjson cannot
    print (an integer beyond 64 bits, a non-string key) the standard library
    prints as it always did.
    """
    try:
        return orjson.dumps(document, option=_NUMPY)
    except orjson.JSONEncodeError:
        return json.dumps(
            document, separators=(",", ":"), allow_nan=False, default=_as_list
        ).encode("utf-8")


def dumps_text(document: Any) -> str:
    """:func:`dumps` as text: the Powertools resolver's serializer."""
    return dumps(document).decode("utf-8")


def _as_list(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


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
