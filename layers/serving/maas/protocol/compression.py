"""Content-Encoding of request bodies.

Responses are compressed by Powertools' event handler (``compress=True`` on a
route: gzip when the client's Accept-Encoding names it); requests are not,
which is what this module does.

Decompression is incremental with a bounded output (``max_length``), so a
compressed bomb (a few kilobytes that inflate to gigabytes) is refused after
producing at most ``max_bytes + 1`` bytes, never allocated in full.

``deflate`` is accepted both zlib-wrapped (RFC 9110's meaning) and raw (what
some clients send, following old browser practice).
"""

from __future__ import annotations

import zlib

from maas.errors import InvalidInput, PayloadTooLarge

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS
_ALIASES = {"x-gzip": "gzip"}
_SUPPORTED = ("gzip", "deflate", "identity")
_MAX_GZIP_MEMBERS = 16
#: No client has a reason to compress more than twice; each layer may
#: inflate to the full body limit, so a long chain (``gzip, gzip, ...`` 300
#: times) would cost hundreds of full decompressions.
MAX_CODINGS = 2


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The decoded body, at most ``max_bytes`` long.

    A list of codings (``gzip, identity``) is undone last-applied first, as
    RFC 9110 orders them.
    """
    listed = [c for c in (content_encoding or "").split(",") if c.strip()]
    if len(listed) > MAX_CODINGS:
        raise InvalidInput(
            f"Content-Encoding lists {len(listed)} codings; at most {MAX_CODINGS} are accepted"
        )
    codings = [_coding(c) for c in listed]
    data = body
    for coding in reversed([c for c in codings if c != "identity"]):
        if coding == "gzip":
            data = _inflate_gzip(data, max_bytes)
        else:
            data = _inflate_deflate(data, max_bytes)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the request body is over the limit of {max_bytes} bytes")
    return data


def _coding(raw: str) -> str:
    coding = raw.strip().lower()
    coding = _ALIASES.get(coding, coding)
    if coding and coding not in _SUPPORTED:
        raise InvalidInput(
            f"unsupported Content-Encoding {raw.strip()[:40]!r}; use gzip, deflate or identity"
        )
    return coding


def _inflate_gzip(data: bytes, max_bytes: int) -> bytes:
    """gzip, including a few concatenated members (which ``gzip`` tools produce).

    Members are capped because each one copies the rest of the body
    (``unused_data``): thousands of empty members would cost quadratic time.
    """
    out = bytearray()
    rest = data
    for _ in range(_MAX_GZIP_MEMBERS):
        rest = _inflate(zlib.decompressobj(_GZIP), rest, out, max_bytes, "gzip")
        if not rest.strip(b"\x00"):  # padding zeros after the last member are allowed
            return bytes(out)
    raise InvalidInput(f"gzip data has more than {_MAX_GZIP_MEMBERS} members")


def _inflate_deflate(data: bytes, max_bytes: int) -> bytes:
    if not _looks_zlib(data):
        return _inflate_one(zlib.decompressobj(_RAW), data, max_bytes)
    try:
        return _inflate_one(zlib.decompressobj(_ZLIB), data, max_bytes)
    except PayloadTooLarge:
        raise
    except InvalidInput as zlib_error:
        # A raw stream can start with two bytes that pass the zlib header check.
        try:
            return _inflate_one(zlib.decompressobj(_RAW), data, max_bytes)
        except PayloadTooLarge:
            raise
        except InvalidInput:
            raise zlib_error from None


def _inflate_one(decoder: zlib._Decompress, data: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    if _inflate(decoder, data, out, max_bytes, "deflate"):
        raise InvalidInput("deflate data is followed by trailing bytes")
    return bytes(out)


def _looks_zlib(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate(
    decoder: zlib._Decompress, data: bytes, out: bytearray, max_bytes: int, name: str
) -> bytes:
    """Inflate one stream into ``out``; return the bytes that follow it."""
    pending = data
    try:
        while not decoder.eof:
            chunk = decoder.decompress(pending, max_bytes + 1 - len(out))
            out += chunk
            if len(out) > max_bytes:
                raise PayloadTooLarge(
                    f"the request body inflates to more than the limit of {max_bytes} bytes"
                )
            pending = decoder.unconsumed_tail
            if not pending and not chunk and not decoder.eof:
                raise InvalidInput(f"{name} data is truncated")
    except zlib.error as exc:
        raise InvalidInput(f"the body is not valid {name} data ({exc})") from None
    return decoder.unused_data


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip, honouring q-values (``gzip;q=0`` means no).

    Powertools compresses whenever the header merely contains "gzip" (so a bare
    ``*`` gets no compression); routes pass this to the response so that an
    explicit refusal is respected.
    """
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = _ALIASES.get(coding.strip().lower(), coding.strip().lower())
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding:
            weights[coding] = q if 0.0 <= q <= 1.0 else 0.0
    return weights.get("gzip", weights.get("*", 0.0)) > 0.0
