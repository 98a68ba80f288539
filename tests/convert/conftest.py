"""Fixtures for the convert tests: a CLI runner, a moto S3 registry, the reference model."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from maas.cli import main
from tests.convert.api import train

BUCKET = "maas-convert-tests"


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*argv: str | Path) -> Outcome:
    """Run the real ``maas.cli.main``, capturing its output. MAAS_DEBUG makes an
    unexpected exception propagate (a test failure) instead of becoming exit 1."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.setenv("MAAS_DEBUG", "1")
        code = main([str(a) for a in argv])
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

    @property
    def train_data(self) -> Path:
        return self.out / "train.npz"


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The digits reference model, trained once per test session (a few seconds)."""
    out = tmp_path_factory.mktemp("reference")
    result = train.train_example(out, dataset="digits", epochs=20, seed=0)
    return Reference(out, result.model, result.eval_data, result.calib_data, result.settings)
