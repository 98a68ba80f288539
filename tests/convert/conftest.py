"""Fixtures for the convert tests: a CLI runner, a moto S3 registry, the reference model."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from maas.errors import InvalidInput, MaasError
from tests.convert.api import cli, train

BUCKET = "maas-convert-tests"


class _Parser(argparse.ArgumentParser):
    """Like maas.cli's parser: a usage error is InvalidInput (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The main CLI's shape: a ``common`` parent with --registry/--json, then register()."""
    common = _Parser(add_help=False)
    common.add_argument("--registry", metavar="URL")
    common.add_argument("--json", action="store_true")
    parser = _Parser(prog="maas")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cli.register(commands, common)
    return parser


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*argv: str | Path) -> Outcome:
    """Run a command the way maas.cli.main does: MaasError → one line on stderr + its exit
    code; a non-zero int returned by ``run`` is the exit code. Anything else propagates."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            args = build_parser().parse_args([str(a) for a in argv])
            code = args.run(args) or 0
        except MaasError as exc:
            print(f"maas: error: {exc}", file=sys.stderr)
            code = exc.exit_code
    return Outcome(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def s3_env() -> Iterator[None]:
    """Fake credentials and no real endpoint: nothing can reach AWS."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "MAAS_REGISTRY"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
def s3_registry(s3_env: None) -> Iterator[str]:
    """An empty moto S3 bucket, as a registry URL."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}"


@dataclass(frozen=True)
class Reference:
    """What ``maas train-example`` wrote."""

    out: Path
    model: Path
    eval_data: Path
    calib_data: Path
    settings: dict[str, Any]


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The digits reference model, trained once per test session (a few seconds)."""
    out = tmp_path_factory.mktemp("reference")
    result = train.train_example(out, dataset="digits", epochs=20, seed=0)
    return Reference(out, result.model, result.eval_data, result.calib_data, result.settings)
