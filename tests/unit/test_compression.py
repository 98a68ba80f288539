from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from maas.errors import InvalidInput, PayloadTooLarge
from maas.protocol.compression import decompress

BODY = (
    b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}' * 50
)
LIMIT = 6 * 1024 * 1024


def raw_deflate(data: bytes) -> bytes:
    encoder = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return encoder.compress(data) + encoder.flush()


def bomb(wbits: int, megabytes: int = 50) -> bytes:
    """``megabytes`` of zeros, compressed without ever holding them in memory."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(1 << 20)
    return b"".join(encoder.compress(block) for _ in range(megabytes)) + encoder.flush()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return bomb(16 + zlib.MAX_WBITS)


# -------------------------------------------------------------- decompress
@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (gzip.compress(BODY), "gzip"),
        (gzip.compress(BODY), "GZIP"),
        (gzip.compress(BODY), " x-gzip "),
        (zlib.compress(BODY), "deflate"),
        (raw_deflate(BODY), "deflate"),
        (BODY, None),
        (BODY, ""),
        (BODY, "identity"),
        (gzip.compress(BODY), "identity, gzip"),
        (gzip.compress(zlib.compress(BODY)), "deflate, gzip"),
        (gzip.compress(BODY[:100]) + gzip.compress(BODY[100:]), "gzip"),  # two members
        (gzip.compress(BODY) + b"\x00" * 8, "gzip"),  # zero padding after the member
    ],
)
def test_supported_encodings_decode(encoded: bytes, encoding: str | None) -> None:
    assert decompress(encoded, encoding, LIMIT) == BODY


def test_empty_identity_body_is_fine() -> None:
    assert decompress(b"", None, LIMIT) == b""


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
def test_unknown_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(InvalidInput, match="unsupported Content-Encoding"):
        decompress(BODY, encoding, LIMIT)


@pytest.mark.parametrize(
    ("encoded", "encoding", "message"),
    [
        (BODY, "gzip", "not valid gzip data"),
        (b"", "gzip", "gzip data is truncated"),
        (gzip.compress(BODY)[:-12], "gzip", "gzip data is truncated"),
        (gzip.compress(BODY) + b"garbage", "gzip", "not valid gzip data"),
        (b"\x00\x01\x02 not deflate", "deflate", "not valid deflate data"),
        (zlib.compress(BODY)[:20], "deflate", "deflate data is truncated"),
        (zlib.compress(BODY) + b"xx", "deflate", "trailing bytes"),
        (raw_deflate(BODY) + b"xx", "deflate", "trailing bytes"),
        (b"", "deflate", "deflate data is truncated"),
    ],
)
def test_bad_compressed_data_is_a_client_error(encoded: bytes, encoding: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        decompress(encoded, encoding, LIMIT)
    assert not isinstance(caught.value, PayloadTooLarge)


def test_many_gzip_members_are_refused_quickly() -> None:
    empty = gzip.compress(b"")
    with pytest.raises(InvalidInput, match="more than 16 members"):
        decompress(empty * 200_000, "gzip", LIMIT)  # 4 MB of empty members
    assert decompress(empty * 16, "gzip", LIMIT) == b""


def test_output_limit_is_inclusive() -> None:
    assert decompress(gzip.compress(BODY), "gzip", len(BODY)) == BODY
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(BODY), "gzip", len(BODY) - 1)
    with pytest.raises(PayloadTooLarge):
        decompress(raw_deflate(BODY), "deflate", len(BODY) - 1)
    with pytest.raises(PayloadTooLarge):
        decompress(BODY, None, len(BODY) - 1)


def test_gzip_bomb_is_refused_without_inflating_it(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 200_000  # 50 MB of zeros
    limit = 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="inflates to more than the limit of 1048576"):
            decompress(gzip_bomb, "gzip", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit, f"peak {peak} bytes"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
def test_deflate_bombs_are_refused_too(wbits: int) -> None:
    limit = 256 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            decompress(bomb(wbits, megabytes=8), "deflate", limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024 + 4 * limit  # the bomb's own 1 MB block, then ours


def test_bomb_inside_a_stack_of_encodings_is_refused(gzip_bomb: bytes) -> None:
    with pytest.raises(PayloadTooLarge):
        decompress(zlib.compress(gzip_bomb), "gzip, deflate", 1024 * 1024)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("*", True),
        ("*, gzip;q=0", False),
        ("gzip;q=abc", False),
        ("gzip;q=2", False),
        ("identity", False),
    ],
)
def test_accepts_gzip_honours_q_values(accept: str | None, expected: bool) -> None:
    from maas.protocol.compression import accepts_gzip

    assert accepts_gzip(accept) is expected


def test_a_chain_of_more_than_two_codings_is_refused_before_any_decoding() -> None:
    body = BODY
    for _ in range(301):
        body = gzip.compress(body)
    with pytest.raises(InvalidInput, match="lists 301 codings; at most 2 are accepted"):
        decompress(body, ", ".join(["gzip"] * 301), LIMIT)
    with pytest.raises(InvalidInput, match="lists 3 codings"):
        decompress(BODY, "identity, identity, identity", LIMIT)
    assert decompress(gzip.compress(gzip.compress(BODY)), "gzip, gzip", LIMIT) == BODY
    assert decompress(BODY, "identity,, ,", LIMIT) == BODY  # empty list items are not codings
