"""What `sam build` produced, per architecture: machine code, size, contents.

`make build-x86_64` and `make build-arm64` (both part of `make test`) build
into .aws-sam/build-<arch>; these tests check those builds, and skip an
architecture that was not built. The same checks run as a script, which prints
the report (`make check-build` runs it after building both):

    python -m tests.infra.test_build [ARCH ...]

- every ELF file (every ``*.so*`` must be one) is for the build's machine:
  e_machine 0x3E (x86-64) or 0xB7 (AArch64);
- each function plus its layers, unzipped, stays under Lambda's 250 MB, and the
  inference function with the ServingLayer within 120 MB, so users keep 130 MB
  for layers of their own;
- the ServingLayer holds what requirements.txt pins and the maas package, the
  VerifyLayer (the deployer's) what requirements-verify.txt pins, both without
  what the Makefile strips; bytecode, if any, is CPython 3.12's;
- each function's artifact is its app.py alone;
- on an x86-64 host with a Python 3.12, the x86_64 build imports and answers
  a health check the way Lambda would load it (/var/task, then /opt/python);
  the inference function runs a session without onnx and without
  libonnxruntime.so, and the trimmed botocore signs and sends S3 requests
  (to a moto server).
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}
MACHINE_NAMES = {0x3E: "x86-64", 0xB7: "AArch64"}
# Lambda: "Unzipped size must be smaller than 262144000 bytes" (function + layers).
LIMIT_BYTES = 250 * 2**20
#: Issue 15: the inference function and its layers, so users keep 130 MB of the 250.
INFERENCE_LIMIT_BYTES = 120 * 2**20
FUNCTIONS = {"InferenceFunction": "functions/inference", "DeployerFunction": "functions/deployer"}
#: Each function's layers, as template.yaml gives them (Globals + the function's own).
FUNCTION_LAYERS = {
    "InferenceFunction": ("ServingLayer",),
    "DeployerFunction": ("ServingLayer", "VerifyLayer"),
}
LAYERS = {"ServingLayer": "requirements.txt", "VerifyLayer": "requirements-verify.txt"}
STRIPPED = {
    "ServingLayer": (
        "bin",
        "onnxruntime/transformers",
        "onnxruntime/quantization",
        "onnxruntime/tools",
        "onnxruntime/datasets",
        "onnxruntime/training",
        "onnxruntime/capi/libonnxruntime.so.1.32.0",
        "numpy/f2py",
        "numpy/_core/include",
        "numpy/_core/lib",
        "numpy/_pyinstaller",
        "boto3/data",
    ),
    "VerifyLayer": ("bin", "onnx/backend/test"),
}
#: botocore's service models kept (its top-level files stay too).
BOTOCORE_SERVICES = {"s3", "sts"}
PYC_MAGIC_312 = (3531).to_bytes(2, "little") + b"\r\n"


def build_dir(arch: str) -> Path:
    return ROOT / ".aws-sam" / f"build-{arch}"


def elf_machine(path: Path) -> int | None:
    """e_machine of an ELF file, or None if the file is not ELF."""
    with path.open("rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
    return int.from_bytes(head[18:20], order)


def tree_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@dataclass
class Report:
    arch: str
    layer_bytes: dict[str, int] = field(default_factory=dict)
    function_bytes: dict[str, int] = field(default_factory=dict)
    elf_files: int = 0
    wrong_machine: list[str] = field(default_factory=list)
    not_elf: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [f"{self.arch}: wrong machine: {p}" for p in self.wrong_machine]
        out += [f"{self.arch}: a .so that is not ELF: {p}" for p in self.not_elf]
        if self.elf_files < 10:
            out.append(f"{self.arch}: only {self.elf_files} ELF files: is the layer empty?")
        for name in self.function_bytes:
            total = self.total(name)
            if total >= LIMIT_BYTES:
                out.append(f"{self.arch}: {name} + layers = {mb(total)} >= {mb(LIMIT_BYTES)}")
        if "InferenceFunction" in self.function_bytes:
            total = self.total("InferenceFunction")
            if total > INFERENCE_LIMIT_BYTES:
                out.append(
                    f"{self.arch}: InferenceFunction + layers = {mb(total)} "
                    f"> {mb(INFERENCE_LIMIT_BYTES)}"
                )
        return out

    def total(self, function: str) -> int:
        layers = FUNCTION_LAYERS[function]
        return self.function_bytes[function] + sum(self.layer_bytes.get(n, 0) for n in layers)

    def lines(self) -> list[str]:
        want = MACHINES[self.arch]
        out = [
            f"{self.arch}: {self.elf_files} ELF files, all {MACHINE_NAMES[want]} (0x{want:02X})"
            if not self.wrong_machine
            else f"{self.arch}: {len(self.wrong_machine)} ELF files NOT {MACHINE_NAMES[want]}",
        ]
        out += [f"{self.arch}: {n} unzipped {mb(size)}" for n, size in self.layer_bytes.items()]
        for name, size in self.function_bytes.items():
            total = self.total(name)
            out.append(
                f"{self.arch}: {name} {size} bytes; with {' + '.join(FUNCTION_LAYERS[name])} "
                f"{mb(total)} of {mb(LIMIT_BYTES)} ({100 * total / LIMIT_BYTES:.0f}%), "
                f"{mb(LIMIT_BYTES - total)} left for users' layers"
            )
        return out


def mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def inspect(directory: Path, arch: str) -> Report:
    report = Report(arch)
    want = MACHINES[arch]
    for layer in LAYERS:
        if (directory / layer).is_dir():
            report.layer_bytes[layer] = tree_bytes(directory / layer)
    for name in FUNCTIONS:
        report.function_bytes[name] = tree_bytes(directory / name)
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        machine = elf_machine(path)
        relative = str(path.relative_to(directory))
        if machine is None:
            if re.search(r"\.so(\.|$)", path.name):
                report.not_elf.append(relative)
            continue
        report.elf_files += 1
        if machine != want:
            report.wrong_machine.append(f"{relative} (0x{machine:02X})")
    return report


def main(argv: list[str]) -> int:
    arches = argv or list(MACHINES)
    failed = False
    for arch in arches:
        directory = build_dir(arch)
        if not (directory / "ServingLayer").is_dir():
            print(f"{arch}: no build in {directory} (make build-{arch})")
            failed = True
            continue
        report = inspect(directory, arch)
        for line in report.lines():
            print(line)
        for problem in report.problems():
            print(f"FAIL {problem}")
            failed = True
    return 1 if failed else 0


# ---------------------------------------------------------------------- tests


def built(arch: str) -> Path:
    directory = build_dir(arch)
    if not (directory / "ServingLayer" / "python").is_dir():
        # `make test` builds both first and sets this, so a missing build fails there.
        if os.environ.get("MAAS_REQUIRE_BUILDS"):
            pytest.fail(f"no {arch} build in {directory}, though make test built it")
        pytest.skip(f"no {arch} build in {directory}: run `make build-{arch}` (part of make test)")
    return directory


def elf_header(machine: int, little: bool = True) -> bytes:
    order: Literal["little", "big"] = "little" if little else "big"
    ident = b"\x7fELF" + bytes([2, 1 if little else 2, 1]) + bytes(9)
    return ident + (3).to_bytes(2, order) + machine.to_bytes(2, order)


def test_elf_machine_reads_the_header(tmp_path: Path) -> None:
    cases = {
        "x86.so": elf_header(0x3E),
        "arm.so": elf_header(0xB7),
        "be.so": elf_header(0xB7, False),
    }
    for name, head in cases.items():
        (tmp_path / name).write_bytes(head + bytes(100))
    (tmp_path / "text.so").write_bytes(b"not an ELF file at all")
    (tmp_path / "short").write_bytes(b"\x7fELF")
    assert elf_machine(tmp_path / "x86.so") == 0x3E
    assert elf_machine(tmp_path / "arm.so") == 0xB7
    assert elf_machine(tmp_path / "be.so") == 0xB7
    assert elf_machine(tmp_path / "text.so") is None
    assert elf_machine(tmp_path / "short") is None


def test_inspect_flags_a_foreign_library(tmp_path: Path) -> None:
    site = tmp_path / "ServingLayer" / "python" / "pkg"
    site.mkdir(parents=True)
    for i in range(10):
        (site / f"ok{i}.so").write_bytes(elf_header(0x3E) + bytes(10))
    (site / "libarm.so.1").write_bytes(elf_header(0xB7) + bytes(10))
    (site / "fake.so").write_bytes(b"text")
    for name in FUNCTIONS:
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text("handler = None\n")
    report = inspect(tmp_path, "x86_64")
    assert report.elf_files == 11
    assert report.wrong_machine == ["ServingLayer/python/pkg/libarm.so.1 (0xB7)"]
    assert report.not_elf == ["ServingLayer/python/pkg/fake.so"]
    assert len(report.problems()) == 2


@pytest.mark.parametrize("arch", list(MACHINES))
def test_machine_code_and_size(arch: str) -> None:
    report = inspect(built(arch), arch)
    assert report.problems() == [], "\n".join(report.lines())
    assert report.elf_files >= 20  # onnxruntime, numpy, onnx, ml_dtypes, protobuf...


def requirement_pins(requirements: str = "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in (ROOT / "layers/serving" / requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "_", name).lower()] = version
    return pins


def installed_pins(site: Path) -> dict[str, str]:
    installed = {}
    for info in site.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[re.sub(r"[-_.]+", "_", name).lower()] = version
    return installed


@pytest.mark.parametrize("arch", list(MACHINES))
def test_verify_layer_contents(arch: str) -> None:
    site = built(arch) / "VerifyLayer" / "python"
    assert [p.name for p in site.parent.iterdir()] == ["python"]
    assert installed_pins(site) == requirement_pins("requirements-verify.txt")
    assert not (site / "maas").exists() and not (site / "onnxruntime").exists()
    for stripped in STRIPPED["VerifyLayer"]:
        assert not (site / stripped).exists(), stripped


@pytest.mark.parametrize("arch", list(MACHINES))
def test_layer_contents(arch: str) -> None:
    site = built(arch) / "ServingLayer" / "python"
    assert [p.name for p in site.parent.iterdir()] == ["python"]

    installed = installed_pins(site)
    assert installed == requirement_pins()  # exactly the pins, nothing unpinned
    services = {p.name for p in (site / "botocore" / "data").iterdir() if p.is_dir()}
    assert services == BOTOCORE_SERVICES
    assert (site / "botocore" / "data" / "endpoints.json").is_file()

    source = ROOT / "layers/serving/maas"
    wanted = {
        str(p.relative_to(source))
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    shipped = {
        str(p.relative_to(site / "maas"))
        for p in (site / "maas").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == wanted
    assert {"openapi.json", "py.typed"} <= shipped
    assert any(name.startswith("schemas/") and name.endswith(".json") for name in shipped)
    for name in shipped:
        assert (site / "maas" / name).read_bytes() == (source / name).read_bytes(), name

    for stripped in STRIPPED["ServingLayer"]:
        assert not (site / stripped).exists(), stripped
    assert not list(site.glob("onnxruntime/capi/libonnxruntime.so*"))
    for never in (
        *("tensorflow", "tf2onnx", "keras", "sklearn", "maas/convert", "sympy"),
        *("onnx", "google", "ml_dtypes", "flatbuffers"),  # verification's, or tools'
    ):
        assert not (site / never).exists(), never
    assert not [p for p in site.rglob("tests") if p.is_dir()]
    assert not list(site.rglob("*.pyi"))
    for pyc in site.rglob("*.pyc"):
        assert pyc.parent.name == "__pycache__" and ".cpython-312" in pyc.name, pyc
        assert pyc.read_bytes()[:4] == PYC_MAGIC_312, pyc


@pytest.mark.parametrize("arch", list(MACHINES))
def test_function_artifacts_are_app_py_alone(arch: str) -> None:
    directory = built(arch)
    for name, source in FUNCTIONS.items():
        files = [p.name for p in (directory / name).iterdir()]
        assert files == ["app.py"], (name, files)
        assert (directory / name / "app.py").read_bytes() == (ROOT / source / "app.py").read_bytes()


def python312() -> str | None:
    """A CPython 3.12 on this host, found as the layer Makefile finds one."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [
        os.environ.get("LAYER_PYC_PYTHON", ""),
        shutil.which("python3.12") or "",
        *sorted(glob.glob(f"{root}/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


# Runs inside the build, under -I -S -B: no site-packages, no bytecode writes.
SMOKE = r"""
import base64, json, os, sys
function_dir, which, model_b64, event = sys.argv[1:5]
layer_dirs = sys.argv[5:]
sys.path[:0] = [function_dir, *layer_dirs]  # Lambda: /var/task, then /opt/python
import numpy, onnxruntime
if which == "inference":
    try:
        import onnx
    except ImportError:
        pass
    else:
        raise AssertionError(f"onnx is importable in the inference function: {onnx.__file__}")
else:
    import onnx
    onnx.checker.check_model(onnx.load_from_string(base64.b64decode(model_b64)))
cpu = ["CPUExecutionProvider"]
session = onnxruntime.InferenceSession(base64.b64decode(model_b64), providers=cpu)
out = session.run(None, {"x": numpy.array([[-1.0, 2.0]], dtype=numpy.float32)})[0]
assert out.tolist() == [[0.0, 2.0]], out
import app
assert callable(app.handler)
assert app.__file__.startswith(function_dir), app.__file__
assert onnxruntime.__file__.startswith(layer_dirs[0]), onnxruntime.__file__
result = {"onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__}
if which == "inference":
    class Context:
        function_name = "maas-inference"
        function_version = "1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:maas-inference"
        memory_limit_in_mb = 2048
        aws_request_id = "smoke"
    result["response"] = app.handler(json.loads(event), Context())
    # The trimmed botocore signs and sends what the registry does (moto server).
    from maas.errors import PreconditionFailed
    from maas.store import open_store
    import boto3
    boto3.client("s3").create_bucket(Bucket="smoke")
    store = open_store("s3://smoke/registry")
    store.put("a.json", b"{}", if_none_match=True)
    try:
        store.put("a.json", b"[]", if_none_match=True)
    except PreconditionFailed:
        pass
    else:
        raise AssertionError("a second If-None-Match put succeeded")
    assert store.get("a.json").data == b"{}"
    assert store.get_if_changed("a.json", store.get("a.json").etag) is None
    assert list(store.list_keys("")) == ["a.json"]
    result["s3"] = "ok"
print("SMOKE " + json.dumps(result))
"""


def relu_model_b64() -> str:
    import base64

    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return base64.b64encode(model.SerializeToString()).decode()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["inference", "deployer"])
def test_x86_64_build_loads_like_lambda(which: str, tmp_path: Path) -> None:
    directory = built("x86_64")
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"an x86_64 build cannot run on {platform.machine()}")
    python = python312()
    if python is None:
        pytest.skip("no CPython 3.12 on this host (pyenv or PATH); structure checked only")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    event = (ROOT / "events/inference/health-live.json").read_text()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        "MAAS_REGISTRY": (tmp_path / "registry").as_uri(),
        "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        "POWERTOOLS_METRICS_NAMESPACE": "maas",
        "AWS_LAMBDA_FUNCTION_NAME": f"maas-{which}",
    }
    function = "InferenceFunction" if which == "inference" else "DeployerFunction"
    layers = [str(directory / layer / "python") for layer in FUNCTION_LAYERS[function]]
    args = [str(directory / function), which, relu_model_b64(), event, *layers]
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-B", "-c", SMOKE, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("SMOKE ")]
    result = json.loads(line.removeprefix("SMOKE "))
    assert result["onnxruntime"] == requirement_pins()["onnxruntime"]
    if which == "inference":
        response = result["response"]
        assert response["statusCode"] == 200, response
        assert json.loads(response["body"]) == {"live": True}
        assert result["s3"] == "ok"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
