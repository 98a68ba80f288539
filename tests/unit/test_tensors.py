from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maas.errors import InvalidInput
from maas.tensors import tensor_from_bytes, tensor_from_data


def test_nested_and_flat_data_give_the_same_tensor() -> None:
    nested = tensor_from_data("x", "FP32", [2, 2], [[1, 2], [3, 4]])
    flat = tensor_from_data("x", "FP32", [2, 2], [1, 2, 3, 4])
    np.testing.assert_array_equal(nested.array, flat.array)
    assert nested.array.dtype == np.float32 and nested.shape == [2, 2]


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("FP32", [2], [1.0], "needs 2 elements, data has 1"),
        ("FP32", [2], [[1.0], [2.0, 3.0]], "not a regular array"),
        ("FP32", [2], ["a", "b"], "not a regular array"),
        ("UINT8", [1], [300], "not a regular array"),
        ("FP32", [-1], [1.0], "shape must be a list of non-negative integers"),
        ("FP32", "2", [1.0, 2.0], "shape must be a list"),
        ("FLOAT", [1], [1.0], "unknown datatype 'FLOAT'"),
        ("BYTES", [1], [3], "BYTES data must be strings"),
    ],
)
def test_bad_json_tensors_are_client_errors(
    datatype: str, shape: object, data: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        tensor_from_data("x", datatype, shape, data)  # type: ignore[arg-type]


@given(
    hnp.arrays(
        dtype=st.sampled_from(
            [np.float32, np.float64, np.int64, np.uint8, np.int8, np.float16, np.bool_]
        ),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    )
)
def test_binary_tensors_round_trip(array: np.ndarray) -> None:
    from maas.datatypes import v2_from_numpy

    datatype = v2_from_numpy(array.dtype)
    raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
    tensor = tensor_from_bytes("x", datatype, list(array.shape), raw)
    np.testing.assert_array_equal(tensor.array, array)
    assert tensor.array.dtype == array.dtype


def test_binary_size_must_match_shape() -> None:
    with pytest.raises(InvalidInput, match="needs 16 bytes, binary data has 12"):
        tensor_from_bytes("x", "FP32", [2, 2], b"\x00" * 12)


def test_binary_bytes_elements_are_length_prefixed() -> None:
    raw = b"".join(len(v).to_bytes(4, "little") + v for v in (b"hi", b"", b"there"))
    tensor = tensor_from_bytes("s", "BYTES", [3], raw)
    assert tensor.array.tolist() == [b"hi", b"", b"there"]
    with pytest.raises(InvalidInput, match="overruns"):
        tensor_from_bytes("s", "BYTES", [1], (10).to_bytes(4, "little") + b"abc")
    with pytest.raises(InvalidInput, match="needs 2 elements"):
        tensor_from_bytes("s", "BYTES", [2], raw[:6])


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([9223372036854775808, 0, 1], "is too large"),
        ([2**40, 2**40, 0], "is too large"),
        ([2**31, 0], "is too large"),
        ([1] * 65, "shape has 65 dimensions, over the limit of 64"),
        ([1] * 64 + [0], "over the limit of 64"),
        ([10**4300 - 1], "is too large"),
    ],
)
@pytest.mark.parametrize("binary", [False, True])
def test_shapes_numpy_cannot_take_are_client_errors(
    shape: list[int], message: str, binary: bool
) -> None:
    with pytest.raises(InvalidInput, match=message):
        if binary:
            tensor_from_bytes("x", "FP32", shape, b"")
        else:
            tensor_from_data("x", "FP32", shape, [])


def test_the_largest_shapes_allowed_still_reach_numpy() -> None:
    assert tensor_from_data("x", "FP32", [2**31 - 1, 0], []).shape == [2**31 - 1, 0]
    assert tensor_from_bytes("x", "FP32", [1] * 64, b"\x00" * 4).shape == [1] * 64


def test_a_shape_in_an_error_is_cut_short() -> None:
    with pytest.raises(InvalidInput) as caught:
        tensor_from_data("x", "FP32", [1.5] * 10_000, [])
    assert len(str(caught.value)) < 200


def test_json_strings_with_lone_surrogates_are_kept_as_bytes_for_the_check() -> None:
    tensor = tensor_from_data("s", "BYTES", [2], ["ok", "\ud800"])
    assert tensor.array.tolist() == [b"ok", b"\xed\xa0\x80"]  # refused later, naming "s"
