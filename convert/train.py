"""``maas train-example``: train the reference model that the rest of maas is shown with.

Flatten → Dense(128, relu) → Dropout(0.2) → Dense(10, softmax), fitted with Adam
on sparse categorical cross-entropy, the way users typically train. Its input
is named ``input`` and its output ``probabilities``, and the ONNX conversion
keeps those names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput
from maas.onnxfile import file_sha256

from .lineage import library_versions
from .progress import Reporter
from .sources import TRAINING_FILE

DATASETS = ("digits", "mnist")
DEFAULT_EPOCHS = {"digits": 30, "mnist": 5}
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
ARCHITECTURE = "Flatten -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax)"
#: Fractions of digits held out for evaluation and for calibration (disjoint splits).
DIGITS_EVAL, DIGITS_CALIB = 0.2, 0.1
MNIST_CALIB = 1000


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_calib: np.ndarray
    y_calib: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    source: dict[str, Any]


@dataclass(frozen=True)
class TrainResult:
    out: Path
    model: Path
    eval_data: Path
    calib_data: Path
    settings: dict[str, Any]
    #: The split the model was fitted on (for pruning's fine-tune and for distillation).
    train_data: Path | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "eval_data": str(self.eval_data),
            "calib_data": str(self.calib_data),
            "train_data": None if self.train_data is None else str(self.train_data),
            "settings": self.settings,
        }


def digits_splits(seed: int) -> Splits:
    """scikit-learn's bundled 8x8 digits (offline), split stratified into train/calib/eval."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_rest, x_eval, y_rest, y_eval = train_test_split(
        x, y, test_size=DIGITS_EVAL, stratify=y, random_state=seed
    )
    x_train, x_calib, y_train, y_calib = train_test_split(
        x_rest,
        y_rest,
        test_size=DIGITS_CALIB / (1 - DIGITS_EVAL),
        stratify=y_rest,
        random_state=seed,
    )
    return Splits(
        x_train,
        y_train,
        x_calib,
        y_calib,
        x_eval,
        y_eval,
        {"name": "digits", "origin": "sklearn.datasets.load_digits"},
    )


def mnist_splits(data: Path | None, seed: int) -> Splits:
    """MNIST in Keras' layout: a local ``mnist.npz`` (``--data``) or Keras' downloader."""
    if data is not None:
        if not data.is_file():
            raise InvalidInput(f"--data {data}: no such file")
        try:
            with np.load(data, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except KeyError as exc:
            raise InvalidInput(
                f"--data {data} is not MNIST in Keras' layout: missing "
                f"{exc.args[0]!r} (want x_train, y_train, x_test, y_test)"
            ) from exc
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidInput(f"--data {data} is not a readable .npz: {exc}") from exc
        origin: dict[str, Any] = {
            "name": "mnist",
            "origin": data.name,
            "sha256": file_sha256(data)[0],
        }
    else:
        from .tfimport import keras as import_keras

        try:
            (xtr, ytr), (xte, yte) = import_keras().datasets.mnist.load_data()
        except Exception as exc:  # offline: URLError, OSError, or Keras' own wrapper
            raise InvalidInput(
                "could not download MNIST (is this machine offline?); pass a "
                f"local copy with --data mnist.npz: {exc}"
            ) from exc
        arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
        origin = {"name": "mnist", "origin": "keras.datasets.mnist"}
    for key in ("x_train", "x_test"):
        if arrays[key].ndim != 3 or arrays[key].dtype.kind not in "uif":
            raise InvalidInput(f"--data: {key} must be numeric images shaped (n, height, width)")
    if len(arrays["x_train"]) <= 1:
        raise InvalidInput("--data: x_train needs more than one sample")

    def scale(images: np.ndarray) -> np.ndarray:
        images = images.astype(np.float32)
        return images / 255.0 if images.max(initial=0.0) > 1.0 else images

    order = np.random.default_rng(seed).permutation(len(arrays["x_train"]))
    calib = order[: min(MNIST_CALIB, len(order) // 5 or 1)]
    train = order[len(calib) :]
    x_train, y_train = scale(arrays["x_train"]), arrays["y_train"].astype(np.int64)
    return Splits(
        x_train[train],
        y_train[train],
        x_train[calib],
        y_train[calib],
        scale(arrays["x_test"]),
        arrays["y_test"].astype(np.int64),
        origin,
    )


def build_model(input_shape: tuple[int, ...], classes: int = 10) -> Any:
    from .tfimport import keras as import_keras

    keras = import_keras()
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape, name="input"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(128, activation="relu", name="hidden"),
            keras.layers.Dropout(0.2, name="dropout"),
            keras.layers.Dense(classes, activation="softmax", name="probabilities"),
        ],
        name="reference_mlp",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_example(
    out: Path,
    dataset: str = "digits",
    data: Path | None = None,
    epochs: int | None = None,
    seed: int = 0,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train the reference model and write ``model.keras``, ``train.npz``, ``eval.npz``,
    ``calib.npz`` and ``training.json`` (the settings, for lineage) into ``out``."""
    reporter = reporter or Reporter(enabled=False)
    if dataset not in DATASETS:
        raise InvalidInput(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    if data is not None and dataset != "mnist":
        raise InvalidInput("--data is only for --dataset mnist (digits ships with scikit-learn)")
    epochs = DEFAULT_EPOCHS[dataset] if epochs is None else epochs
    if epochs < 1:
        raise InvalidInput(f"--epochs {epochs}: train for at least one epoch")
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out} exists and is not a directory")

    splits = digits_splits(seed) if dataset == "digits" else mnist_splits(data, seed)
    from .tfimport import keras as import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    model = build_model(tuple(splits.x_train.shape[1:]))

    with reporter.bar(epochs, f"training on {dataset}", "epoch") as progress:
        callbacks = []
        if progress is not None:
            update = progress

            class Progress(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
                def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                    update(1)

            callbacks.append(Progress())
        history = model.fit(
            splits.x_train,
            splits.y_train,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
    eval_loss, eval_accuracy = model.evaluate(splits.x_eval, splits.y_eval, verbose=0)

    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.keras"
    model.save(model_path)
    eval_path, calib_path = out / "eval.npz", out / "calib.npz"
    train_path = out / "train.npz"
    np.savez_compressed(eval_path, x=splits.x_eval, y=splits.y_eval)
    np.savez_compressed(calib_path, x=splits.x_calib, y=splits.y_calib)
    np.savez_compressed(train_path, x=splits.x_train, y=splits.y_train)
    versions = library_versions()
    settings = {
        "dataset": splits.source,
        "epochs": epochs,
        "seed": seed,
        "batch_size": BATCH_SIZE,
        "optimizer": "adam",
        "learning_rate": LEARNING_RATE,
        "loss": "sparse_categorical_crossentropy",
        "architecture": ARCHITECTURE,
        "final_accuracy": float(history.history["accuracy"][-1]),
        "final_loss": float(history.history["loss"][-1]),
        "eval_accuracy": float(eval_accuracy),
        "eval_loss": float(eval_loss),
        "samples": {
            "train": len(splits.x_train),
            "calib": len(splits.x_calib),
            "eval": len(splits.x_eval),
        },
        # Disjoint splits: train.npz is what the model was fitted on, never evaluated on.
        "files": {"train": train_path.name, "calib": calib_path.name, "eval": eval_path.name},
        "labels": [str(i) for i in range(10)],
        "libraries": {k: versions[k] for k in ("tensorflow", "keras") if k in versions},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    (out / TRAINING_FILE).write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
    return TrainResult(out, model_path, eval_path, calib_path, settings, train_path)
