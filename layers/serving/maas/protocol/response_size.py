"""Whether an answer fits Lambda's response limit, known before it is encoded.

Lambda fails a synchronous response over 6 MB and API Gateway then answers a
bare 502; the API answers a clear 400 instead. Encoding first and measuring
afterwards is how a 64 MB output tensor once took 11 s and 1.67 GB of JSON to
become that 400, so the size is bounded from the output arrays first:

* binary tensor data is exact (element count times item size; BYTES: 4 + length
  per element);
* JSON data is bounded below by the fewest characters one element can take
  (``0``, ``0.0``, ``true``, a string's own bytes and its quotes) plus commas.

A lower bound over the limit refuses at once and can never refuse an answer
that would have fitted. (The worst case per element would be the other bound;
refusing on it would turn away, say, an INT64 output of small numbers that is
twenty times smaller than its worst case.) Answers under the lower bound are
encoded and measured before anything else is done with them (base64, gzip);
:func:`maas.http_api.within_lambda_payload` stays as the last backstop.

When the client accepts gzip the final size cannot be known before
compressing, so the uncompressed answer is capped instead, at
:data:`GZIP_RAW_FACTOR` times the limit: that admits JSON that compresses up
to eight-fold (floats compress about three-fold) and bounds the work spent
on an answer that may still not fit.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

#: Lambda's synchronous payload limit, each way.
from maas.datatypes import numpy_dtype
from maas.errors import InvalidInput
from maas.protocol.values import bytes_elements
from maas.tensors import Tensor

#: With gzip, the uncompressed answer may be this many times the limit.
GZIP_RAW_FACTOR = 8

#: Fewest characters one element takes in JSON: ``true`` (``false`` is longer),
#: ``0.0`` (Python writes every float with a point or an exponent), ``0``.
_JSON_MIN_CHARS = {"BOOL": 4, "FP16": 3, "FP32": 3, "FP64": 3}
_INTEGER_MIN_CHARS = 1
_QUOTES = 2


def binary_size(tensor: Tensor) -> int:
    """The exact length of ``tensor`` in the binary tensor data extension."""
    if tensor.datatype == "BYTES":
        return sum(4 + len(element) for element in bytes_elements(tensor.array))
    return int(tensor.array.size) * int(numpy_dtype(tensor.datatype).itemsize)


def json_floor(tensor: Tensor) -> int:
    """The fewest bytes ``tensor``'s values can take as JSON data."""
    count = int(tensor.array.size)
    separators = max(count - 1, 0)
    if tensor.datatype == "BYTES":
        # UTF-8 text is written as itself at the least (escapes and base64 are longer).
        return sum(len(e) + _QUOTES for e in bytes_elements(tensor.array)) + separators
    return count * _JSON_MIN_CHARS.get(tensor.datatype, _INTEGER_MIN_CHARS) + separators


def smallest_body(outputs: Sequence[Tensor], binary: Container[str] = ()) -> tuple[int, bool]:
    """A lower bound on the encoded body, and whether the body is binary."""
    total, any_binary = 0, False
    for tensor in outputs:
        if tensor.name in binary:
            total += binary_size(tensor)
            any_binary = True
        else:
            total += json_floor(tensor)
    return total, any_binary


def check(size: int, *, binary: bool, gzip: bool, limit: int, at_least: bool) -> None:
    """Refuse an answer of ``size`` bytes (before base64 and gzip) that cannot fit.

    Powertools base64-encodes binary and gzipped bodies, which Lambda then
    carries as text: four bytes for every three.
    """
    if gzip:
        if size > GZIP_RAW_FACTOR * limit:
            raise InvalidInput(
                f"the response would be {'at least ' if at_least else ''}{size} bytes before "
                f"gzip, over the {GZIP_RAW_FACTOR * limit} bytes accepted for Lambda's "
                f"{limit}-byte response limit: {_ADVICE}"
            )
        return
    carried = base64_length(size) if binary else size
    if carried > limit:
        raise too_large(carried, limit, at_least=at_least)


def too_large(size: int, limit: int, *, at_least: bool = False) -> InvalidInput:
    """The client error for an answer of ``size`` bytes over Lambda's ``limit``."""
    return InvalidInput(
        f"the response would be {'at least ' if at_least else ''}{size} bytes, over Lambda's "
        f"{limit}-byte response limit: {_ADVICE} or accept gzip"
    )


def base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


_ADVICE = (
    "send a smaller batch, request only the outputs you need, ask for binary outputs "
    "(binary_data_output)"
)
