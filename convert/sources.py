"""Load a model to convert: ``.keras``, a SavedModel directory, ``.tflite`` or ``.onnx``.

TensorFlow is imported only when a TensorFlow source is loaded.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput, ModelRefused
from maas.onnxfile import file_sha256

from .source_types import (
    FRAMEWORKS,
    ORT_DTYPES,
    REFERENCE_BATCH,
    SUFFIXES,
    SUPPORTED_FORMATS,
    TRAINING_FILE,
    IOSpec,
    Source,
    SourceKind,
    named_specs,
    sanitize,
    unique,
)

__all__ = [
    "FRAMEWORKS",
    "REFERENCE_BATCH",
    "TRAINING_FILE",
    "IOSpec",
    "Source",
    "SourceKind",
    "detect_kind",
    "load_source",
    "read_training",
    "sanitize",
    "source_sha256",
    "unique",
]


def detect_kind(path: Path) -> SourceKind:
    """Which kind of source ``path`` is, from its suffix or SavedModel layout."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise InvalidInput(
            f"{path} is a directory but not a SavedModel (no saved_model.pb); "
            f"maas converts {SUPPORTED_FORMATS}"
        )
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"{path}: unsupported format {path.suffix or '(no suffix)'!r}; "
            f"maas converts {SUPPORTED_FORMATS}"
        )
    return kind


def load_source(path: Path) -> Source:
    """Load ``path``; a broken or signature-less model is :class:`ModelRefused`."""
    kind = detect_kind(path)
    loader = {
        "keras": _load_keras,
        "savedmodel": _load_savedmodel,
        "tflite": _load_tflite,
        "onnx": _load_onnx,
    }[kind]
    source = loader(path)
    if not source.inputs:
        raise ModelRefused(
            f"{path} has no inputs: maas needs a model with a defined input "
            "signature (build a Keras model with keras.Input before saving)"
        )
    if not source.outputs:
        raise ModelRefused(f"{path} has no outputs")
    source.training = read_training(path)
    return source


def source_sha256(path: Path) -> str:
    """sha256 of a file; for a directory, of its sorted relative paths and their sha256s."""
    if path.is_file():
        return file_sha256(path)[0]
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{file_sha256(item)[0]}\n".encode())
    return digest.hexdigest()


def read_training(path: Path) -> dict[str, Any] | None:
    """The training settings saved beside (or inside, for a SavedModel) the source."""
    candidates = [path / TRAINING_FILE] if path.is_dir() else []
    candidates.append(path.parent / TRAINING_FILE)
    for candidate in candidates:
        if candidate.is_file():
            try:
                settings = json.loads(candidate.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                return None
            return settings if isinstance(settings, dict) else None
    return None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _load_keras(path: Path) -> Source:
    from .tfimport import keras as import_keras

    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelRefused(
            f"{path} is not a valid .keras file (not a zip archive); is it corrupt or truncated?"
        )
    keras = import_keras()
    try:
        # safe_mode refuses Lambda layers, which would run pickled code on load.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "model was never built": refused below
            model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises anything from ValueError to zipfile errors
        raise ModelRefused(f"{path} is not a loadable Keras model: {_first_line(exc)}") from exc
    try:
        tensors_in = list(model.inputs or [])
        tensors_out = list(model.outputs or [])
    except (AttributeError, ValueError):  # a model that was never built has no signature
        tensors_in, tensors_out = [], []

    def layer_name(tensor: Any, default: str) -> str:
        history = getattr(tensor, "_keras_history", None)
        return str(getattr(getattr(history, "operation", None), "name", None) or default)

    inputs = named_specs([(t.name, tuple(t.shape), t.dtype) for t in tensors_in], "input")
    outputs = named_specs(
        [
            (layer_name(t, f"output_{i}"), tuple(t.shape), t.dtype)
            for i, t in enumerate(tensors_out)
        ],
        "output",
        [s.name for s in inputs],
    )

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        args = [feeds[s.name] for s in inputs]
        result = model(args if len(args) > 1 else args[0], training=False)
        flat = tf.nest.flatten(result)
        return {spec.name: np.asarray(t) for spec, t in zip(outputs, flat, strict=True)}

    return Source(path, "keras", model, inputs, outputs, source_sha256(path), predict)


def _load_savedmodel(path: Path) -> Source:
    from .tfimport import tensorflow

    tf = tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ModelRefused(f"{path} is not a loadable SavedModel: {_first_line(exc)}") from exc
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if "serving_default" in signatures:
        signature = signatures["serving_default"]
    elif len(signatures) == 1:
        signature = next(iter(signatures.values()))
    else:
        raise ModelRefused(
            f"{path} has no serving_default signature (it has: "
            f"{', '.join(sorted(signatures)) or 'none'}); export it with "
            "model.export(...) or tf.saved_model.save(..., signatures=...)"
        )
    arg_specs = dict(sorted(signature.structured_input_signature[1].items()))
    out_specs = dict(sorted(signature.structured_outputs.items()))
    inputs = named_specs(
        [(k, tuple(s.shape), s.dtype.as_numpy_dtype) for k, s in arg_specs.items()], "input"
    )
    outputs = named_specs(
        [(k, tuple(s.shape), s.dtype.as_numpy_dtype) for k, s in out_specs.items()],
        "output",
        [s.name for s in inputs],
    )

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = signature(**{s.source_name: tf.constant(feeds[s.name]) for s in inputs})
        return {s.name: np.asarray(result[s.source_name]) for s in outputs}

    # Keep the loaded object alive: the signature holds only weak references to it.
    return Source(
        path, "savedmodel", (loaded, signature), inputs, outputs, source_sha256(path), predict
    )


def tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter when ai-edge-litert is installed, else the deprecated tf.lite one."""
    try:
        from ai_edge_litert import interpreter as lite  # type: ignore[import-not-found]
    except ImportError:
        from .tfimport import tensorflow

        lite = tensorflow().lite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        # Built-in kernels without the XNNPACK delegate: no "Created TensorFlow
        # Lite XNNPACK delegate" line on stderr.
        resolvers = getattr(lite, "OpResolverType", None) or lite.experimental.OpResolverType
        return lite.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )


def _load_tflite(path: Path) -> Source:
    try:
        interpreter = tflite_interpreter(path)
        interpreter.allocate_tensors()
    except Exception as exc:
        raise ModelRefused(f"{path} is not a loadable .tflite model: {_first_line(exc)}") from exc

    def shape(detail: Mapping[str, Any]) -> tuple[int | None, ...]:
        dims = detail.get("shape_signature", detail["shape"])
        return tuple(None if int(d) < 0 else int(d) for d in dims)

    in_details = interpreter.get_input_details()
    out_details = interpreter.get_output_details()
    inputs = named_specs([(d["name"], shape(d), d["dtype"]) for d in in_details], "input")
    outputs = named_specs(
        [(d["name"], shape(d), d["dtype"]) for d in out_details], "output", [s.name for s in inputs]
    )
    first = inputs[0].shape[0] if inputs and inputs[0].shape else None
    current: dict[int, tuple[int, ...]] = {}

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        resized = False
        for spec, detail in zip(inputs, in_details, strict=True):
            array = feeds[spec.name]
            if current.get(detail["index"]) != array.shape and first is None:
                interpreter.resize_tensor_input(detail["index"], list(array.shape))
                current[detail["index"]] = array.shape
                resized = True
        if resized:
            interpreter.allocate_tensors()
        for spec, detail in zip(inputs, in_details, strict=True):
            interpreter.set_tensor(detail["index"], feeds[spec.name])
        interpreter.invoke()
        return {
            spec.name: np.array(interpreter.get_tensor(detail["index"]))
            for spec, detail in zip(outputs, out_details, strict=True)
        }

    return Source(
        path,
        "tflite",
        interpreter,
        inputs,
        outputs,
        source_sha256(path),
        predict,
        fixed_batch=first,
    )


def _load_onnx(path: Path) -> Source:
    import onnxruntime as ort

    from maas.onnxfile import inspect_onnx

    inspect_onnx(path)  # refuses broken, hostile (external data) and input-less models
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def spec(arg: Any) -> IOSpec:
        dtype = ORT_DTYPES.get(arg.type)
        if dtype is None:
            raise ModelRefused(
                f"{path}: tensor {arg.name!r} has type {arg.type}, which maas "
                "cannot feed or compare"
            )
        dims = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or []))
        return IOSpec(arg.name, dims, np.dtype(dtype), arg.name)

    inputs = [spec(a) for a in session.get_inputs()]
    outputs = [spec(a) for a in session.get_outputs()]
    first = inputs[0].shape[0] if inputs[0].shape else None

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = session.run([s.name for s in outputs], feeds)
        return {s.name: np.asarray(r) for s, r in zip(outputs, results, strict=True)}

    return Source(
        path, "onnx", session, inputs, outputs, source_sha256(path), predict, fixed_batch=first
    )
