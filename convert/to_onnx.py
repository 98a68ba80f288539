"""Convert a :class:`~maas.convert.sources.Source` to an FP32 ONNX model with tf2onnx.

``tf2onnx.convert.from_keras`` raises KeyError on Keras 3 models, so Keras and
SavedModel sources go through ``tf2onnx.convert.from_function`` over a
``tf.function`` with an explicit input signature. That signature is also how
the ONNX model gets its names (sanitized source names) and a dynamic batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.errors import InvalidInput, ModelRefused

from .sources import Source

if TYPE_CHECKING:
    import onnx

#: The opset used unless --opset says otherwise: supported by tf2onnx 1.17 and
#: by every onnxruntime maas serves with.
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 18

#: The dim_param every converted model's first input and output dimension gets.
BATCH_DIM = "batch"


def check_opset(opset: int | None) -> int:
    value = DEFAULT_OPSET if opset is None else opset
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise InvalidInput(
            f"--opset {value} is not supported: tf2onnx "
            f"converts to opsets {MIN_OPSET} to {MAX_OPSET}"
        )
    return value


def converter_name(source: Source) -> str | None:
    """What turned the source into ONNX, for the manifest (None: it already was ONNX)."""
    if source.kind == "onnx":
        return None
    from importlib.metadata import version

    return f"tf2onnx {version('tf2onnx')}"


def convert(source: Source, out: Path, opset: int | None = None) -> Path:
    """Write the source as ONNX to ``out``; a conversion failure is :class:`ModelRefused`."""
    target = check_opset(opset)
    try:
        # tf2onnx's tflite path builds a tf.lite.Interpreter, whose deprecation
        # warning would otherwise land on the user's stderr.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if source.kind == "onnx":
                model = _from_onnx(source, opset)
            elif source.kind == "tflite":
                model = _from_tflite(source, target)
            else:
                model = _from_tensorflow(source, target)
    except (InvalidInput, ModelRefused):
        raise
    except Exception as exc:  # tf2onnx raises whatever the graph walk hits
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelRefused(f"could not convert {source.path} to ONNX: {text}") from exc
    finalize(model, source)
    import onnx

    onnx.save_model(model, str(out))
    return out


def _from_tensorflow(source: Source, opset: int) -> onnx.ModelProto:
    from .tfimport import tensorflow
    from .tfimport import tf2onnx as import_tf2onnx

    tf = tensorflow()
    tf2onnx = import_tf2onnx()
    signature = [
        tf.TensorSpec([None, *spec.shape[1:]], tf.as_dtype(spec.dtype), name=spec.name)
        for spec in source.inputs
    ]
    names = [spec.name for spec in source.outputs]

    if source.kind == "keras":
        keras_model = source.model

        def call(args: list[Any]) -> dict[str, Any]:
            result = keras_model(args if len(args) > 1 else args[0], training=False)
            return dict(zip(names, tf.nest.flatten(result), strict=True))
    else:
        _, saved_signature = source.model

        def call(args: list[Any]) -> dict[str, Any]:
            result = saved_signature(
                **{s.source_name: a for s, a in zip(source.inputs, args, strict=True)}
            )
            return {s.name: result[s.source_name] for s in source.outputs}

    @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
    def serve(*args: Any) -> dict[str, Any]:
        # tf.identity gives every output a node of its own, named after the dict key.
        return {name: tf.identity(t) for name, t in call(list(args)).items()}

    model: onnx.ModelProto
    model, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    return model


def _from_tflite(source: Source, opset: int) -> onnx.ModelProto:
    from .tfimport import native_stderr_silenced
    from .tfimport import tf2onnx as import_tf2onnx

    tf2onnx = import_tf2onnx()
    model: onnx.ModelProto
    with native_stderr_silenced():
        model, _ = tf2onnx.convert.from_tflite(str(source.path), opset=opset)
    rename(model, {s.source_name: s.name for s in [*source.inputs, *source.outputs]})
    return model


def _from_onnx(source: Source, opset: int | None) -> onnx.ModelProto:
    import onnx
    from onnx import version_converter

    model = onnx.load_model(str(source.path), load_external_data=False)
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and current != opset:
        model = version_converter.convert_version(model, opset)
    return model


def rename(model: onnx.ModelProto, mapping: Mapping[str, str]) -> None:
    """Rename values everywhere they appear: graph I/O, value_info, nodes and subgraphs."""
    mapping = {old: new for old, new in mapping.items() if old != new}
    if not mapping:
        return

    def visit(graph: onnx.GraphProto) -> None:
        for value in [*graph.input, *graph.output, *graph.value_info]:
            value.name = mapping.get(value.name, value.name)
        for node in graph.node:
            node.input[:] = [mapping.get(n, n) for n in node.input]
            node.output[:] = [mapping.get(n, n) for n in node.output]
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    visit(attribute.g)
                for sub in attribute.graphs:
                    visit(sub)

    visit(model.graph)


def finalize(model: onnx.ModelProto, source: Source) -> None:
    """Make the first dimension of every graph input and output the dynamic ``batch``."""
    import onnx

    for value in [*model.graph.input, *model.graph.output]:
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape") and len(tensor_type.shape.dim) > 0:
            first = tensor_type.shape.dim[0]
            first.Clear()
            first.dim_param = BATCH_DIM
    if not model.producer_name:
        model.producer_name = "maas"
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelRefused(
            f"the ONNX conversion of {source.path} fails the ONNX checker: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc
