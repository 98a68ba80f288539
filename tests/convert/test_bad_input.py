"""Bad input: exit code 2, one clear line on stderr, no traceback, nothing published."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from maas.registry import open_registry
from tests.convert.conftest import run_cli
from tests.convert.models import keras_mlp, onnx_without_inputs, save_npz

REPO = Path(__file__).resolve().parents[2]

# Each case builds its situation in a directory holding ``model.keras`` (a small
# valid model) and returns the convert arguments after SRC's position.
Case = Callable[[Path], list[str | Path]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad-input")
    keras_mlp(path / "model.keras", hidden=(8,))
    rng = np.random.default_rng(0)
    save_npz(
        path / "eval.npz", x=rng.random((20, 8, 8), dtype=np.float32), y=rng.integers(0, 10, 20)
    )
    save_npz(path / "calib.npz", x=rng.random((16, 8, 8), dtype=np.float32))
    return path


def _model(d: Path) -> Path:
    return d / "model.keras"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _junk_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    return path


def _npy(path: Path) -> Path:
    with path.open("wb") as handle:
        np.save(handle, np.zeros((5, 8, 8), np.float32))
    return path


def _unbuilt_keras(path: Path) -> Path:
    from tests.convert.api import tfimport

    keras = tfimport.keras()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.Sequential([keras.layers.Dense(2)]).save(path)
    return path


CASES: dict[str, tuple[Case, str]] = {
    "missing file": (lambda d: [d / "nope.keras"], "no such file or directory"),
    "unsupported format": (
        lambda d: [_write(d / "model.pt", b"torch")],
        "unsupported format '.pt'",
    ),
    "directory that is not a SavedModel": (lambda d: [d], "not a SavedModel"),
    "corrupt .keras (not a zip)": (
        lambda d: [_write(d / "bad.keras", b"\x00garbage" * 10)],
        "not a valid .keras file",
    ),
    "corrupt .keras (junk inside)": (
        lambda d: [_junk_zip(d / "junk.keras")],
        "not a loadable Keras model",
    ),
    "truncated .keras": (
        lambda d: [_write(d / "cut.keras", _model(d).read_bytes()[:200])],
        "not a valid .keras file",
    ),
    "corrupt .onnx": (lambda d: [_write(d / "bad.onnx", b"\x08\x01garbage")], "bad.onnx"),
    "corrupt .tflite": (
        lambda d: [_write(d / "bad.tflite", b"garbage" * 8)],
        "not a loadable .tflite model",
    ),
    "onnx model with no inputs": (
        lambda d: [onnx_without_inputs(d / "none.onnx")],
        "has no inputs",
    ),
    "keras model with no inputs": (
        lambda d: [_unbuilt_keras(d / "unbuilt.keras")],
        "has no inputs",
    ),
    "eval data of the wrong shape": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "shape.npz", x=np.zeros((5, 7, 7), np.float32)),
        ],
        "has shape (5, 7, 7), but model input 'input' takes (batch, 8, 8)",
    ),
    "eval data of the wrong rank": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "rank.npz", x=np.zeros((5, 64), np.float32)),
        ],
        "has shape (5, 64)",
    ),
    "eval data of the wrong dtype": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "ints.npz", x=np.zeros((5, 8, 8), np.int64)),
        ],
        "has dtype int64, but model input 'input' takes float32",
    ),
    "eval data as strings": (
        lambda d: [_model(d), "--eval-data", save_npz(d / "str.npz", x=np.array(["a", "b"]))],
        "has dtype <U1",
    ),
    "eval data needing pickle": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "obj.npz", x=np.array([{"a": 1}], dtype=object)),
        ],
        "not a readable .npz",
    ),
    "eval data that is not an npz": (
        lambda d: [_model(d), "--eval-data", _write(d / "text.npz", b"hello")],
        "is not an .npz archive",
    ),
    "eval data as a bare .npy": (
        lambda d: [_model(d), "--eval-data", _npy(d / "bare.npz")],
        "is not an .npz archive",
    ),
    "eval data without x": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "nox.npz", inputs=np.zeros((5, 8, 8), np.float32)),
        ],
        "has no array 'x' or 'input'",
    ),
    "eval data with NaN": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "nan.npz", x=np.full((5, 8, 8), np.nan, np.float32)),
        ],
        "contains NaN",
    ),
    "labels of the wrong dtype": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "fy.npz", x=np.zeros((5, 8, 8), np.float32), y=np.zeros(5, np.float32)),
        ],
        "labels must be integer class indices",
    ),
    "labels of the wrong length": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "ly.npz", x=np.zeros((5, 8, 8), np.float32), y=np.zeros(4, np.int64)),
        ],
        "expected (5,)",
    ),
    "labels out of range": (
        lambda d: [
            _model(d),
            "--eval-data",
            save_npz(d / "ry.npz", x=np.zeros((5, 8, 8), np.float32), y=np.full(5, 10, np.int64)),
        ],
        "label 10 is out of range for the model's 10 classes",
    ),
    "missing eval data": (lambda d: [_model(d), "--eval-data", d / "nope.npz"], "no such file"),
    "calib data of the wrong shape": (
        lambda d: [
            _model(d),
            "--precision",
            "int8-static",
            "--calib-data",
            save_npz(d / "cshape.npz", x=np.zeros((5, 4), np.float32)),
        ],
        "--calib-data",
    ),
    "calib data identical to eval data": (
        lambda d: [
            _model(d),
            "--precision",
            "int8-static",
            "--eval-data",
            d / "eval.npz",
            "--calib-data",
            d / "eval.npz",
        ],
        "same data as --eval-data",
    ),
    "unknown precision": (
        lambda d: [_model(d), "--precision", "fp32,int4"],
        "unknown precision 'int4'; choose from fp32, fp16",
    ),
    "empty precision": (lambda d: [_model(d), "--precision", ","], "--precision is empty"),
    "int8-static without calibration data": (
        lambda d: [_model(d), "--precision", "fp32,int8-static"],
        "int8-static needs --calib-data",
    ),
    "negative accuracy drop": (
        lambda d: [_model(d), "--max-accuracy-drop", "-1"],
        "points must be >= 0",
    ),
    "unknown preference": (lambda d: [_model(d), "--prefer", "cheapest"], "invalid choice"),
    "unsupported opset": (lambda d: [_model(d), "--opset", "7"], "--opset 7 is not supported"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(
    case: str, workdir: Path, tmp_path: Path, s3_registry: str
) -> None:
    build, message = CASES[case]
    for item in workdir.iterdir():  # a fresh copy: cases write files beside the model
        if item.is_file():
            (tmp_path / item.name).write_bytes(item.read_bytes())
    argv = build(tmp_path)
    outcome = run_cli(
        "convert",
        *argv,
        "--name",
        "bad",
        "--publish",
        "--alias",
        "production",
        "--registry",
        s3_registry,
    )
    assert outcome.code == 2, outcome.err
    assert outcome.out == ""
    assert outcome.err.startswith("maas: error: ") and outcome.err.count("\n") == 1
    assert message in outcome.err
    assert "Traceback" not in outcome.err
    assert open_registry(s3_registry).list_models() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "Bad Name"], "invalid model name"),
        (["--name", "ok", "--alias", "production"], "--alias needs --publish"),
        (["--name", "ok", "--alias", "../x", "--publish"], "invalid alias name"),
    ],
)
def test_bad_flags(argv: list[str], message: str, workdir: Path) -> None:
    outcome = run_cli("convert", workdir / "model.keras", *argv)
    assert outcome.code == 2 and message in outcome.err and outcome.err.count("\n") == 1


def test_real_stderr_is_one_line_even_after_importing_tensorflow(tmp_path: Path) -> None:
    """TensorFlow's C++ start-up banner would go straight to fd 2; it must not."""
    bad = _junk_zip(tmp_path / "junk.keras")
    script = (
        "import sys\nfrom tests.convert.conftest import run_cli\n"
        "o = run_cli(*sys.argv[1:])\n"
        "sys.stdout.write(o.out); sys.stderr.write(o.err); sys.exit(o.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "convert", str(bad), "--name", "x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("maas: error: ") and "not a loadable Keras model" in done.stderr


HEAVY = ("tensorflow", "keras", "tf2onnx", "onnxruntime", "onnx", "sklearn")


def test_registering_and_parsing_imports_nothing_heavy() -> None:
    script = (
        "import argparse, sys\n"
        "from maas.convert.cli import register\n"
        "parser = argparse.ArgumentParser(prog='maas')\n"
        "common = argparse.ArgumentParser(add_help=False)\n"
        "common.add_argument('--registry'); common.add_argument('--json', action='store_true')\n"
        "register(parser.add_subparsers(dest='command'), common)\n"
        "parser.parse_args(['convert', 'm.keras', '--name', 'm', '--precision', 'fp32,fp16'])\n"
        "parser.parse_args(['train-example', '--out', 'x'])\n"
        "import maas.convert.pipeline, maas.convert.train, maas.convert.quality_gate\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_maas_help_does_not_import_tensorflow() -> None:
    script = (
        "import sys\nimport maas.cli\n"
        "try:\n    maas.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False"
