"""Request bodies as HTTP/1.1 frames them (RFC 9112 sections 6 and 7), for `maas serve`.

The standard library's ``http.server`` parses the request line and headers but
leaves the body to the handler; this is that part, strict about what it
accepts, because a lenient reader of framing is how requests get smuggled:
one Content-Length (digits only, or the same value repeated), or
``Transfer-Encoding: chunked`` as the only coding, never both; chunk sizes in
hex digits only, each chunk followed by CRLF, trailers bounded. Anything else
raises :class:`~maas.errors.InvalidInput` (400) or
:class:`~maas.errors.UnsupportedRequest` (501) with a message naming the
problem, and the server closes the connection after answering.
"""

from __future__ import annotations

import io
import re
from email.message import Message

from maas.errors import InvalidInput, UnsupportedRequest

_DIGITS = re.compile(rb"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[^\r\n]*)?\r?\n")
#: The longest chunk-size or trailer line read, and the most trailer lines:
#: http.server's own limits for the request line and header count.
MAX_LINE = 65536
MAX_TRAILERS = 100
_READ = 1 << 16


def body_length(headers: Message) -> int | None:
    """The Content-Length, or ``None`` for a chunked body."""
    codings = [
        coding.strip().lower()
        for value in headers.get_all("Transfer-Encoding") or []
        for coding in value.split(",")
        if coding.strip()
    ]
    lengths = headers.get_all("Content-Length") or []
    if codings:
        if lengths:
            raise InvalidInput("the request has both Transfer-Encoding and Content-Length")
        if codings[-1] != "chunked":
            raise InvalidInput(
                f"Transfer-Encoding {', '.join(codings)!r} does not end with chunked, "
                "so the body's length is unknown"
            )
        if len(codings) > 1:
            raise UnsupportedRequest(
                f"Transfer-Encoding {', '.join(codings[:-1])!r} is not supported: "
                "send chunked alone (or Content-Encoding for compression)"
            )
        return None
    values = {part.strip() for value in lengths for part in value.split(",")}
    if not values:
        return 0
    if len(values) > 1:
        raise InvalidInput(f"the request has conflicting Content-Length values {sorted(values)}")
    (value,) = values
    if not _DIGITS.fullmatch(value.encode("latin-1")):
        raise InvalidInput(f"Content-Length {value[:40]!r} is not a non-negative integer")
    return int(value)


class BodyReader:
    """Reads one request body, keeping at most ``keep`` bytes and draining the rest
    (a client still sending when we answer 413 would see a broken pipe instead)."""

    def __init__(self, stream: io.BufferedIOBase, keep: int) -> None:
        self.stream = stream
        self.keep = keep
        self.kept = bytearray()

    def read(self, length: int | None) -> bytes:
        if length is None:
            self._read_chunked()
        else:
            self._take(length)
        return bytes(self.kept)

    def _take(self, count: int) -> None:
        while count > 0:
            data = self.stream.read(min(count, _READ))
            if not data:
                raise InvalidInput(
                    f"the request body ended {count} bytes short of what its framing announced"
                )
            count -= len(data)
            room = self.keep - len(self.kept)
            if room > 0:
                self.kept.extend(data[:room])

    def _line(self, what: str) -> bytes:
        line = self.stream.readline(MAX_LINE + 1)
        if not line:
            raise InvalidInput(f"the request body ended before its {what}")
        if len(line) > MAX_LINE:
            raise InvalidInput(f"the {what} is over {MAX_LINE} bytes")
        return line

    def _read_chunked(self) -> None:
        while True:
            line = self._line("chunk size line")
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                raise InvalidInput(f"bad chunk size line {line[:40]!r}: expected hex digits")
            size = int(match.group(1), 16)
            if size == 0:
                break
            self._take(size)
            if self._line("CRLF after a chunk") not in (b"\r\n", b"\n"):
                raise InvalidInput(f"a chunk of {size} bytes is not followed by CRLF")
        for _ in range(MAX_TRAILERS + 1):
            if self._line("trailer section") in (b"\r\n", b"\n"):
                return
        raise InvalidInput(f"more than {MAX_TRAILERS} trailer lines after the chunked body")
