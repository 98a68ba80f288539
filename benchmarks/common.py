"""What the benchmarks share: the results file the report and chart read, the
machine description, and small Keras models converted the way `maas convert` does.

Not a test. Each bench appends its markdown section to RESULTS.md (bench_core
writes it anew) and its figures to results.json, from which `benchmarks.report`
writes the Targets table and the chart.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_JSON = Path("benchmarks/results.json")
#: Where `benchmarks.report` puts the Targets table, under the machine description.
TARGETS_MARKER = "<!-- targets -->"


def reset_results() -> None:
    RESULTS_JSON.write_text("{}\n", encoding="utf-8")


def record(section: str, value: Any) -> None:
    """Store one bench's figures under ``section`` (read back by the report and chart)."""
    data = json.loads(RESULTS_JSON.read_text(encoding="utf-8")) if RESULTS_JSON.exists() else {}
    data[section] = value
    RESULTS_JSON.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def results() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
    return loaded


def cpu_flags() -> list[str]:
    """The flags that decide what onnxruntime's kernels can use (VNNI above all)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma", "f16c", "asimd")
    return [flag for flag in wanted if flag in flags]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_lines() -> list[str]:
    import numpy
    import onnxruntime
    import orjson

    versions = {
        "Python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "orjson": orjson.__version__,
    }
    try:
        from importlib.metadata import version

        versions["tensorflow-cpu"] = version("tensorflow-cpu")
    except Exception:
        versions["tensorflow-cpu"] = "absent"
    flags = cpu_flags()
    return [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_model()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}.",
        f"CPU flags: {', '.join(flags) or 'none of AVX2/AVX-512/VNNI'}"
        f" ({'VNNI present' if any('vnni' in f for f in flags) else 'no VNNI'}).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "The machine is shared with other jobs (other test runs on its 2 cores): absolute",
        "times are noisy; the ratios, each measured side by side in one run, are what counts.",
    ]


def keras_to_onnx(model: Any, work: Path, name: str) -> Path:
    """Save a Keras model and convert it as `maas convert` does (tf2onnx via maas.convert)."""
    from maas.convert.sources import load_source
    from maas.convert.to_onnx import convert

    source = work / f"{name}.keras"
    model.save(source)
    converted: Path = convert(load_source(source), work / f"{name}.onnx")
    return converted


def keras_mlp(layers: tuple[int, ...], input_shape: tuple[int, ...], seed: int = 0) -> Any:
    from maas.convert.tfimport import keras

    k = keras()
    k.utils.set_random_seed(seed)
    inputs = k.Input(shape=input_shape, name="input")
    x = k.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for width in layers[:-1]:
        x = k.layers.Dense(width, activation="relu")(x)
    outputs = k.layers.Dense(layers[-1], activation="softmax", name="probabilities")(x)
    return k.Model(inputs, outputs)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
