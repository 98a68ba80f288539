"""Sample files (``.npz``) for drift: `maas drift --data` and `maas publish --reference-data`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput


def load_feeds(path: Path, inputs: list[dict[str, Any]], flag: str) -> dict[str, np.ndarray]:
    """The arrays of ``path`` for the model's inputs (``x`` for one input), shape-checked."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InvalidInput(f"{flag} {path} is not an .npz archive (np.savez writes one)")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise InvalidInput(f"{flag} {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{flag} {path} is not a readable .npz: {exc}") from None
    feeds = {}
    for spec in inputs:
        keys = ["x", spec["name"]] if len(inputs) == 1 else [spec["name"]]
        key = next((k for k in keys if k in arrays), None)
        if key is None:
            raise InvalidInput(f"{flag} {path} has no array for input {spec['name']!r}")
        array = arrays[key]
        expected = spec["shape"][1:]
        if array.ndim != len(spec["shape"]) or any(
            e >= 0 and e != g for e, g in zip(expected, array.shape[1:], strict=True)
        ):
            raise InvalidInput(
                f"{flag} {path}[{key!r}] has shape {list(array.shape)}; input "
                f"{spec['name']!r} takes {spec['shape']} (-1 = any)"
            )
        if not array.shape[0]:
            raise InvalidInput(f"{flag} {path} holds no rows")
        feeds[spec["name"]] = array
    return feeds


def reference_from_file(
    model: Path, data: Path, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """``monitoring`` for `maas publish --reference-data`: the statistics of ``data``, and
    the model's top-1 distribution on it (run with onnxruntime)."""
    import onnxruntime as ort

    from maas.datatypes import numpy_dtype
    from maas.drift.reference import build_reference, feature_matrix
    from maas.onnxfile import file_sha256

    feeds = load_feeds(data, inputs, "--reference-data")
    features = feature_matrix(feeds, inputs)
    if features is None:
        raise InvalidInput("--reference-data: the model has no numeric input to watch")
    if not len(features):
        raise InvalidInput(f"--reference-data {data} holds no rows")
    if features.dtype.kind == "f" and not np.isfinite(features).all():
        raise InvalidInput(f"--reference-data {data} holds NaN or infinite values")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    typed = {s["name"]: feeds[s["name"]].astype(numpy_dtype(s["datatype"])) for s in inputs}
    scores = np.asarray(session.run([outputs[0]["name"]], typed)[0]) if outputs else None
    return {"reference": build_reference(features, scores, file_sha256(data)[0])}
