from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from maas.registry import Registry
from maas.store import LocalStore, S3Store, Store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same registry suite runs on the local-directory store and on S3 (moto)."""
    if request.param == "local":
        yield LocalStore(tmp_path / "registry")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        # A prefix, to prove every key lives under it.
        yield S3Store(bucket, "team-a/registry", client=boto3.client("s3"))


@pytest.fixture
def registry(store: Store) -> Registry:
    return Registry(store, actor="pytest")
