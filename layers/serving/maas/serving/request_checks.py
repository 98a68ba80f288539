"""Check a request against a model's signature before onnxruntime ever sees it.

Every failure is an :class:`InvalidInput` naming the tensor and the problem, so
a client's mistake can never surface as an onnxruntime exception or a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from maas.config import NanPolicy
from maas.errors import InvalidInput
from maas.tensors import Tensor


def _names(specs: Sequence[dict[str, Any]]) -> str:
    return ", ".join(repr(s["name"]) for s in specs)


def validate_inputs(
    tensors: Sequence[Tensor],
    signature: Sequence[dict[str, Any]],
    *,
    max_batch: int,
    nan_policy: NanPolicy,
) -> dict[str, np.ndarray[Any, Any]]:
    """Return the onnxruntime feed for ``tensors`` or raise naming the first problem."""
    expected = {spec["name"]: spec for spec in signature}
    feed: dict[str, np.ndarray[Any, Any]] = {}
    for tensor in tensors:
        spec = expected.get(tensor.name)
        if spec is None:
            raise InvalidInput(
                f"unknown input {tensor.name!r}; the model takes {_names(signature)}"
            )
        if tensor.name in feed:
            raise InvalidInput(f"input {tensor.name!r} is given more than once")
        _check_tensor(tensor, spec, max_batch, nan_policy)
        feed[tensor.name] = utf8_text(tensor) if tensor.datatype == "BYTES" else tensor.array
    missing = [name for name in expected if name not in feed]
    if missing:
        raise InvalidInput(
            f"missing input {', '.join(map(repr, missing))}; the model takes {_names(signature)}"
        )
    return feed


def _check_tensor(
    tensor: Tensor, spec: dict[str, Any], max_batch: int, nan_policy: NanPolicy
) -> None:
    name = tensor.name
    if tensor.datatype != spec["datatype"]:
        raise InvalidInput(
            f"input {name!r} has datatype {tensor.datatype}; the model expects {spec['datatype']}"
        )
    shape, wanted = tensor.shape, spec["shape"]
    if len(shape) != len(wanted):
        raise InvalidInput(
            f"input {name!r} has shape {shape} (rank {len(shape)}); the model expects "
            f"{wanted} (rank {len(wanted)}, -1 = any size)"
        )
    for axis, (got, want) in enumerate(zip(shape, wanted, strict=True)):
        if want != -1 and got != want:
            raise InvalidInput(
                f"input {name!r} has shape {shape}; dimension {axis} must be {want} "
                f"(the model expects {wanted})"
            )
    if wanted and wanted[0] == -1 and shape[0] > max_batch:
        raise InvalidInput(
            f"input {name!r} has a batch of {shape[0]}, over the limit of {max_batch} "
            "(MAAS_MAX_BATCH)"
        )
    if wanted and shape[0] == 0:
        raise InvalidInput(f"input {name!r} has an empty batch")
    floating = tensor.array.dtype.kind == "f"
    if nan_policy == "reject" and floating and not np.isfinite(tensor.array).all():
        raise InvalidInput(
            f"input {name!r} contains NaN or Inf (rejected by MAAS_NAN_POLICY=reject)"
        )


def utf8_text(tensor: Tensor) -> np.ndarray[Any, Any]:
    """A BYTES tensor as onnxruntime must receive it: an object array of ``str``.

    onnxruntime's Python API turns a ``bytes`` element into text with ``str()``
    (``b"hi"`` reaches the model as ``"b'hi'"``) and has no way to take bytes
    that are not UTF-8, so elements are decoded here, strictly: anything that is
    not UTF-8 (including a lone surrogate sent as a JSON escape) is refused.
    """
    flat = tensor.array.reshape(-1).tolist()
    texts = np.empty(len(flat), dtype=object)
    for index, value in enumerate(flat):
        try:
            texts[index] = value.decode("utf-8") if isinstance(value, bytes) else _text(value)
        except (UnicodeError, TypeError) as exc:
            raise InvalidInput(
                f"input {tensor.name!r}: element {index} is not valid UTF-8 text "
                f"({_why_not_text(value, exc)}); onnxruntime takes only UTF-8 strings"
            ) from None
    return texts.reshape(tensor.array.shape)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a {type(value).__name__}, not text")
    value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
    return value


def _why_not_text(value: Any, exc: Exception) -> str:
    if isinstance(exc, TypeError):
        return str(exc)
    if isinstance(value, str) or _is_surrogate_text(value):
        return "it holds a lone surrogate, such as the JSON escape \\ud800"
    assert isinstance(exc, UnicodeDecodeError)
    return f"{exc.reason} at byte {exc.start}"


def _is_surrogate_text(value: bytes) -> bool:
    """Bytes that decode only when surrogates are let through: a JSON lone surrogate."""
    try:
        value.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def select_outputs(
    requested: Sequence[str] | None, signature: Sequence[dict[str, Any]]
) -> list[str]:
    """The outputs to compute: all of them, or the requested subset in the given order."""
    names = [spec["name"] for spec in signature]
    if requested is None:
        return names
    unknown = [r for r in requested if r not in names]
    if unknown:
        raise InvalidInput(
            f"unknown output {', '.join(map(repr, unknown))}; "
            f"the model produces {_names(signature)}"
        )
    if len(set(requested)) != len(requested):
        raise InvalidInput("an output is requested more than once")
    return list(requested)
