"""The response-size bounds are sound: never above what the encoders really write."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maas.datatypes import v2_from_numpy
from maas.errors import InvalidInput
from maas.protocol import response_size
from maas.protocol.tfserving import encode_predict
from maas.protocol.v2 import HEADER_LENGTH, encode_infer_response
from maas.tensors import InferenceResult, Tensor

NUMERIC = [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64, np.uint64, np.bool_]
NUMBERS = st.sampled_from(NUMERIC).flatmap(
    lambda dtype: hnp.arrays(
        dtype=dtype, shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)
    )
)


def strings(draw_bytes: list[bytes]) -> np.ndarray:
    array = np.empty(len(draw_bytes), dtype=object)
    array[:] = draw_bytes
    return array


TENSORS = NUMBERS.map(lambda a: Tensor("y", v2_from_numpy(a.dtype), a)) | st.lists(
    st.binary(max_size=6) | st.text(max_size=4).map(str.encode), max_size=6
).map(lambda values: Tensor("y", "BYTES", strings(values)))


@settings(max_examples=300)
@given(TENSORS)
def test_the_floor_never_exceeds_the_json_the_encoders_write(tensor: Tensor) -> None:
    result = InferenceResult("m", 1, [tensor])
    body, _ = encode_infer_response(result)
    v2_data = json.loads(body)["outputs"][0]["data"]
    tf_data = encode_predict(result, "columnar")["outputs"]
    floor = response_size.json_floor(tensor)
    assert floor <= len(json.dumps(v2_data, separators=(",", ":"))) - 2  # minus the brackets
    assert floor <= len(json.dumps(tf_data, separators=(",", ":")))
    assert response_size.smallest_body([tensor]) == (floor, False)


@settings(max_examples=300)
@given(TENSORS)
def test_the_binary_size_is_exact(tensor: Tensor) -> None:
    body, headers = encode_infer_response(InferenceResult("m", 1, [tensor]), {"y"})
    assert response_size.binary_size(tensor) == len(body) - int(headers[HEADER_LENGTH])
    assert response_size.smallest_body([tensor], {"y"}) == (response_size.binary_size(tensor), True)


def test_zeros_meet_the_floor_exactly() -> None:
    zeros = Tensor("y", "FP32", np.zeros(1000, np.float32))
    body, _ = encode_infer_response(InferenceResult("m", 1, [zeros]))
    data = json.dumps(json.loads(body)["outputs"][0]["data"], separators=(",", ":"))
    assert response_size.json_floor(zeros) == len(data) - 2


def test_check_counts_base64_for_binary_bodies() -> None:
    response_size.check(300, binary=False, gzip=False, limit=300, at_least=False)
    response_size.check(225, binary=True, gzip=False, limit=300, at_least=False)  # 300 in base64
    with pytest.raises(InvalidInput, match="would be 304 bytes, over Lambda's 300-byte"):
        response_size.check(226, binary=True, gzip=False, limit=300, at_least=False)
    with pytest.raises(InvalidInput, match="would be at least 301 bytes"):
        response_size.check(301, binary=False, gzip=False, limit=300, at_least=True)


def test_with_gzip_the_uncompressed_answer_is_capped() -> None:
    cap = response_size.GZIP_RAW_FACTOR * 300
    response_size.check(cap, binary=True, gzip=True, limit=300, at_least=True)
    with pytest.raises(InvalidInput, match=f"before gzip, over the {cap} bytes accepted"):
        response_size.check(cap + 1, binary=False, gzip=True, limit=300, at_least=True)
