"""The fast JSON codec against the standard library it replaces: same documents, same
refusals with the same messages, same numbers printed."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas.errors import InvalidInput
from maas.protocol import jsonbody
from maas.protocol.values import json_values, numeric_values


def stdlib_reference(raw: bytes, what: str = "the body") -> dict[str, Any] | str:
    """What parse_object answered before orjson: the document, or the error message."""
    try:
        document = jsonbody._stdlib_parse(raw, what)
    except InvalidInput as exc:
        return str(exc)
    if not isinstance(document, dict):
        return f"{what} must be a JSON object, not {jsonbody._json_type(document)}"
    return document


def parsed(raw: bytes) -> dict[str, Any] | str:
    try:
        return jsonbody.parse_object(raw, "the body")
    except InvalidInput as exc:
        return str(exc)


def same(a: Any, b: Any) -> bool:
    """Equality that also holds for NaN and tells ints from floats and -0.0 from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN, "b": Infinity, "c": -Infinity}',  # what Triton's and TF Serving's clients send
        b'{"a": 1e400, "b": -1e400}',  # beyond a double: inf for json, a refusal for orjson
        b'{"a": 18446744073709551616, "b": -9223372036854775809}',  # beyond 64 bits
        b'{"a": 123456789012345678901234567890}',
        b'{"a": 9223372036854775807, "b": 18446744073709551615}',
        b'{"a": "\\ud800"}',  # a lone surrogate: valid JSON
        b'\xef\xbb\xbf{"a": 1}',  # UTF-8 byte-order mark
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1, "a": 2}',
        b'{"a": -0, "b": -0.0, "c": 1.5e-400, "d": 1E2}',
        b'{"a": [' + b"[" * 1100 + b"]" * 1100 + b"]}",  # deeper than orjson's 1,024 levels
        b'{"a": ' + b"1" * 5000 + b"}",  # over Python's digit limit
        b'{"a": 0.1234567890123456789012345}',
    ],
)
def test_what_orjson_refuses_or_reads_differently_is_read_as_json_reads_it(raw: bytes) -> None:
    assert same(parsed(raw), stdlib_reference(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1',
        b'{"a": 1,}',
        b"{'a': 1}",
        b'{"a": "\x00"}',
        b'{"a": tru}',
        b'{"a": 1} x',
        b"\xff\xfe\xfa",
        b'{"a": "caf\xe9"}',
        b"[1, 2]",
        b'"text"',
        b"null",
        b"12",
        b"[" * 100_000,
        b'{"a": 1}\n\n{',
    ],
)
def test_malformed_bodies_keep_their_messages(raw: bytes) -> None:
    answer = parsed(raw)
    assert isinstance(answer, str)
    assert answer == stdlib_reference(raw)


json_values_strategy = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values_strategy, max_size=5))
def test_any_document_reads_back_as_json_reads_it(document: dict[str, Any]) -> None:
    raw = json.dumps(document).encode()
    assert same(parsed(raw), stdlib_reference(raw))
    assert same(json.loads(jsonbody.dumps(document)), json.loads(raw))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=30))
def test_fp32_values_print_as_json_dumps_of_tolist_printed_them(values: list[float]) -> None:
    array = np.array(values, np.float32)
    fast = jsonbody.dumps(json_values(array, "FP32"))
    assert same(json.loads(fast), json.loads(json.dumps(numeric_values(array, "FP32"))))
    assert np.array_equal(np.asarray(json.loads(fast), np.float32), array)


def test_fp32_keeps_the_precision_clients_read() -> None:
    """0.1 as FP32 is the double 0.10000000149011612, printed so, as tolist() made it."""
    body = jsonbody.dumps({"data": json_values(np.array([0.1, 1e-5], np.float32), "FP32")})
    assert json.loads(body) == {"data": [0.10000000149011612, 9.999999747378752e-06]}


@pytest.mark.parametrize(
    ("datatype", "array"),
    [
        ("FP16", np.array([[0.1, -2.5], [65504, 0]], np.float16)),
        ("FP64", np.array([1 / 3, -0.0])),
        ("INT64", np.array([-(2**63), 2**63 - 1])),
        ("UINT64", np.array([2**64 - 1], np.uint64)),
        ("INT8", np.array([[-128, 127]], np.int8)),
        ("BOOL", np.array([True, False])),
        ("FP32", np.array([[1.0, np.nan], [np.inf, -np.inf]], np.float32)),
        ("FP32", np.zeros((2, 0), np.float32)),
        ("FP32", np.array(2.5, np.float32)),
        ("INT32", np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]),  # big-endian, strided
    ],
)
def test_json_values_print_what_numeric_values_print(datatype: str, array: Any) -> None:
    fast = json.loads(jsonbody.dumps({"v": json_values(array, datatype)}))
    assert same(fast, json.loads(json.dumps({"v": numeric_values(array, datatype)})))


def test_what_orjson_cannot_print_is_printed_by_json() -> None:
    document = {"big": 2**70, 1: "int key", "array": np.arange(3)}
    assert json.loads(jsonbody.dumps(document)) == {
        "big": 2**70,
        "1": "int key",
        "array": [0, 1, 2],
    }
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonbody.dumps({"big": 2**70, "other": object()})


def test_nesting_json_could_not_recurse_into_is_still_a_400() -> None:
    """Between Python's recursion limit and orjson's 1,024 levels, the body is now read
    (where json gave up); the codec then refuses data nested past numpy's 64 dimensions."""
    from maas.protocol.v2 import decode_infer_request

    data = b"[" * 1010 + b"1" + b"]" * 1010
    raw = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ' + data + b"}]}"
    with pytest.raises(InvalidInput, match="input 'x'"):
        decode_infer_request(raw)


@pytest.mark.parametrize("datatype", ["INT64", "UINT64", "FP32", "FP64"])
def test_a_wide_integer_in_tensor_data_ends_as_it_did_with_json(
    datatype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long number lists are not walked: there, orjson's float and json's integer give
    numpy the same value, or the same refusal."""
    from maas.protocol.v2 import decode_infer_request

    data = [1] * 99 + [2**64 + 1]
    raw = json.dumps(
        {"inputs": [{"name": "x", "shape": [100], "datatype": datatype, "data": data}]}
    ).encode()

    def outcome() -> Any:
        try:
            return decode_infer_request(raw).request.inputs[0].array.tolist()
        except InvalidInput as exc:
            return str(exc)

    fast = outcome()
    monkeypatch.setattr(jsonbody, "_fast_parse", lambda raw: jsonbody._REPARSE)
    assert fast == outcome()
