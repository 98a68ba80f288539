"""Validate a variant against the source model, and the quality gate.

Every variant is run with onnxruntime on the evaluation data and compared with
the source model's reference outputs: max abs difference, top-1 agreement,
accuracy (when labels are given), file size, and p50 latency at batch 1 and
batch 64 on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import ModelRefused

from .data import Dataset

#: The fp32 conversion must reproduce the source this closely (max abs diff).
FP32_MAX_ABS_DIFF = 1e-4
#: Percent of eval rows whose top-1 a precision variant must share with its source
#: (``--min-agreement``): equal accuracy can hide a third of the answers changed.
DEFAULT_MIN_AGREEMENT = 98.0

#: Golden samples stored per manifest, and the least tolerance they carry.
GOLDEN_COUNT = 3
GOLDEN_MIN_ATOL = 1e-4
#: Golden samples stop being added once their inputs hold this many values.
GOLDEN_MAX_VALUES = 50_000

#: Samples per onnxruntime call while validating.
EVAL_BATCH = 256

#: The batch sizes latency is reported at, and how long each measurement may take.
LATENCY_BATCHES = (1, 64)
LATENCY_BUDGET_S = 0.5
LATENCY_MAX_RUNS = 200
LATENCY_MIN_RUNS = 5
#: onnxruntime threads while measuring: one, like a small Lambda function's vCPU.
LATENCY_THREADS = 1

ROW_KEYS = (
    "precision",
    "sparsity",
    "size_bytes",
    "gzip_bytes",
    "accuracy",
    "agreement",
    "max_abs_diff",
    "latency_ms_b1",
    "latency_ms_b64",
    "passed",
    "reason",
    "version",
)


@dataclass
class Row:
    """One variant's measurements and verdict: a row of the report and of ``metrics``."""

    precision: str
    path: Path
    size_bytes: int
    accuracy: float | None
    agreement: float | None
    max_abs_diff: float
    latency_ms_b1: float
    latency_ms_b64: float
    finite: bool = True
    passed: bool = True
    reason: str | None = None
    version: int | None = None
    golden_atol: float = GOLDEN_MIN_ATOL
    #: The pruning target (0 for a dense variant), and the file's gzip size.
    sparsity: float = 0.0
    gzip_bytes: int | None = None

    @property
    def label(self) -> str:
        """``fp32``, or ``s0.8-int8-dynamic`` for a pruned variant (its file name's part)."""
        return self.precision if not self.sparsity else f"s{self.sparsity:g}-{self.precision}"

    def refuse(self, reason: str) -> None:
        if self.passed:
            self.passed = False
            self.reason = reason

    def as_json(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "sparsity": self.sparsity,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "accuracy": self.accuracy,
            "agreement": self.agreement,
            "max_abs_diff": self.max_abs_diff,
            "latency_ms_b1": self.latency_ms_b1,
            "latency_ms_b64": self.latency_ms_b64,
            "passed": self.passed,
            "reason": self.reason,
            "version": self.version,
        }


def session(path: Path) -> Any:
    """A serving-like onnxruntime session: full optimisation, one thread (a Lambda vCPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = LATENCY_THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # failures become one clear error; no log lines on stderr
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise ModelRefused(f"{path.name} does not load in onnxruntime: {text}") from exc


def run(
    sess: Any, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]
) -> dict[str, np.ndarray]:
    try:
        results = sess.run(list(outputs), dict(feeds))
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        batch = len(next(iter(feeds.values())))
        raise ModelRefused(
            f"the ONNX model fails at batch {batch}; maas needs a dynamic batch "
            "dimension (was the source exported with a fixed batch size?): "
            f"{text}"
        ) from exc
    return {name: np.asarray(r) for name, r in zip(outputs, results, strict=True)}


def run_batched(
    sess: Any, data: Dataset, outputs: Sequence[str], batch: int = EVAL_BATCH
) -> dict[str, np.ndarray]:
    parts = [
        run(sess, data.take(start, start + batch), outputs) for start in range(0, len(data), batch)
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in outputs}


def top1(scores: np.ndarray) -> np.ndarray | None:
    """Predicted classes, when the output looks like class scores (…, classes>1)."""
    if scores.ndim < 2 or scores.shape[-1] < 2:
        return None
    return np.asarray(scores.reshape(len(scores), -1, scores.shape[-1]).argmax(-1)[:, 0])


def accuracy(scores: np.ndarray, labels: np.ndarray | None) -> float | None:
    predicted = top1(scores)
    if predicted is None or labels is None:
        return None
    return float((predicted == labels).mean())


def max_abs_diff(outputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> float:
    worst = 0.0
    for name, expected in reference.items():
        got = outputs[name].astype(np.float64)
        if got.shape != expected.shape:
            return float("inf")
        if got.size:
            diff = np.abs(got - expected.astype(np.float64))
            worst = max(worst, float("inf") if not np.isfinite(diff).all() else float(diff.max()))
    return worst


def p50_ms(sess: Any, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> float:
    """Median wall time of one call, after a warm-up, within a small time budget."""
    for _ in range(3):
        run(sess, feeds, outputs)
    times: list[float] = []
    deadline = time.perf_counter() + LATENCY_BUDGET_S
    while len(times) < LATENCY_MAX_RUNS and (
        len(times) < LATENCY_MIN_RUNS or time.perf_counter() < deadline
    ):
        start = time.perf_counter()
        sess.run(list(outputs), dict(feeds))
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000.0, 4)


def batch_of(data: Dataset, size: int) -> dict[str, np.ndarray]:
    """``size`` samples from ``data``, repeating it when it holds fewer."""
    repeat = -(-size // len(data))
    return {
        n: np.concatenate([a] * repeat)[:size] if repeat > 1 else a[:size]
        for n, a in data.feeds.items()
    }


def measure(
    precision: str,
    path: Path,
    data: Dataset,
    reference: Mapping[str, np.ndarray],
    first_output: str,
) -> Row:
    """Run the variant at ``path`` on ``data`` and compare it with ``reference``."""
    sess = session(path)
    names = list(reference)
    produced = {o.name for o in sess.get_outputs()}
    missing = [n for n in names if n not in produced]
    if missing:
        raise ModelRefused(f"{path.name} lacks the source's outputs {missing}")
    outputs = run_batched(sess, data, names)
    finite = all(np.isfinite(a).all() for a in outputs.values() if a.dtype.kind == "f")
    expected, got = top1(reference[first_output]), top1(outputs[first_output])
    agreement = None if expected is None or got is None else float((expected == got).mean())
    latencies = [p50_ms(sess, batch_of(data, size), names) for size in LATENCY_BATCHES]
    row = Row(
        precision,
        path,
        path.stat().st_size,
        accuracy(outputs[first_output], data.labels),
        agreement,
        max_abs_diff(outputs, reference),
        latencies[0],
        latencies[1],
        finite=finite,
    )
    row.golden_atol = golden_atol(sess, data, reference)
    return row


def golden_indices(data: Dataset) -> list[int]:
    per_sample = sum(int(np.prod(a.shape[1:])) for a in data.feeds.values())
    count = max(1, min(GOLDEN_COUNT, GOLDEN_MAX_VALUES // max(per_sample, 1), len(data)))
    return list(range(count))


def golden_atol(sess: Any, data: Dataset, reference: Mapping[str, np.ndarray]) -> float:
    """Twice the deviation measured on the golden samples, one at a time (as a request
    would run them: dynamic quantisation depends on the batch), and at least 1e-4."""
    worst = 0.0
    for i in golden_indices(data):
        got = run(sess, data.take(i, i + 1), list(reference))
        worst = max(worst, max_abs_diff(got, {n: a[i : i + 1] for n, a in reference.items()}))
    return max(GOLDEN_MIN_ATOL, 2.0 * worst) if np.isfinite(worst) else float("inf")


def golden_samples(
    data: Dataset, reference: Mapping[str, np.ndarray], atol: float
) -> list[dict[str, Any]]:
    """A few evaluation inputs with the source model's outputs, as manifest documents."""

    def tensor(array: np.ndarray) -> dict[str, Any]:
        return {"shape": list(array.shape), "data": array.reshape(-1).tolist()}

    return [
        {
            "inputs": {n: tensor(a[i : i + 1]) for n, a in data.feeds.items()},
            "outputs": {n: tensor(a[i : i + 1]) for n, a in reference.items()},
            "atol": atol,
        }
        for i in golden_indices(data)
    ]


def gate(
    row: Row,
    source_accuracy: float | None,
    max_accuracy_drop: float,
    fp32: Row | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    *,
    same_function: bool = True,
) -> Row:
    """Refuse ``row`` if it fails a threshold; the reason names the rule, the number
    and the limit. ``same_function``: a precision variant, which must agree with the
    model it was built from; a pruned or distilled one is judged on accuracy alone."""
    if not row.finite:
        row.refuse("its outputs contain NaN or infinity")
    if row.precision == "fp32" and not row.max_abs_diff <= FP32_MAX_ABS_DIFF:
        row.refuse(
            f"max abs diff {row.max_abs_diff:.3g} from the source exceeds the fp32 "
            f"limit {FP32_MAX_ABS_DIFF:g}"
        )
    if row.precision != "fp32" and fp32 is not None and not fp32.max_abs_diff <= FP32_MAX_ABS_DIFF:
        row.refuse(
            f"it derives from an fp32 conversion whose max abs diff "
            f"{fp32.max_abs_diff:.3g} exceeds {FP32_MAX_ABS_DIFF:g}"
        )
    if row.accuracy is not None and source_accuracy is not None:
        drop = (source_accuracy - row.accuracy) * 100.0
        if drop > max_accuracy_drop + 1e-9:
            row.refuse(
                f"accuracy {row.accuracy:.2%} is {drop:.2f} points below the source's "
                f"{source_accuracy:.2%}; --max-accuracy-drop is {max_accuracy_drop:g}"
            )
    if same_function and row.agreement is not None and row.agreement * 100.0 < min_agreement - 1e-9:
        row.refuse(
            f"agreement {row.agreement:.2%} with the top-1 of the model it was built from is "
            f"below --min-agreement {min_agreement:g}%"
        )
    return row


PREFERENCES = ("balanced", "smallest", "accurate", "fastest")
#: ``balanced``: the smallest variant no slower at batch 64 than this times the fastest.
BALANCED_SLOWDOWN = 1.25


def preferred(rows: Sequence[Row], prefer: str) -> Row | None:
    """The passing row ``--prefer`` picks; ties go to the earlier row."""
    passing = [r for r in rows if r.passed]
    if not passing:
        return None
    if prefer == "balanced":
        # Smallest alone once put a 9x slower int8 variant of a CNN in production.
        fastest = min(r.latency_ms_b64 for r in passing)
        quick = [r for r in passing if r.latency_ms_b64 <= BALANCED_SLOWDOWN * fastest]
        return min(quick, key=lambda r: r.size_bytes)
    if prefer == "smallest":
        return min(passing, key=lambda r: r.size_bytes)
    if prefer == "fastest":
        return min(passing, key=lambda r: (r.latency_ms_b1, r.latency_ms_b64))
    if prefer == "accurate":
        return min(
            passing,
            key=lambda r: (
                -(r.accuracy if r.accuracy is not None else -1.0),
                -(r.agreement if r.agreement is not None else -1.0),
                r.max_abs_diff,
            ),
        )
    raise ValueError(f"unknown preference {prefer!r}")


def report_table(
    rows: Sequence[Row], source_accuracy: float | None, chosen: Row | None = None
) -> str:
    """The human report: one line per variant (``*`` marks the one --alias takes),
    then what the columns mean, then one line per refusal."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    header = (
        f"{'PRECISION':<13} {'SIZE':>10} {'GZIP':>10} {'SPARSITY':>8} {'ACCURACY':>9} "
        f"{'AGREEMENT':>9} {'MAX DIFF':>9} {'P50 B1':>9} {'P50 B64':>9}  {'STATUS':<7} VERSION"
    )
    gutter = "  " if chosen is not None else ""  # room for the * mark
    lines = [gutter + header]
    for r in rows:
        mark = "* " if r is chosen else gutter
        lines.append(
            f"{mark}{r.precision:<13} {r.size_bytes:>10,} "
            f"{'-' if r.gzip_bytes is None else format(r.gzip_bytes, ','):>10} "
            f"{r.sparsity:>8g} {pct(r.accuracy):>9} "
            f"{pct(r.agreement):>9} {r.max_abs_diff:>9.2e} {r.latency_ms_b1:>7.3f}ms "
            f"{r.latency_ms_b64:>7.3f}ms  "
            f"{'passed' if r.passed else 'REFUSED':<7} {'-' if r.version is None else r.version}"
        )
    lines.append(f"source accuracy: {pct(source_accuracy)}")
    lines += TABLE_FOOTER
    if chosen is not None:
        lines.append(f"* the variant the alias points at ({chosen.label})")
    lines += [f"{r.label} refused: {r.reason}" for r in rows if not r.passed]
    return "\n".join(lines)


TABLE_FOOTER = [
    "SIZE / GZIP: ONNX file bytes, raw and gzipped (pruning shrinks only the gzipped size).",
    "SPARSITY: the pruning target (0: dense). ACCURACY: top-1 on the eval data (- without",
    "labels). AGREEMENT: rows whose top-1 equals that of the model the variant was built from",
    "(a pruned fp32's: the unpruned source's). MAX DIFF: largest absolute difference from it.",
    "P50 B1 / P50 B64: median onnxruntime latency",
    "for a batch of 1 / 64 rows on this machine, one thread (a Lambda vCPU).",
]
