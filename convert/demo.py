"""`maas demo`: the main job end to end, locally, in one command.

Train the reference model → convert to fp32 and int8-dynamic and validate both
→ publish to a local registry with `production` on the preferred variant →
`maas serve` on a free port → real HTTP calls (V2 JSON, V2 binary through
tritonclient, TF Serving) → predictions beside the true labels → stop.
Every step prints as it starts; a failure names the step and exits non-zero.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from maas.errors import InvalidInput, MaasError, ServerFault

T = TypeVar("T")
STEPS = 6
SAMPLES = 8
#: Written into a working directory the demo made, so that it only ever empties its own.
MARKER = ".maas-demo"
#: What the demo writes in its working directory; nothing else is ever removed.
OWN_ENTRIES = ("reference", "registry", "serve.log")


class DemoFailed(ServerFault):
    """A demo step failed; the message names it."""


#: Where the narrative goes: stdout, or stderr when stdout carries the --json document.
_narrative = sys.stdout


def _say(text: str) -> None:
    print(text, file=_narrative, flush=True)


def prepare_workdir(workdir: Path) -> None:
    """Make ``workdir`` ready: create it, or reuse one the demo made before (marked by
    :data:`MARKER`), removing only what the demo itself writes there. A directory
    with other contents and no marker is refused: the demo deletes nothing it did
    not create."""
    try:
        if workdir.is_dir() and not (workdir / MARKER).is_file() and any(workdir.iterdir()):
            raise InvalidInput(
                f"--workdir {workdir} is not empty and is not a maas demo directory (it has "
                f"no {MARKER} file): give a new or empty directory"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        for name in OWN_ENTRIES:
            entry = workdir / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        (workdir / MARKER).write_text("made by `maas demo`; it empties only what it wrote\n")
    except OSError as exc:
        raise DemoFailed(
            f"demo could not prepare its working directory {workdir}: {exc.strerror or exc}"
        ) from None


def _step(number: int, title: str, work: Callable[[], T]) -> T:
    _say(f"\n[{number}/{STEPS}] {title}")
    started = time.perf_counter()
    try:
        result = work()
    except MaasError as exc:
        raise DemoFailed(f"demo step {number} ({title}) failed: {exc}") from exc
    except Exception as exc:
        raise DemoFailed(
            f"demo step {number} ({title}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    _say(f"      done in {time.perf_counter() - started:.1f}s")
    return result


class _Server:
    """`maas serve` as a real subprocess on a free port."""

    def __init__(self, registry: str, log_path: Path) -> None:
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "maas.cli",
            "serve",
            "--port",
            "0",
            "--json",
            "--registry",
            registry,
        ]
        self._log = log_path.open("w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"maas serve exited with {self.process.returncode}: "
                    f"{self.log_path.read_text()[-500:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("maas serve did not start within 60 s")
            for line in self.log_path.read_text().splitlines():
                if line.startswith("{") and '"url"' in line:
                    return str(json.loads(line)["url"])
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def _post_json(url: str, document: Any) -> tuple[dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 (an http:// URL we built)
        url,
        data=json.dumps(document).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return dict(response.headers), json.loads(response.read())


def _call_api(url: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """The same samples through each protocol; returns class predictions per client."""
    answers: dict[str, np.ndarray] = {}

    headers, v2 = _post_json(
        f"{url}/v2/models/digits/infer",
        {
            "id": "demo-json",
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.flatten().tolist(),
                }
            ],
        },
    )
    probabilities = np.asarray(v2["outputs"][0]["data"], dtype=np.float32).reshape(len(x), -1)
    answers["v2 json"] = probabilities
    _say(f"      V2 JSON      POST /v2/models/digits/infer -> version {v2['model_version']}")

    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = client.infer(
        "digits", [tensor], outputs=[triton.InferRequestedOutput("probabilities", binary_data=True)]
    )
    answers["v2 binary"] = result.as_numpy("probabilities")
    client.close()
    _say(
        f"      V2 binary    tritonclient.http infer -> version "
        f"{result.get_response()['model_version']}"
    )

    headers, tf = _post_json(f"{url}/v1/models/digits:predict", {"instances": x.tolist()})
    answers["tf serving"] = np.asarray(tf["predictions"], dtype=np.float32)
    _say(
        f"      TF Serving   POST /v1/models/digits:predict -> version "
        f"{headers.get('x-maas-model-version')}"
    )
    return answers


def run_demo(
    workdir: Path,
    epochs: int | None = None,
    registry_url: str | None = None,
    json_output: bool = False,
) -> int:
    """Run every step; with ``registry_url`` publish and serve there instead of
    ``workdir/registry``; with ``json_output`` print one JSON document on stdout."""
    global _narrative
    from .pipeline import ConvertOptions, convert_model
    from .progress import Reporter
    from .train import train_example

    _narrative = sys.stderr if json_output else sys.stdout
    prepare_workdir(workdir)
    registry = registry_url or str(workdir / "registry")
    reporter = Reporter.for_cli(json_output)
    _say(f"maas demo: working in {workdir}, registry {registry}")

    trained = _step(
        1,
        "train the reference model on digits (Keras, Adam)",
        lambda: train_example(
            workdir / "reference", dataset="digits", epochs=epochs, reporter=reporter
        ),
    )
    s = trained.settings
    _say(
        f"      Keras accuracy on the eval split: {s['eval_accuracy']:.2%} "
        f"({s['epochs']} epochs, seed {s['seed']})"
    )

    converted = _step(
        2,
        "convert to ONNX fp32 and int8-dynamic, validate, publish",
        lambda: convert_model(
            ConvertOptions(
                source=trained.model,
                name="digits",
                precisions=["fp32", "int8-dynamic"],
                eval_data=trained.eval_data,
                calib_data=trained.calib_data,
                publish=True,
                alias="production",
                registry=registry,
            ),
            reporter,
        ),
    )
    if converted.exit_code != 0:
        raise DemoFailed("demo step 2 (convert) refused a variant:\n" + converted.table())
    _say(
        f"      published versions {converted.published}; digits@production -> "
        f"{converted.alias_version}"
    )
    if converted.alias_release is not None:
        from maas.cli_output import alias_outcome

        alias_outcome(converted.alias_release)  # a skip warns; a refusal fails the demo

    evaluation = np.load(trained.eval_data)
    x = evaluation["x"][:SAMPLES].astype(np.float32)
    labels = evaluation["y"][:SAMPLES]

    server = _step(
        3, "start `maas serve` on a free port", lambda: _Server(registry, workdir / "serve.log")
    )
    try:
        _say(f"      serving {registry} at {server.url}")
        answers = _step(
            4,
            "call it: V2 JSON, V2 binary (tritonclient), TF Serving",
            lambda: _call_api(server.url, x),
        )
    finally:
        server.stop()

    def compare() -> None:
        first = answers["v2 json"]
        for client, values in answers.items():
            if not np.array_equal(values, first):
                raise AssertionError(f"{client} answers differ from V2 JSON")
        _say(f"      {'sample':>6}  {'label':>5}  {'predicted':>9}  {'p':>6}")
        for i, row in enumerate(first):
            mark = "" if int(np.argmax(row)) == int(labels[i]) else "  <- wrong"
            _say(
                f"      {i:>6}  {int(labels[i]):>5}  {int(np.argmax(row)):>9}  "
                f"{float(np.max(row)):6.3f}{mark}"
            )
        correct = int(np.sum(np.argmax(first, axis=1) == labels))
        _say(f"      {correct}/{len(labels)} correct; all three protocols gave identical numbers")

    _step(5, "predictions beside the true labels", compare)
    _step(
        6,
        "the variants (validated on the eval split)",
        lambda: _say("\n".join("      " + line for line in converted.table().splitlines())),
    )
    _say("\nmaas demo: ok (server stopped)")
    if json_output:
        document = {
            "registry": registry,
            "versions": converted.published,
            "alias": converted.alias_release.alias_report() if converted.alias_release else None,
            "variants": converted.as_json(),
            "predictions": [
                {
                    "sample": i,
                    "label": int(labels[i]),
                    "predicted": int(np.argmax(row)),
                    "probability": float(np.max(row)),
                }
                for i, row in enumerate(answers["v2 json"])
            ],
            "protocols_agree": all(
                np.array_equal(values, answers["v2 json"]) for values in answers.values()
            ),
        }
        print(json.dumps(document, indent=2))
    return 0
