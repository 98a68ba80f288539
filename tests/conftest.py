"""Fixtures shared by every test: AWS credentials that reach nothing, real models, registries."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import onnx_models

BUCKET = "maas-test-registry"


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint override, so nothing can reach real AWS."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "MAAS_REGISTRY",
        "AWS_RETRY_MODE",
        "AWS_MAX_ATTEMPTS",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MAAS_ACTOR", "pytest")


#: The ``maas`` logger before any entry point configured it (nothing in maas
#: configures logging at import).
_PRISTINE_MAAS_LOGGER = vars(logging.getLogger("maas")).copy()


@pytest.fixture(autouse=True)
def maas_loggers_as_they_were() -> Iterator[None]:
    """A Lambda entry point configures the ``maas`` logger (Powertools' handler, INFO,
    attributes that mark it configured) and every registered ``maas.*`` child: after
    each test, put them all back as nothing had configured them, so a later test's CLI
    call logs as a user's would (nothing on stdout) and a later entry point configures
    Powertools afresh. A module-scoped handler logs nowhere after its first test."""
    yield
    parent = logging.getLogger("maas")
    for added in set(vars(parent)) - set(_PRISTINE_MAAS_LOGGER):
        delattr(parent, added)
    vars(parent).update(_PRISTINE_MAAS_LOGGER)
    parent.handlers = []
    parent.setLevel(logging.NOTSET)  # also clears logging's cache of enabled levels
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and name.startswith("maas."):
            logger.handlers = []
            logger.propagate, logger.level = True, logging.NOTSET


@pytest.fixture(scope="session", autouse=True)
def moto_conditional_writes_are_atomic() -> None:
    """Make moto's conditional PUT atomic, as S3's is.

    moto 5 checks If-None-Match / If-Match and then stores the object in two
    steps without a lock, so two threads can both pass the check. Real S3
    decides conditional writes atomically. Serialising moto's handler lets the
    concurrency tests exercise our claim and compare-and-swap logic rather than
    a race inside the mock.
    """
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    lock = threading.Lock()

    @functools.wraps(original)
    def put_object(self: S3Response, *args: object, **kwargs: object) -> object:
        with lock:
            return original(self, *args, **kwargs)

    S3Response.put_object = put_object  # type: ignore[method-assign,assignment]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def onnx_model(model_dir: Path) -> Path:
    return onnx_models.save(onnx_models.digits_mlp(seed=0), model_dir / "digits-a.onnx")


@pytest.fixture(scope="session")
def onnx_model_b(model_dir: Path) -> Path:
    return onnx_models.save(onnx_models.digits_mlp(seed=1), model_dir / "digits-b.onnx")


@pytest.fixture
def s3_bucket() -> Iterator[str]:
    """An in-process moto S3 with the registry bucket created."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield BUCKET
