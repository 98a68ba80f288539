"""The onnxruntime feed: BYTES become str, exactly, or the request is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maas.errors import InvalidInput
from maas.serving.request_checks import utf8_text, validate_inputs
from maas.tensors import Tensor

SIGNATURE = [{"name": "text", "datatype": "BYTES", "shape": [-1, 2]}]


def texts(values: list[Any], shape: tuple[int, ...]) -> Tensor:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return Tensor("text", "BYTES", array.reshape(shape))


def feed(tensor: Tensor) -> np.ndarray:
    return validate_inputs([tensor], SIGNATURE, max_batch=8, nan_policy="reject")["text"]


def test_bytes_reach_onnxruntime_as_str_of_the_same_shape() -> None:
    fed = feed(texts([b"hi", "caf\u00e9".encode(), b"a\x00b", b""], (2, 2)))
    assert fed.dtype == object and fed.shape == (2, 2)
    assert fed.tolist() == [["hi", "café"], ["a\x00b", ""]]
    assert all(type(v) is str for v in fed.reshape(-1))


@given(st.lists(st.text(), min_size=2, max_size=8).filter(lambda v: len(v) % 2 == 0))
def test_any_utf8_text_survives_exactly(values: list[str]) -> None:
    tensor = texts([v.encode() for v in values], (len(values) // 2, 2))
    assert utf8_text(tensor).reshape(-1).tolist() == values


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff", "invalid start byte at byte 0"),
        (b"ok\xc3(", "invalid continuation byte at byte 2"),
        ("\ud800".encode("utf-8", "surrogatepass"), "lone surrogate"),
        ("x\udfff", "lone surrogate"),
        (7, "a int, not text"),
    ],
)
def test_anything_but_utf8_is_refused_naming_the_tensor_and_element(
    value: Any, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        feed(texts([b"fine", value], (1, 2)))
    message = str(caught.value)
    assert message.startswith("input 'text': element 1 is not valid UTF-8 text")
    assert reason in message
