from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maas.errors import InvalidInput, MaasError
from maas.protocol.tfserving import decode_predict, encode_predict, model_metadata, model_status
from maas.tensors import InferenceResult, Tensor

ONE = [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
TWO = [
    {"name": "x", "datatype": "FP32", "shape": [-1, 2]},
    {"name": "k", "datatype": "INT64", "shape": [-1]},
]
TEXT = [{"name": "s", "datatype": "BYTES", "shape": [-1]}]


def nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def decode(document: Any, signature: list[dict[str, Any]] = ONE) -> tuple[dict[str, Any], str]:
    request, form = decode_predict(json.dumps(document).encode(), signature)
    assert request.outputs is None
    return {t.name: t for t in request.inputs}, form


def result(*tensors: Tensor) -> InferenceResult:
    return InferenceResult("m", 2, list(tensors))


def strict_json(document: Any) -> Any:
    """The answer survives a strict JSON round trip (no bare NaN, no numpy types)."""
    return json.loads(json.dumps(document, allow_nan=False))


# ---------------------------------------------------------------- row form
def test_row_form_single_input_instances_are_the_batch() -> None:
    tensors, form = decode({"instances": [[1, 2], [3, 4], [5, 6]]})
    assert form == "row"
    x = tensors["x"]
    assert x.datatype == "FP32" and x.array.dtype == np.float32 and x.shape == [3, 2]
    assert x.array.tolist() == [[1, 2], [3, 4], [5, 6]]


def test_row_form_single_input_accepts_scalars_per_row() -> None:
    tensors, _ = decode({"instances": [1, 2, 3]}, [{"name": "k", "datatype": "INT64"}])
    assert tensors["k"].array.dtype == np.int64 and tensors["k"].shape == [3]


def test_row_form_single_input_may_key_instances_by_name() -> None:
    tensors, _ = decode({"instances": [{"x": [1, 2]}, {"x": [3, 4]}]})
    assert tensors["x"].array.tolist() == [[1, 2], [3, 4]]


def test_row_form_several_inputs_are_objects_keyed_by_name() -> None:
    tensors, form = decode(
        {
            "signature_name": "serving_default",
            "instances": [{"x": [1, 2], "k": 7}, {"k": 8, "x": [3, 4]}],
        },
        TWO,
    )
    assert form == "row"
    assert tensors["x"].array.tolist() == [[1, 2], [3, 4]]
    assert tensors["k"].array.tolist() == [7, 8] and tensors["k"].array.dtype == np.int64


def test_bytes_values_are_strings_or_b64_objects() -> None:
    raw = b"\x00\xffbin"
    encoded = base64.b64encode(raw).decode()
    tensors, _ = decode(
        {"instances": ["héllo", {"b64": encoded}, {"b64": encoded.rstrip("=")}]}, TEXT
    )
    assert tensors["s"].array.tolist() == ["héllo".encode(), raw, raw]


def test_nested_bytes_keep_their_shape() -> None:
    signature = [{"name": "s", "datatype": "BYTES", "shape": [-1, 2]}]
    tensors, _ = decode({"instances": [["a", "b"], [{"b64": "Yw=="}, "d"]]}, signature)
    assert tensors["s"].shape == [2, 2]
    assert tensors["s"].array.tolist() == [[b"a", b"b"], [b"c", b"d"]]


# ----------------------------------------------------------- columnar form
def test_columnar_single_input_plain_value() -> None:
    tensors, form = decode({"inputs": [[1, 2], [3, 4]]})
    assert form == "columnar" and tensors["x"].shape == [2, 2]


def test_columnar_single_input_keyed_and_scalar() -> None:
    tensors, _ = decode({"inputs": {"x": [[1, 2]]}})
    assert tensors["x"].shape == [1, 2]
    tensors, _ = decode({"inputs": 3.5})
    assert tensors["x"].shape == [] and tensors["x"].array.item() == 3.5


def test_columnar_several_inputs() -> None:
    tensors, form = decode({"inputs": {"x": [[1, 2]], "k": [9]}}, TWO)
    assert form == "columnar"
    assert tensors["x"].array.tolist() == [[1, 2]] and tensors["k"].array.tolist() == [9]


def test_columnar_single_bytes_input_may_be_a_b64_object() -> None:
    tensors, _ = decode({"inputs": {"b64": "YQ=="}}, TEXT)
    assert tensors["s"].array.item() == b"a"


def test_input_order_follows_the_signature() -> None:
    request, _ = decode_predict(b'{"inputs": {"k": [1], "x": [[1, 2]]}}', TWO)
    assert [t.name for t in request.inputs] == ["x", "k"]


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("document", "signature", "message"),
    [
        ({"instances": [[1, 2]], "inputs": [[1, 2]]}, ONE, "either 'instances'.*or 'inputs'"),
        ({}, ONE, "needs 'instances' \\(row form\\) or 'inputs'"),
        ({"signature_name": "serving_default"}, ONE, "needs 'instances'"),
        ({"instances": []}, ONE, "'instances' is empty"),
        ({"instances": {"x": [1, 2]}}, ONE, "'instances' must be a list"),
        ({"instances": [[1, 2], [3]]}, ONE, "instances are ragged for input 'x'"),
        ({"instances": [[1, 2], 3]}, ONE, "instances are ragged for input 'x'"),
        ({"instances": [[[1, 2]], [1, 2]]}, ONE, "instances are ragged"),
        ({"instances": ["a", ["b"]]}, TEXT, "instances are ragged for input 's'"),
        ({"inputs": [[1, 2], [3]]}, ONE, "input 'x' is ragged"),
        ({"instances": [{"x": [1, 2]}]}, TWO, "instance 0 lacks input 'k'"),
        ({"instances": [{"x": [1, 2], "k": 1}, {"x": [1, 2]}]}, TWO, "instance 1 lacks input 'k'"),
        ({"instances": [{"x": [1, 2], "k": 1, "z": 0}]}, TWO, "instance 0 has unknown input 'z'"),
        ({"instances": [{"x": [1, 2]}, [3, 4]]}, ONE, "instance 1 is not an object"),
        ({"instances": [[1, 2], {"x": [3, 4]}]}, ONE, "instance 1 is an object"),
        ({"instances": [[1, 2]]}, TWO, "plain list, but the model has several inputs"),
        ({"inputs": [[1, 2]]}, TWO, "plain value, but the model has several inputs"),
        ({"inputs": {"x": [[1, 2]]}}, TWO, "'inputs' lacks input 'k'"),
        ({"inputs": {"y": [[1, 2]]}}, ONE, "'inputs' has unknown input 'y'"),
        ({"signature_name": "predict", "instances": [[1, 2]]}, ONE,
         "unknown signature_name 'predict'"),
        ({"signature_name": 3, "instances": [[1, 2]]}, ONE, "'signature_name' must be a string"),
        ({"instances": [["a", "b"]]}, ONE, "the values are not FP32 numbers"),
        ({"instances": [[{"b64": "YQ=="}, 1]]}, ONE, "the values are not FP32 numbers"),
        ({"instances": [2**70]}, [{"name": "k", "datatype": "INT64"}], "not INT64 numbers"),
        ({"instances": [{"b64": "!!!"}]}, TEXT, "is not valid base64"),
        ({"instances": [3]}, TEXT, "BYTES values must be strings"),
        ({"instances": [{"b64": "YQ==", "x": 1}]}, TEXT, "instance 0 has unknown input 'b64'"),
        ({"inputs": nested(["a"], 64)}, TEXT, "nested more than 64 deep"),
    ],
)  # fmt: skip
def test_malformed_predict_requests_are_client_errors(
    document: Any, signature: list[dict[str, Any]], message: str
) -> None:
    body = json.dumps(document).encode()
    with pytest.raises(InvalidInput, match=message):
        decode_predict(body, signature)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "is empty"),
        (b" \n\t", "is empty"),
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object, not an array"),
        (b"\xff", "not valid JSON"),
    ],
)
def test_unparseable_bodies_are_client_errors(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_predict(body, ONE)


def test_empty_and_default_signature_names_are_accepted() -> None:
    for name in ("", "serving_default"):
        decode({"signature_name": name, "instances": [[1, 2]]})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "k", "s", "b64", "z"]), inner, max_size=3)
    ),
    max_leaves=10,
)
PREDICT_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "signature_name": st.sampled_from(["serving_default", "other"]) | JSON_VALUES,
        "instances": JSON_VALUES,
        "inputs": JSON_VALUES,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(PREDICT_LIKE, st.sampled_from([ONE, TWO, TEXT]))
def test_arbitrary_predict_requests_fail_only_with_client_errors(
    document: dict[str, Any], signature: list[dict[str, Any]]
) -> None:
    try:
        decode_predict(json.dumps(document).encode(), signature)
    except MaasError as exc:
        assert isinstance(exc, InvalidInput) and str(exc)


# --------------------------------------------------------------- responses
PROBS = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
LABEL = np.array([1, 0], np.int64)


def test_single_output_row_form_is_a_bare_list() -> None:
    answer = encode_predict(result(Tensor("probs", "FP32", PROBS)), "row")
    assert strict_json(answer) == {"predictions": [[0.25, 0.75], [0.5, 0.5]]}


def test_single_output_columnar_form_is_a_bare_value() -> None:
    answer = encode_predict(result(Tensor("probs", "FP32", PROBS)), "columnar")
    assert strict_json(answer) == {"outputs": [[0.25, 0.75], [0.5, 0.5]]}


def test_several_outputs_row_form_is_one_object_per_row() -> None:
    answer = encode_predict(
        result(Tensor("probs", "FP32", PROBS), Tensor("label", "INT64", LABEL)), "row"
    )
    assert strict_json(answer) == {
        "predictions": [
            {"probs": [0.25, 0.75], "label": 1},
            {"probs": [0.5, 0.5], "label": 0},
        ]
    }


def test_several_outputs_columnar_form_is_keyed_by_name() -> None:
    answer = encode_predict(
        result(Tensor("probs", "FP32", PROBS), Tensor("label", "INT64", LABEL)), "columnar"
    )
    assert strict_json(answer) == {
        "outputs": {"probs": [[0.25, 0.75], [0.5, 0.5]], "label": [1, 0]}
    }


def test_row_form_cannot_return_scalars_or_mismatched_batches() -> None:
    with pytest.raises(InvalidInput, match="scalar.*columnar form"):
        encode_predict(result(Tensor("y", "FP32", np.array(1.0, np.float32))), "row")
    with pytest.raises(InvalidInput, match="has 3 rows, the others 2.*columnar form"):
        encode_predict(
            result(Tensor("a", "INT64", LABEL), Tensor("b", "INT64", np.zeros(3, np.int64))), "row"
        )
    # Columnar form carries them fine.
    answer = encode_predict(
        result(Tensor("a", "INT64", LABEL), Tensor("b", "FP32", np.array(1.0, np.float32))),
        "columnar",
    )
    assert answer == {"outputs": {"a": [1, 0], "b": 1.0}}


def test_non_finite_outputs_are_strings() -> None:
    values = np.array([[np.nan, np.inf, -np.inf]], np.float64)
    answer = strict_json(encode_predict(result(Tensor("y", "FP64", values)), "row"))
    assert answer == {"predictions": [["NaN", "Infinity", "-Infinity"]]}


def test_fp16_and_bool_outputs_are_plain_json() -> None:
    answer = encode_predict(
        result(
            Tensor("h", "FP16", np.array([0.5, 0.1], np.float16)),
            Tensor("b", "BOOL", np.array([True, False])),
        ),
        "columnar",
    )
    outputs = strict_json(answer)["outputs"]
    assert (
        np.asarray(outputs["h"], np.float16).tobytes() == np.array([0.5, 0.1], np.float16).tobytes()
    )
    assert outputs["b"] == [True, False]


def test_bytes_outputs_are_text_or_b64() -> None:
    text = np.array([["a", b"\xff"]], dtype=object)
    raw = np.array([b"a"], dtype=object)
    answer = encode_predict(
        result(Tensor("labels", "BYTES", text), Tensor("image_bytes", "BYTES", raw)), "columnar"
    )
    assert strict_json(answer) == {
        "outputs": {
            "labels": [["a", {"b64": "/w=="}]],
            "image_bytes": [{"b64": "YQ=="}],  # the _bytes suffix: always base64, as TF does
        }
    }


def test_round_trip_row_form_through_encode() -> None:
    request, form = decode_predict(b'{"instances": [[1, 2], [3, 4]]}', ONE)
    answer = encode_predict(result(Tensor("y", "FP32", request.inputs[0].array * 2)), form)
    assert answer == {"predictions": [[2.0, 4.0], [6.0, 8.0]]}


# ---------------------------------------------------------------- metadata
def test_model_status() -> None:
    assert model_status([3, 4]) == {
        "model_version_status": [
            {
                "version": "3",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "4",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
        ]
    }


def test_model_metadata_mimics_signature_def() -> None:
    document = model_metadata(
        "digits",
        5,
        [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        [
            {"name": "probs", "datatype": "FP16", "shape": [-1, 10]},
            {"name": "s", "datatype": "BYTES", "shape": []},
        ],
    )
    assert document["model_spec"] == {"name": "digits", "signature_name": "", "version": "5"}
    signature = document["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["x"] == {
        "dtype": "DT_FLOAT",
        "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}, {"size": "64", "name": ""}],
            "unknown_rank": False,
        },
        "name": "x",
    }
    assert signature["outputs"]["probs"]["dtype"] == "DT_HALF"
    assert signature["outputs"]["s"]["dtype"] == "DT_STRING"
    assert signature["outputs"]["s"]["tensor_shape"]["dim"] == []
    strict_json(document)
