"""schemathesis against `maas serve`: every response must conform to the OpenAPI
document the server itself publishes (status codes, content types, headers and
schemas, errors included), schema-valid requests must be accepted and invalid ones
refused, and methods the document does not list must get 405 with Allow.

Builds a small registry of real models (tests.support.serve_process), starts
``maas serve --port 0`` on it, runs ``st run`` on ``/openapi.json`` with
``schemathesis.toml`` beside this file, and exits with st's exit code::

    python -m tests.contract --st .schemathesis-venv/bin/st --max-examples 20

schemathesis pins packages that conflict with .venv's, so it lives in its own venv
(made by the Makefile) and is run as a program; this script needs only .venv.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tests.support.serve_process import ServeProcess, small_registry

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: The end of http.server's access log line: ... "GET /v2 HTTP/1.1" 200 -
ACCESS_LINE = re.compile(r'HTTP/1\.[01]\\?" (\d{3}) ')


def status_counts(log: Path) -> dict[str, int]:
    """How many responses of each status the server logged (its access log lines)."""
    counts: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        match = ACCESS_LINE.search(line)
        if match:
            counts[match.group(1)] += 1
    return dict(sorted(counts.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.contract", description=__doc__)
    parser.add_argument("--st", required=True, type=Path, help="the schemathesis CLI")
    parser.add_argument("--max-examples", type=int, default=20, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=20261, help="fixed, so a run can be replayed")
    # One worker: with several, CPython 3.11.7's ast.parse (hypothesis calls it to
    # describe lambdas) can fail with "AST constructor recursion depth mismatch".
    parser.add_argument("--workers", default="1")
    parser.add_argument("--keep", type=Path, help="work (registry, server log) here; kept")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="maas-contract-") as temp:
        root = args.keep or Path(temp)
        with ServeProcess(small_registry(root), root / "serve") as server:
            command = [
                str(args.st.resolve()),
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(args.max_examples),
                "--seed",
                str(args.seed),
                "--workers",
                args.workers,
                "--generation-database",
                "none",
                "--request-timeout",
                "30",
            ]
            print("maas contract:", " ".join(command), flush=True)
            started = time.monotonic()
            code = subprocess.call(command, cwd=root)  # st keeps a .schemathesis/ cache in its cwd
            print(f"maas contract: st exited {code} after {time.monotonic() - started:.0f} s")
            print(f"maas contract: the server answered {status_counts(server.log)}")
            if code:
                print(f"maas contract: server log tail:\n{server.log.read_text()[-3000:]}")
            return code


if __name__ == "__main__":
    sys.exit(main())
