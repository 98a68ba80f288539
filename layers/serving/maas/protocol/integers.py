"""Integers that arrive as text (URL segments, headers), parsed with a length bound.

``int()`` refuses a string of more than 4,300 digits with a ``ValueError``
(Python's guard against quadratic-time conversion) and accepts non-ASCII digits
such as ``"١٢"``; a client must get a 400 for both, so the length is checked
before ``int()`` ever runs, and only ASCII digits pass.
"""

from __future__ import annotations

from maas.errors import InvalidInput

#: The largest value an int64 holds: versions and byte counts never need more.
INT64_MAX = 2**63 - 1


def parse_count(text: str, what: str, maximum: int = INT64_MAX) -> int:
    """A non-negative decimal integer of at most ``maximum``; ``what`` names it in errors."""
    digits = text.strip()
    if not digits or not digits.isascii() or not digits.isdigit():
        raise InvalidInput(f"{what} must be a non-negative integer, got {_excerpt(text)}")
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(maximum)) or int(significant) > maximum:
        raise InvalidInput(f"{what} must be at most {maximum}, got {_excerpt(text)}")
    return int(significant)


def is_decimal(text: str) -> bool:
    """ASCII digits only: what a URL segment must be to be read as a number."""
    return bool(text) and text.isascii() and text.isdigit()


def _excerpt(text: str) -> str:
    if len(text) <= 40:
        return repr(text)
    return f"{text[:40]!r}... ({len(text)} characters)"
