"""numpy arrays → JSON values, shared by both REST protocols.

Decision on non-finite floats: NaN, +Inf and -Inf are written as the JSON
*strings* ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. Triton and TF Serving
write them as bare ``NaN``/``Infinity`` tokens, which are not JSON and break
strict parsers (browsers' ``JSON.parse``, Go, Java). ``null`` would be valid but
loses which value it was. The strings keep it, and read back unchanged with
``float(s)`` or ``numpy.asarray(data, dtype=...)``, which is what
``tritonclient``'s ``as_numpy`` does; both decoders here accept them too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas.datatypes import numpy_dtype
from maas.errors import ServerFault

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"


def numeric_values(array: np.ndarray[Any, Any], datatype: str) -> Any:
    """Nested lists (or a scalar) of the array's values as ``datatype``.

    ``tolist`` does the conversion in C; floats come out as Python floats
    holding exactly the FP16/FP32 value, so a reader casting back gets the
    same bits.
    """
    typed = array.astype(numpy_dtype(datatype), copy=False)
    if typed.dtype.kind != "f" or bool(np.isfinite(typed).all()):
        return typed.tolist()
    boxed = typed.astype(object)
    boxed[np.isnan(typed)] = NAN
    boxed[np.isposinf(typed)] = POS_INF
    boxed[np.isneginf(typed)] = NEG_INF
    return boxed.tolist()


def json_values(array: np.ndarray[Any, Any], datatype: str) -> Any:
    """What :func:`numeric_values` gives, left as numpy for :func:`maas.protocol.jsonbody.dumps`.

    The same numbers come out without a Python object per element: floats are
    widened to float64 (exact for FP16/FP32), so each prints as the shortest
    text that reads back as that double, which is what ``json.dumps`` of
    ``tolist()`` printed (``0.1`` as FP32 is ``0.10000000149011612``); a client
    casting back gets the same bits. Non-finite values need strings, so such
    arrays take the list path.
    """
    typed = array.astype(numpy_dtype(datatype), copy=False)
    if typed.dtype.kind == "f":
        if not bool(np.isfinite(typed).all()):
            return numeric_values(typed, datatype)
        typed = typed.astype(np.float64, copy=False)
    if typed.ndim == 0:
        return typed.item()
    return np.ascontiguousarray(typed)


def bytes_elements(array: np.ndarray[Any, Any]) -> list[bytes]:
    """The elements of a BYTES tensor as bytes, row-major.

    onnxruntime returns ``str`` for string tensors while decoded requests hold
    ``bytes``; text is encoded as UTF-8 (``surrogatepass``, so that no string a
    model can produce makes encoding fail).
    """
    out: list[bytes] = []
    for value in array.reshape(-1).tolist():
        if isinstance(value, bytes):
            out.append(value)
        elif isinstance(value, str):
            out.append(value.encode("utf-8", "surrogatepass"))
        else:
            raise ServerFault(f"a BYTES tensor holds a {type(value).__name__}, not bytes or str")
    return out


def utf8_or_none(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def binary_bytes_tensor(elements: list[bytes]) -> bytes:
    """The binary tensor data layout of BYTES: each element as 4-byte LE length + bytes."""
    return b"".join(len(e).to_bytes(4, "little") + e for e in elements)


def object_array(values: list[Any], shape: list[int]) -> np.ndarray[Any, Any]:
    """An object array of ``values`` in ``shape``, element by element (no sequence guessing)."""
    array = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        array[index] = value
    return array.reshape(shape)
