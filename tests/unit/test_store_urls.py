from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import InvalidInput
from maas.store import DEFAULT_REGISTRY, LocalStore, S3Store, check_key, open_store, registry_url


def test_registry_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert registry_url(None) == DEFAULT_REGISTRY == ".maas/registry"
    monkeypatch.setenv("MAAS_REGISTRY", "s3://from-env")
    assert registry_url(None) == "s3://from-env"
    assert registry_url("file:///flag") == "file:///flag"


def test_s3_urls_carry_bucket_and_prefix() -> None:
    store = open_store("s3://bucket/team/models/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == (
        "bucket",
        "team/models",
        "s3://bucket/team/models",
    )
    bare = open_store("s3://bucket")
    assert isinstance(bare, S3Store) and bare.prefix == "" and bare.url == "s3://bucket"


def test_file_urls_and_plain_paths_are_local(tmp_path: Path) -> None:
    for url in (f"file://{tmp_path}", str(tmp_path)):
        store = open_store(url)
        assert isinstance(store, LocalStore) and store.root == tmp_path


@pytest.mark.parametrize("url", ["http://x/y", "gs://bucket", "s3://", "file://", "s3://b/p?x=1"])
def test_unsupported_or_incomplete_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        open_store(url)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a/."])
def test_keys_that_could_escape_the_root_are_refused(key: str) -> None:
    with pytest.raises(InvalidInput):
        check_key(key)
