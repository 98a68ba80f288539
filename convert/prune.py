"""Magnitude pruning of a Keras model: every Dense and Conv kernel, per layer, to a target
sparsity, on a polynomial schedule over a short fine-tune.

tensorflow-model-optimization does not work on Keras 3 models (its
``prune_low_magnitude`` refuses a Keras 3 ``Sequential``, tensorflow/model-optimization
issue 1119) and importing it switches the whole process to legacy Keras, so this is
the same method, written natively: tfmot's ``PolynomialDecay`` schedule (power 3,
from 0 to the target), masks recomputed every few steps and reapplied after every
batch, and fixed once the target is reached, so pruned weights stay exactly zero.
Without training data it is one-shot pruning (no fine-tune) and the gate decides.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput

from .data import Dataset
from .progress import Reporter

DEFAULT_FINE_TUNE_EPOCHS = 10
FINE_TUNE_BATCH = 32
#: Masks are recomputed this often (in steps) until the schedule ends.
MASK_FREQUENCY = 10
#: The schedule reaches the target sparsity after this fraction of the fine-tune.
SCHEDULE_FRACTION = 0.7
_PRUNABLE = ("Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D")


def parse_sparsities(text: str) -> list[float]:
    """``--prune 0.5,0.8``: each strictly between 0 and 1, no repeats."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise InvalidInput(f"invalid --prune {part!r}: a sparsity between 0 and 1") from None
        if not 0.0 < value < 1.0:
            raise InvalidInput(
                f"invalid --prune {part!r}: sparsity must be strictly between 0 and 1"
            )
        if value in values:
            raise InvalidInput(f"--prune lists {part} twice")
        values.append(value)
    return values


@dataclass(frozen=True)
class Pruned:
    sparsity: float
    path: Path  # the pruned .keras model
    fine_tune_epochs: int  # 0 for one-shot pruning


def prunable_kernels(model: Any) -> list[Any]:
    """The kernel variables pruning touches: every Dense and Conv layer's, output included."""
    kernels = []
    for layer in _layers(model):
        if type(layer).__name__ in _PRUNABLE:
            for attribute in ("kernel", "depthwise_kernel", "pointwise_kernel"):
                kernel = getattr(layer, attribute, None)
                if kernel is not None:
                    kernels.append(kernel)
    return kernels


def _layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found += _layers(layer) if hasattr(layer, "layers") else [layer]
    return found


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """Zeros on exactly ``round(sparsity * size)`` smallest-magnitude weights."""
    count = round(sparsity * weights.size)
    mask = np.ones(weights.size, dtype=weights.dtype)
    if count:
        mask[np.argsort(np.abs(weights), axis=None, kind="stable")[:count]] = 0
    return mask.reshape(weights.shape)


def polynomial_sparsity(step: int, end_step: int, target: float, power: int = 3) -> float:
    """tfmot's PolynomialDecay from 0 (begin step 0) to ``target`` at ``end_step``."""
    progress = min(1.0, step / end_step) if end_step > 0 else 1.0
    return target + (0.0 - target) * (1.0 - progress) ** power


def prune_model(
    source: Path,
    sparsity: float,
    out: Path,
    train: Dataset | None,
    epochs: int,
    reporter: Reporter,
) -> Pruned:
    """Prune the Keras model at ``source`` and save it to ``out`` (a .keras file)."""
    from .tfimport import keras as import_keras

    keras = import_keras()
    model = keras.models.load_model(source, compile=True, safe_mode=True)
    kernels = prunable_kernels(model)
    if not kernels:
        raise InvalidInput(f"{source} has no Dense or Conv layer to prune")
    if train is None or epochs == 0:
        for kernel in kernels:
            weights = np.asarray(kernel.numpy())
            kernel.assign(weights * magnitude_mask(weights, sparsity))
        model.save(out)
        return Pruned(sparsity, out, 0)
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        # A model saved without compile() carries no optimizer or loss of its own.
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    if train.labels is None:
        raise InvalidInput("--train-data needs labels 'y' to fine-tune a pruned model")
    classes = int(model.outputs[0].shape[-1] or 0)
    if classes and (int(train.labels.min()) < 0 or int(train.labels.max()) >= classes):
        raise InvalidInput(
            f"--train-data labels run from {int(train.labels.min())} to "
            f"{int(train.labels.max())}; the model has {classes} classes"
        )
    labels: np.ndarray = train.labels
    loss_name = str(getattr(model.loss, "name", model.loss)).lower()
    if "categorical" in loss_name and "sparse" not in loss_name and classes:
        labels = np.eye(classes, dtype=np.float32)[train.labels]  # the loss wants one-hot
    features = list(train.feeds.values())
    inputs: Any = features[0] if len(features) == 1 else features
    steps = epochs * -(-len(train) // FINE_TUNE_BATCH)
    callback = _mask_callback(keras, kernels, sparsity, int(steps * SCHEDULE_FRACTION))
    with reporter.bar(epochs, f"fine-tuning at sparsity {sparsity:g}", "epoch") as progress:
        callbacks = [callback]
        if progress is not None:
            update = progress

            class Progress(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
                def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                    update(1)

            callbacks.append(Progress())
        try:
            model.fit(
                inputs,
                labels,
                epochs=epochs,
                batch_size=FINE_TUNE_BATCH,
                shuffle=True,
                verbose=0,
                callbacks=callbacks,
            )
        except (ValueError, TypeError) as exc:  # Keras' words for data that does not fit
            text = " ".join(str(exc).split())[:300]
            raise InvalidInput(f"fine-tuning on --train-data failed: {text}") from None
    callback.apply()  # the final weights carry the final masks exactly
    model.save(out)
    return Pruned(sparsity, out, epochs)


def _mask_callback(keras: Any, kernels: Sequence[Any], target: float, end_step: int) -> Any:
    class MagnitudePruning(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.masks: list[np.ndarray] | None = None

        def _update_masks(self) -> None:
            current = polynomial_sparsity(self.step, end_step, target)
            self.masks = [magnitude_mask(np.asarray(k.numpy()), current) for k in kernels]

        def apply(self) -> None:
            if self.masks is None:
                self._update_masks()
            assert self.masks is not None
            for kernel, mask in zip(kernels, self.masks, strict=True):
                kernel.assign(np.asarray(kernel.numpy()) * mask)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            # Until the target is reached, masks follow the weights; then they stay.
            if self.step <= end_step and (self.step % MASK_FREQUENCY == 0 or self.step == end_step):
                self._update_masks()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.apply()
            self.step += 1

    return MagnitudePruning()


def measured_sparsity(onnx_path: Path) -> float:
    """The fraction of exact zeros in the ONNX file's kernels (float initializers of
    rank 2 and above: Dense and Conv weights; biases and shapes are not counted)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_model(str(onnx_path))
    zeros = total = 0
    for initializer in model.graph.initializer:
        array = numpy_helper.to_array(initializer)
        if array.ndim >= 2 and array.dtype.kind == "f":
            zeros += int(np.count_nonzero(array == 0))
            total += array.size
    return zeros / total if total else 0.0


def gzip_bytes(path: Path) -> int:
    """What the file costs to store and move, compressed: pruning shows here, not in
    the raw size (dense initializers keep every zero)."""
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
