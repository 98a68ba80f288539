from __future__ import annotations

import base64
import json
from collections.abc import Container
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maas.datatypes import numpy_dtype, v2_from_numpy
from maas.errors import InvalidInput, MaasError
from maas.protocol import v2
from maas.protocol.v2 import (
    HEADER_LENGTH,
    BinaryOutputs,
    decode_infer_request,
    encode_infer_response,
    parse_header_length,
)
from maas.tensors import InferenceResult, Tensor, tensor_from_bytes, tensor_from_data

NUMERIC = [np.float32, np.float64, np.int64, np.float16, np.bool_, np.uint8, np.int8, np.uint64]


# ------------------------------------------------------------------ helpers
def request_body(document: dict[str, Any], *binary: bytes) -> tuple[bytes, int | None]:
    header = json.dumps(document).encode()
    if not binary:
        return header, None
    return header + b"".join(binary), len(header)


def le(array: np.ndarray) -> bytes:
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def bytes_raw(values: list[bytes]) -> bytes:
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def read_response(body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Read a response the way a client does, with the core's own tensor readers."""
    length = int(headers.get(HEADER_LENGTH, len(body)))
    document = json.loads(body[:length])
    offset, tensors = length, {}
    for out in document["outputs"]:
        if "data" in out:
            data = out["data"]
            if out.get("parameters", {}).get("content_type") == "base64":
                data = [base64.b64decode(d) for d in data]
            tensors[out["name"]] = tensor_from_data(
                out["name"], out["datatype"], out["shape"], data
            )
        else:
            size = out["parameters"]["binary_data_size"]
            raw = body[offset : offset + size]
            offset += size
            tensors[out["name"]] = tensor_from_bytes(
                out["name"], out["datatype"], out["shape"], raw
            )
    assert offset == len(body)
    return document, tensors


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def result(*tensors: Tensor, id: str | None = None) -> InferenceResult:
    return InferenceResult("digits", 7, list(tensors), id)


# ------------------------------------------------------------ decoding: JSON
def test_nested_and_flat_json_data_decode_alike() -> None:
    nested, _ = request_body(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}
    )
    flat, _ = request_body(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    )
    a = decode_infer_request(nested).request.inputs[0]
    b = decode_infer_request(flat).request.inputs[0]
    assert a.name == "x" and a.datatype == "FP32" and a.shape == [2, 2]
    assert a.array.dtype == np.float32
    assert same_bits(a.array, b.array)


def test_request_fields_and_unknown_parameters_are_ignored() -> None:
    body, _ = request_body(
        {
            "id": "req-1",
            "parameters": {"priority": 3, "sequence_id": 9, "timeout": 100, "whatever": [1]},
            "inputs": [
                {
                    "name": "x",
                    "shape": [1],
                    "datatype": "INT64",
                    "parameters": {"content_type": "np", "x": 1},
                    "data": [5],
                }
            ],
            "outputs": [{"name": "b"}, {"name": "a", "parameters": {"classification": 0}}],
        }
    )
    decoded = decode_infer_request(body)
    assert decoded.request.id == "req-1"
    assert decoded.request.outputs == ["b", "a"]
    assert decoded.request.inputs[0].array.tolist() == [5]
    assert "b" not in decoded.binary_outputs and "a" not in decoded.binary_outputs


def test_absent_or_empty_outputs_mean_every_output() -> None:
    inputs = [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]
    extras: list[dict[str, Any]] = [{}, {"outputs": []}]
    for extra in extras:
        body, _ = request_body({"inputs": inputs, **extra})
        assert decode_infer_request(body).request.outputs is None


def test_bytes_json_data_becomes_utf8_bytes() -> None:
    body, _ = request_body(
        {"inputs": [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["é", "b"]}]}
    )
    tensor = decode_infer_request(body).request.inputs[0]
    assert tensor.array.tolist() == ["é".encode(), b"b"]


def test_non_finite_json_inputs_are_read_as_tokens_and_as_strings() -> None:
    # tritonclient sends bare NaN/Infinity tokens; our own responses use strings.
    raw = (
        b'{"inputs":[{"name":"x","shape":[6],"datatype":"FP32",'
        b'"data":[NaN,Infinity,-Infinity,"NaN","Infinity","-Infinity"]}]}'
    )
    values = decode_infer_request(raw).request.inputs[0].array
    assert np.isnan(values[[0, 3]]).all()
    assert values[[1, 4]].tolist() == [np.inf, np.inf]
    assert values[[2, 5]].tolist() == [-np.inf, -np.inf]


# ---------------------------------------------------------- decoding: binary
def test_binary_inputs_mixed_with_json_inputs_take_bytes_in_order() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = np.array([[1, -2]], dtype=np.int64)
    strings = [b"\xff\x00raw", b"", "ü".encode()]
    body, length = request_body(
        {
            "inputs": [
                {"name": "a", "shape": [2, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": 24}},
                {"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]},
                {"name": "c", "shape": [1, 2], "datatype": "INT64",
                 "parameters": {"binary_data_size": 16}},
                {"name": "s", "shape": [3], "datatype": "BYTES",
                 "parameters": {"binary_data_size": len(bytes_raw(strings))}},
            ]
        },
        le(a),
        le(c),
        bytes_raw(strings),
    )  # fmt: skip
    tensors = {t.name: t for t in decode_infer_request(body, length).request.inputs}
    assert same_bits(tensors["a"].array, a)
    assert tensors["b"].array.tolist() == [True]
    assert same_bits(tensors["c"].array, c)
    assert tensors["s"].array.tolist() == strings


def test_header_length_equal_to_body_means_no_binary_part() -> None:
    body, _ = request_body(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [2.5]}]}
    )
    assert decode_infer_request(body, len(body)).request.inputs[0].array.tolist() == [2.5]


@pytest.mark.parametrize(
    ("request_flag", "output_params", "expected"),
    [
        (None, {}, False),
        (True, {}, True),
        (False, {"binary_data": True}, True),
        (None, {"binary_data": True}, True),
        (True, {"binary_data": False}, False),  # the output overrides the request
    ],
)
def test_binary_output_selection(
    request_flag: bool | None, output_params: dict[str, bool], expected: bool
) -> None:
    document: dict[str, Any] = {
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
        "outputs": [{"name": "y", "parameters": output_params}, {"name": "z"}],
    }
    if request_flag is not None:
        document["parameters"] = {"binary_data_output": request_flag}
    body, _ = request_body(document)
    selection = decode_infer_request(body).binary_outputs
    assert ("y" in selection) is expected
    assert ("z" in selection) is bool(request_flag)
    # Outputs that were not listed follow the request-level flag.
    assert ("unlisted" in selection) is bool(request_flag)


# ----------------------------------------------------------- decoding: errors
X = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}


def bad(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"", None, "is empty"),
        (b"\xff\xfe\x00{", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object, not an array"),
        (b'"x"', None, "must be a JSON object, not a string"),
        (b"[" * 100_000, None, "nested too deeply|not valid JSON"),
        (bad({"inputs": [X]}), -1, "inference-header-content-length is -1"),
        (bad({"inputs": [X]}), 10_000, "inference-header-content-length is 10000, but the body"),
        (bad({"inputs": [X]}), 5, "not valid JSON"),
        (bad({}), None, "'inputs' must be a non-empty list"),
        (bad({"inputs": []}), None, "'inputs' must be a non-empty list"),
        (bad({"inputs": {"x": 1}}), None, "'inputs' must be a non-empty list"),
        (bad({"inputs": [1]}), None, r"inputs\[0\] must be an object"),
        (bad({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}), None,
         r"inputs\[0\] has no 'name'"),
        (bad({"inputs": [{"name": 3, "shape": [1], "datatype": "FP32", "data": [1]}]}), None,
         r"inputs\[0\]: 'name' must be a non-empty string"),
        (bad({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}), None,
         "input 'x' has no 'shape'"),
        (bad({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}), None,
         "input 'x' has no 'datatype'"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}),
         None, "input 'x': unknown datatype 'FLOAT'"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": ["FP32"], "data": [1]}]}),
         None, "input 'x': unknown datatype"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}), None,
         "input 'x' has neither 'data' nor parameters.binary_data_size"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                          "parameters": {"shared_memory_region": "r"}}]}), None,
         "shared memory inputs are not supported"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1],
                          "parameters": {"binary_data_size": 4}}]}), None,
         "input 'x' has both 'data' and parameters.binary_data_size"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                          "parameters": {"binary_data_size": 4}}]}), None,
         "has no inference-header-content-length header"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                          "parameters": {"binary_data_size": -4}}]}), None,
         "binary_data_size must be a non-negative integer"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                          "parameters": {"binary_data_size": True}}]}), None,
         "binary_data_size must be a non-negative integer"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1],
                          "parameters": [1]}]}), None, "'parameters' must be an object"),
        (bad({"inputs": [X, X]}), None, "input 'x' is given more than once"),
        (bad({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}),
         None, "needs 3 elements, data has 2"),
        (bad({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [[1], [2, 3]]}]}),
         None, "not a regular array"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [{"a": 1}]}]}),
         None, "not a regular array"),
        (bad({"inputs": [{"name": "x", "shape": "2", "datatype": "FP32", "data": [1, 2]}]}),
         None, "shape must be a list"),
        (bad({"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}]}),
         None, "BYTES data must be strings"),
        (bad({"id": 5, "inputs": [X]}), None, "'id' must be a string"),
        (bad({"parameters": "fast", "inputs": [X]}), None, "'parameters' must be an object"),
        (bad({"parameters": {"binary_data_output": "yes"}, "inputs": [X]}), None,
         "binary_data_output must be true or false"),
        (bad({"inputs": [X], "outputs": "y"}), None, "'outputs' must be a list"),
        (bad({"inputs": [X], "outputs": ["y"]}), None, r"outputs\[0\] must be an object"),
        (bad({"inputs": [X], "outputs": [{"parameters": {}}]}), None,
         r"outputs\[0\] needs a 'name'"),
        (bad({"inputs": [X], "outputs": [{"name": "y", "parameters": {"binary_data": 1}}]}),
         None, "binary_data must be true or false"),
    ],
)  # fmt: skip
def test_malformed_requests_are_client_errors(
    body: bytes, header_length: int | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_infer_request(body, header_length)


def binary_request(extra: bytes = b"", cut: int = 0) -> tuple[bytes, int]:
    document = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            {"name": "b", "shape": [1], "datatype": "INT64", "parameters": {"binary_data_size": 8}},
        ]
    }
    body, length = request_body(document, le(np.ones(2, np.float32)), le(np.ones(1, np.int64)))
    assert length is not None
    return (body[: len(body) - cut] if cut else body) + extra, length


def test_binary_request_parses_when_sizes_add_up() -> None:
    body, length = binary_request()
    tensors = decode_infer_request(body, length).request.inputs
    assert [t.array.tolist() for t in tensors] == [[1.0, 1.0], [1]]


def test_truncated_binary_data_is_refused() -> None:
    body, length = binary_request(cut=3)
    with pytest.raises(InvalidInput, match="binary data is truncated: the inputs declare 16 bytes"):
        decode_infer_request(body, length)


def test_trailing_binary_data_is_refused() -> None:
    body, length = binary_request(extra=b"junk")
    with pytest.raises(InvalidInput, match="4 bytes of trailing data"):
        decode_infer_request(body, length)


def test_binary_size_must_match_the_shape() -> None:
    body, length = request_body(
        {"inputs": [{"name": "a", "shape": [3], "datatype": "FP32",
                     "parameters": {"binary_data_size": 8}}]},
        le(np.ones(2, np.float32)),
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="needs 12 bytes, binary data has 8"):
        decode_infer_request(body, length)


def test_broken_binary_bytes_elements_are_refused() -> None:
    raw = (10).to_bytes(4, "little") + b"abc"
    body, length = request_body(
        {"inputs": [{"name": "s", "shape": [1], "datatype": "BYTES",
                     "parameters": {"binary_data_size": len(raw)}}]},
        raw,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="overruns"):
        decode_infer_request(body, length)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("0", 0), (" 123 ", 123), ("42", 42)]
)
def test_header_length_parsing(value: str | None, expected: int | None) -> None:
    assert parse_header_length(value) == expected


@pytest.mark.parametrize("value", ["", "-1", "1.5", "abc", "١٢", "0x10", "1" * 5000, "9" * 19])
def test_bad_header_length_is_a_client_error(value: str) -> None:
    with pytest.raises(InvalidInput, match="inference-header-content-length must be"):
        parse_header_length(value)


def test_binary_data_size_is_bounded() -> None:
    body, _ = request_body(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                     "parameters": {"binary_data_size": 2**63}}]}
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="binary_data_size must be a non-negative integer of"):
        decode_infer_request(body, len(body))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
INPUT_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["x", "", 3]) | JSON_VALUES,
        "shape": st.sampled_from([[2], [1, 2], [-1], [], "2"]) | JSON_VALUES,
        "datatype": st.sampled_from(["FP32", "BYTES", "INT64", "BOOL"]) | JSON_VALUES,
        "data": JSON_VALUES,
        "parameters": st.fixed_dictionaries(
            {}, optional={"binary_data_size": st.integers(-2, 12) | JSON_VALUES}
        )
        | JSON_VALUES,
    },
)
REQUEST_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON_VALUES,
        "inputs": st.lists(INPUT_LIKE, max_size=3) | JSON_VALUES,
        "outputs": st.lists(
            st.fixed_dictionaries({}, optional={"name": JSON_VALUES, "parameters": JSON_VALUES}),
            max_size=2,
        )
        | JSON_VALUES,
        "parameters": JSON_VALUES,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    REQUEST_LIKE,
    st.binary(max_size=24),
    st.sampled_from(["json only", "exact header", "any header"]),
    st.integers(-3, 400),
)
def test_arbitrary_requests_fail_only_with_client_errors(
    document: dict[str, Any], tail: bytes, mode: str, length: int
) -> None:
    header = json.dumps(document).encode()
    try:
        if mode == "json only":
            decode_infer_request(header)
        elif mode == "exact header":
            decode_infer_request(header + tail, len(header))
        else:
            decode_infer_request(header + tail, length)
    except MaasError as exc:
        assert isinstance(exc, InvalidInput)
        assert str(exc)


# ----------------------------------------------------------------- responses
def test_json_response_layout() -> None:
    body, headers = encode_infer_response(
        result(Tensor("probs", "FP32", np.array([[0.25, 0.75]], np.float32)), id="abc")
    )
    assert headers == {"content-type": "application/json"}
    assert json.loads(body) == {
        "model_name": "digits",
        "model_version": "7",
        "id": "abc",
        "outputs": [{"name": "probs", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]}],
    }


def test_id_is_omitted_when_the_request_had_none() -> None:
    body, _ = encode_infer_response(result(Tensor("y", "INT64", np.array([1]))))
    assert "id" not in json.loads(body)


def test_binary_response_layout_and_header() -> None:
    probs = np.array([[0.25, 0.75]], np.float32)
    label = np.array([1], np.int64)
    body, headers = encode_infer_response(
        result(Tensor("probs", "FP32", probs), Tensor("label", "INT64", label)), {"probs"}
    )
    length = int(headers[HEADER_LENGTH])
    assert headers["content-type"] == "application/octet-stream"
    header = json.loads(body[:length])
    assert header["outputs"][0] == {
        "name": "probs",
        "datatype": "FP32",
        "shape": [1, 2],
        "parameters": {"binary_data_size": 8},
    }
    assert header["outputs"][1]["data"] == [1]
    assert body[length:] == le(probs)


def test_several_binary_outputs_follow_in_output_order() -> None:
    a = np.array([1.5, -2.0], np.float64)
    s = np.array(["hé", "x"], dtype=object)  # onnxruntime gives str
    b = np.array([[True, False]])
    out = result(Tensor("a", "FP64", a), Tensor("s", "BYTES", s), Tensor("b", "BOOL", b))
    body, headers = encode_infer_response(out, BinaryOutputs(default=True))
    _, tensors = read_response(body, headers)
    assert same_bits(tensors["a"].array, a)
    assert tensors["s"].array.tolist() == ["hé".encode(), b"x"]
    assert same_bits(tensors["b"].array, b)


def test_non_finite_floats_are_strings_in_valid_json() -> None:
    values = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    body, headers = encode_infer_response(result(Tensor("y", "FP32", values)))
    document = json.loads(body, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    assert document["outputs"][0]["data"] == ["NaN", "Infinity", "-Infinity", 1.0]
    _, tensors = read_response(body, headers)
    np.testing.assert_array_equal(tensors["y"].array, values)  # NaN == NaN here


def test_fp16_is_written_as_plain_json_numbers() -> None:
    values = np.array([0.1, 65504, -0.0], np.float16)
    body, _ = encode_infer_response(result(Tensor("h", "FP16", values)))
    data = json.loads(body)["outputs"][0]["data"]
    assert all(isinstance(v, float) for v in data)
    assert np.asarray(data, np.float16).tobytes() == values.tobytes()


def test_non_utf8_bytes_outputs_become_base64_for_the_whole_tensor() -> None:
    values = np.array([b"ok", b"\xff\xfe"], dtype=object)
    body, _ = encode_infer_response(result(Tensor("s", "BYTES", values)))
    out = json.loads(body)["outputs"][0]
    assert out["parameters"] == {"content_type": "base64"}
    assert [base64.b64decode(v) for v in out["data"]] == [b"ok", b"\xff\xfe"]


def test_utf8_bytes_outputs_are_plain_strings() -> None:
    values = np.array([[b"caf\xc3\xa9"], ["x"]], dtype=object)
    body, _ = encode_infer_response(result(Tensor("s", "BYTES", values)))
    out = json.loads(body)["outputs"][0]
    assert "parameters" not in out
    assert out["data"] == ["café", "x"] and out["shape"] == [2, 1]


# ------------------------------------------------------------- round trips
ARRAYS = st.sampled_from(NUMERIC).flatmap(
    lambda dtype: hnp.arrays(
        dtype=dtype,
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
        elements=hnp.from_dtype(np.dtype(dtype), allow_nan=False),
    )
)
TEXTS = st.lists(st.text(max_size=8), min_size=0, max_size=6)


@settings(max_examples=150)
@given(ARRAYS)
def test_json_and_binary_responses_carry_bit_identical_numbers(array: np.ndarray) -> None:
    datatype = v2_from_numpy(array.dtype)
    out = result(Tensor("y", datatype, array))
    json_body, json_headers = encode_infer_response(out)
    bin_body, bin_headers = encode_infer_response(out, {"y"})
    _, from_json = read_response(json_body, json_headers)
    _, from_bin = read_response(bin_body, bin_headers)
    assert same_bits(from_json["y"].array, array)
    assert same_bits(from_bin["y"].array, array)


@settings(max_examples=150)
@given(ARRAYS)
def test_json_and_binary_requests_decode_to_bit_identical_tensors(array: np.ndarray) -> None:
    datatype = v2_from_numpy(array.dtype)
    shape = list(array.shape)
    json_body, _ = request_body(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": array.tolist()}]}
    )
    bin_body, length = request_body(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype,
                     "parameters": {"binary_data_size": len(le(array))}}]},
        le(array),
    )  # fmt: skip
    from_json = decode_infer_request(json_body).request.inputs[0].array
    from_bin = decode_infer_request(bin_body, length).request.inputs[0].array
    assert same_bits(from_json, array)
    assert same_bits(from_bin, array)
    assert from_bin.dtype == numpy_dtype(datatype)


@given(TEXTS)
def test_bytes_round_trip_json_and_binary(texts: list[str]) -> None:
    encoded = [t.encode() for t in texts]
    json_body, _ = request_body(
        {"inputs": [{"name": "s", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    )
    bin_body, length = request_body(
        {"inputs": [{"name": "s", "shape": [len(texts)], "datatype": "BYTES",
                     "parameters": {"binary_data_size": len(bytes_raw(encoded))}}]},
        bytes_raw(encoded),
    )  # fmt: skip
    assert decode_infer_request(json_body).request.inputs[0].array.tolist() == encoded
    assert decode_infer_request(bin_body, length).request.inputs[0].array.tolist() == encoded
    array = np.empty(len(texts), dtype=object)
    array[:] = texts
    out = result(Tensor("s", "BYTES", array))
    selections: list[Container[str]] = [frozenset(), {"s"}]
    for selection in selections:
        _, tensors = read_response(*encode_infer_response(out, selection))
        assert tensors["s"].array.tolist() == encoded


# ---------------------------------------------------- tritonclient's own bodies
def test_tritonclient_binary_and_json_requests_decode() -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    s = np.array([b"a", b"\x00\xff"], dtype=object)
    for binary in (True, False):
        xin = httpclient.InferInput("x", list(x.shape), "FP32")
        xin.set_data_from_numpy(x, binary_data=binary)
        sin = httpclient.InferInput("s", [2], "BYTES")
        sin.set_data_from_numpy(s, binary_data=True)
        outs = [httpclient.InferRequestedOutput("y", binary_data=binary)]
        body, json_size = httpclient.InferenceServerClient.generate_request_body(
            [xin, sin], outputs=outs, request_id="r1", priority=2, timeout=5
        )
        decoded = decode_infer_request(body, json_size)
        tensors = {t.name: t.array for t in decoded.request.inputs}
        assert same_bits(tensors["x"], x)
        assert tensors["s"].tolist() == [b"a", b"\x00\xff"]
        assert decoded.request.id == "r1" and decoded.request.outputs == ["y"]
        assert ("y" in decoded.binary_outputs) is binary


def test_tritonclient_reads_our_responses() -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    probs = np.array([[0.1, 0.9], [np.inf, -0.0]], np.float32)
    label = np.array([1, 0], np.int64)
    out = result(Tensor("probs", "FP32", probs), Tensor("label", "INT64", label), id="r1")
    selections: list[Container[str]] = [frozenset(), {"probs"}, BinaryOutputs(default=True)]
    for selection in selections:
        body, headers = encode_infer_response(out, selection)
        parsed = httpclient.InferenceServerClient.parse_response_body(
            body, header_length=int(headers[HEADER_LENGTH]) if HEADER_LENGTH in headers else None
        )
        assert same_bits(parsed.as_numpy("probs"), probs)
        assert same_bits(parsed.as_numpy("label"), label)
        response = parsed.get_response()
        assert response["model_version"] == "7" and response["id"] == "r1"


# ------------------------------------------------------------------ metadata
def test_server_metadata() -> None:
    document = v2.server_metadata("1.2.3")
    assert document["name"] == "maas" and document["version"] == "1.2.3"
    assert "binary_tensor_data" in document["extensions"]


def test_model_metadata_uses_strings_for_versions_and_minus_one_for_dynamic() -> None:
    document = v2.model_metadata(
        "digits",
        [3, 1, 2],
        [{"name": "x", "datatype": "FP32", "shape": [-1, 64], "extra": 1}],
        [{"name": "probs", "datatype": "FP32", "shape": [None, 10]}],
    )
    assert document == {
        "name": "digits",
        "versions": ["1", "2", "3"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 10]}],
    }
