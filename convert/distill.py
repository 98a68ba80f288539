"""`maas distill`: a smaller dense student trained on a teacher's soft labels.

The teacher's probabilities come from onnxruntime (a ``.keras`` teacher is
converted first; a registry teacher is its published, verified ONNX file), so
the student learns from exactly what serving answers. The loss is
``alpha·CE(hard) + (1-alpha)·T²·KL(soft_T ‖ student_T)``, Hinton et al.'s: the
soft targets are precomputed and packed beside the one-hot labels in ``y``, the
simplest route in Keras 3. The same student trained on hard labels alone is the
baseline the table shows, so the user sees what distillation bought.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidInput

from .lineage import DISTILL_FILE
from .progress import Reporter

DEFAULT_HIDDEN = (32,)
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.3
DEFAULT_EPOCHS = 120
BATCH_SIZE = 32


@dataclass(frozen=True)
class DistillOptions:
    teacher: str  # a .keras path, or NAME:V / NAME@ALIAS in --registry
    train_data: Path
    eval_data: Path
    out: Path
    hidden: Sequence[int] = DEFAULT_HIDDEN
    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    registry: str | None = None

    def check(self) -> None:
        if not self.hidden or any(width < 1 for width in self.hidden):
            raise InvalidInput("--hidden lists the student's hidden layer widths, each >= 1")
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise InvalidInput(f"--temperature {self.temperature:g} must be > 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise InvalidInput(f"--alpha {self.alpha:g} must be between 0 and 1")
        if self.epochs < 1:
            raise InvalidInput("--epochs must be at least 1")
        for name in ("model.keras", DISTILL_FILE):
            if (self.out / name).exists():
                raise InvalidInput(
                    f"{self.out / name} already exists; choose another --out (maas "
                    "overwrites nothing it did not create in this run)"
                )


@dataclass(frozen=True)
class Teacher:
    onnx: Path
    sha256: str
    reference: str
    registry_version: int | None
    parameters: int


@dataclass(frozen=True)
class Figures:
    name: str
    parameters: int
    onnx_bytes: int
    accuracy: float
    latency_ms_b1: float
    latency_ms_b64: float

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "parameters": self.parameters,
            "onnx_bytes": self.onnx_bytes,
            "accuracy": self.accuracy,
            "latency_ms_b1": self.latency_ms_b1,
            "latency_ms_b64": self.latency_ms_b64,
        }


@dataclass(frozen=True)
class DistillResult:
    student: Path
    settings: dict[str, Any]
    rows: list[Figures]

    def as_json(self) -> dict[str, Any]:
        return {
            "student": str(self.student),
            "settings": self.settings,
            "rows": [r.as_json() for r in self.rows],
        }

    def table(self) -> str:
        lines = [
            f"{'MODEL':<22} {'PARAMETERS':>10} {'ONNX BYTES':>10} {'ACCURACY':>9} "
            f"{'P50 B1':>9} {'P50 B64':>9}"
        ]
        for r in self.rows:
            lines.append(
                f"{r.name:<22} {r.parameters:>10,} {r.onnx_bytes:>10,} {r.accuracy:>9.2%} "
                f"{r.latency_ms_b1:>7.3f}ms {r.latency_ms_b64:>7.3f}ms"
            )
        teacher, student, baseline = self.rows
        lines.append(
            f"distillation bought {(student.accuracy - baseline.accuracy) * 100:+.2f} points "
            f"over the same student on hard labels alone; the student is "
            f"{teacher.parameters / student.parameters:.1f}x smaller than the teacher"
        )
        lines.append(f"student: {self.student} (run `maas convert` on it)")
        return "\n".join(lines)


def parse_hidden(text: str) -> list[int]:
    widths = []
    for part in text.split(","):
        if not (part.isascii() and part.isdigit()) or not 0 < int(part) <= 1_000_000:
            raise InvalidInput(f"invalid --hidden {part!r}: layer widths are whole numbers >= 1")
        widths.append(int(part))
    return widths


def distill(options: DistillOptions, reporter: Reporter) -> DistillResult:
    from maas.onnxfile import file_sha256

    from . import quality_gate
    from .data import read_npz

    options.check()
    train_arrays = read_npz(options.train_data, "--train-data")
    eval_arrays = read_npz(options.eval_data, "--eval-data")
    with tempfile.TemporaryDirectory(prefix="maas-distill-") as tmp:
        work = Path(tmp)
        teacher = _teacher(options, work, reporter)
        teacher_session = quality_gate.session(teacher.onnx)
        specs = teacher_session.get_inputs()
        if len(specs) != 1:
            raise InvalidInput("the teacher has several inputs; distill takes one-input models")
        spec = specs[0]
        x_train, y_train = _xy(train_arrays, "--train-data", spec)
        x_eval, y_eval = _xy(eval_arrays, "--eval-data", spec)
        with reporter.step("the teacher's soft labels (onnxruntime)"):
            soft = _probabilities(teacher_session, x_train, "--train-data")
        classes = soft.shape[1]
        if int(max(y_train.max(), y_eval.max())) >= classes:
            raise InvalidInput(
                f"labels go up to {int(max(y_train.max(), y_eval.max()))}, but the teacher has "
                f"{classes} classes"
            )
        student_params = _dense_parameters(int(np.prod(x_train.shape[1:])), options.hidden, classes)
        if student_params >= teacher.parameters:
            raise InvalidInput(
                f"--hidden {','.join(map(str, options.hidden))} is wider than the teacher: the "
                f"student would have {student_params:,} parameters, the teacher has "
                f"{teacher.parameters:,}"
            )
        student = _train(options, x_train, y_train, soft, classes, reporter, distilled=True)
        baseline = _train(options, x_train, y_train, soft, classes, reporter, distilled=False)
        options.out.mkdir(parents=True, exist_ok=True)
        student_path = options.out / "model.keras"
        student.save(student_path)
        baseline_path = work / "baseline.keras"
        baseline.save(baseline_path)
        rows = [
            _figures("teacher", teacher.onnx, teacher.parameters, x_eval, y_eval),
            _figures(
                f"student {'-'.join(map(str, options.hidden))}",
                _to_onnx(student_path, work / "student.onnx"),
                student_params,
                x_eval,
                y_eval,
            ),
            _figures(
                "same, hard labels only",
                _to_onnx(baseline_path, work / "baseline.onnx"),
                student_params,
                x_eval,
                y_eval,
            ),
        ]
    settings = {
        "method": "knowledge-distillation",
        "teacher": {
            "reference": teacher.reference,
            "sha256": teacher.sha256,
            "registry_version": teacher.registry_version,
        },
        "hidden": list(options.hidden),
        "temperature": options.temperature,
        "alpha": options.alpha,
        "epochs": options.epochs,
        "seed": options.seed,
        "loss": "alpha*CE(hard) + (1-alpha)*T^2*KL(soft)",
        "train_data_sha256": file_sha256(options.train_data)[0],
        "eval_data_sha256": file_sha256(options.eval_data)[0],
        "figures": [r.as_json() for r in rows],
    }
    settings["student_sha256"] = file_sha256(student_path)[0]
    (options.out / DISTILL_FILE).write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
    return DistillResult(student_path, settings, rows)


def _teacher(options: DistillOptions, work: Path, reporter: Reporter) -> Teacher:
    from maas.onnxfile import file_sha256

    path = Path(options.teacher)
    if path.suffix.lower() in (".keras", ".h5"):
        if not path.is_file():
            raise InvalidInput(f"teacher {path} does not exist")
        with reporter.step(f"converting the teacher {path.name} with tf2onnx"):
            onnx_path = _to_onnx(path, work / "teacher.onnx")
        return Teacher(
            onnx_path, file_sha256(path)[0], str(path), None, _onnx_parameters(onnx_path)
        )
    from maas.names import ModelRef
    from maas.registry import open_registry

    ref = ModelRef.parse(options.teacher)
    if ref.version is None and ref.alias is None:
        raise InvalidInput(
            f"teacher {options.teacher!r}: give a .keras file, NAME:VERSION or NAME@ALIAS"
        )
    registry = open_registry(options.registry, must_exist=True)
    version = registry.resolve(ref)[0]
    onnx_path = work / "teacher.onnx"
    manifest = registry.fetch_model(ref.name, version, onnx_path)
    return Teacher(
        onnx_path,
        manifest["model"]["sha256"],
        f"{ref.name}:{version}",
        version,
        _onnx_parameters(onnx_path),
    )


def _to_onnx(keras_path: Path, out: Path) -> Path:
    from . import optimize
    from .sources import load_source
    from .to_onnx import convert

    converted = convert(load_source(keras_path), out.with_suffix(".raw.onnx"))
    return optimize.optimize_basic(converted, out)


def _onnx_parameters(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load_model(str(path))
    return sum(
        int(numpy_helper.to_array(i).size)
        for i in model.graph.initializer
        if numpy_helper.to_array(i).dtype.kind == "f"
    )


def _dense_parameters(features: int, hidden: Sequence[int], classes: int) -> int:
    widths = [features, *hidden, classes]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def _xy(arrays: dict[str, np.ndarray], what: str, spec: Any) -> tuple[np.ndarray, np.ndarray]:
    if "x" not in arrays or "y" not in arrays:
        raise InvalidInput(f"{what} needs arrays x and y (labels); it has {', '.join(arrays)}")
    x, y = arrays["x"], arrays["y"]
    expected = [d if isinstance(d, int) else -1 for d in spec.shape[1:]]
    if list(x.shape[1:]) != [e if e >= 0 else x.shape[1 + i] for i, e in enumerate(expected)]:
        raise InvalidInput(
            f"{what}['x'] has rows of shape {list(x.shape[1:])}; the teacher takes "
            f"{expected} (-1 = any)"
        )
    if y.shape != (len(x),) or y.dtype.kind not in "iu" or (len(y) and int(y.min()) < 0):
        raise InvalidInput(f"{what}['y'] must be {len(x)} integer class labels, each >= 0")
    return x.astype(np.float32), y.astype(np.int64)


def _probabilities(session: Any, x: np.ndarray, what: str) -> np.ndarray:
    outputs = session.get_outputs()
    if len(outputs) != 1:
        raise InvalidInput("the teacher is not a classifier: it has several outputs")
    name = session.get_inputs()[0].name
    probabilities = np.concatenate(
        [session.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)]
    )
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise InvalidInput(
            f"the teacher is not a classifier: its output has shape {list(probabilities.shape)}"
        )
    if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3) or probabilities.min() < 0:
        raise InvalidInput(
            "the teacher is not a classifier: its outputs on "
            f"{what} are not probabilities (rows do not sum to 1; does it end in softmax?)"
        )
    return probabilities.astype(np.float32)


def _train(
    options: DistillOptions,
    x: np.ndarray,
    y: np.ndarray,
    teacher: np.ndarray,
    classes: int,
    reporter: Reporter,
    *,
    distilled: bool,
) -> Any:
    from .tfimport import keras as import_keras

    keras = import_keras()
    keras.utils.set_random_seed(options.seed)
    layers = [keras.Input(shape=x.shape[1:], name="input"), keras.layers.Flatten()]
    layers += [keras.layers.Dense(w, activation="relu") for w in options.hidden]
    layers.append(keras.layers.Dense(classes, activation="softmax", name="probabilities"))
    model = keras.Sequential(layers, name="student")
    temperature, alpha = options.temperature, options.alpha
    if distilled:
        ops = keras.ops
        log_teacher = np.log(np.clip(teacher, 1e-12, 1.0)) / temperature
        soft = np.exp(log_teacher - log_teacher.max(axis=1, keepdims=True))
        soft /= soft.sum(axis=1, keepdims=True)
        targets = np.concatenate([np.eye(classes, dtype=np.float32)[y], soft], axis=1)

        def loss(packed: Any, probabilities: Any) -> Any:
            hard, soft_t = packed[:, :classes], packed[:, classes:]
            p = ops.clip(probabilities, 1e-7, 1.0)
            # softmax(logits / T) from the probabilities: log p is logits up to a constant.
            student_t = ops.softmax(ops.log(p) / temperature, axis=-1)
            ce = -ops.sum(hard * ops.log(p), axis=-1)
            kl = ops.sum(
                soft_t
                * (ops.log(ops.clip(soft_t, 1e-7, 1.0)) - ops.log(ops.clip(student_t, 1e-7, 1.0))),
                axis=-1,
            )
            return alpha * ce + (1.0 - alpha) * temperature**2 * kl

        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        fit_y: np.ndarray = targets
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        fit_y = y
    label = "distilling the student" if distilled else "training the baseline (hard labels)"
    with reporter.bar(options.epochs, label, "epoch") as progress:
        callbacks = []
        if progress is not None:
            update = progress

            class Progress(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
                def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                    update(1)

            callbacks.append(Progress())
        model.fit(
            x, fit_y, epochs=options.epochs, batch_size=BATCH_SIZE, verbose=0, callbacks=callbacks
        )
    if distilled:
        # Saved without the custom loss: the student is an ordinary classifier.
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def _figures(name: str, onnx_path: Path, parameters: int, x: np.ndarray, y: np.ndarray) -> Figures:
    from . import quality_gate

    sess = quality_gate.session(onnx_path)
    input_name = sess.get_inputs()[0].name
    output_name = sess.get_outputs()[0].name
    scores = np.concatenate(
        [sess.run([output_name], {input_name: x[i : i + 256]})[0] for i in range(0, len(x), 256)]
    )
    accuracy = float((scores.argmax(axis=1) == y).mean())
    latencies = [
        quality_gate.p50_ms(sess, {input_name: np.resize(x, (size, *x.shape[1:]))}, [output_name])
        for size in quality_gate.LATENCY_BATCHES
    ]
    return Figures(name, parameters, onnx_path.stat().st_size, accuracy, latencies[0], latencies[1])
