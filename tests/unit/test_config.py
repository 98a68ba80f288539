from __future__ import annotations

from pathlib import Path

import pytest

from maas.config import ServingConfig, parse_preload
from maas.errors import InvalidInput
from maas.names import ModelRef


def test_defaults() -> None:
    config = ServingConfig.from_env({})
    assert config.default_alias == "production"
    assert config.alias_ttl_seconds == 10.0
    assert config.cache_bytes == 1024 * 2**20
    assert config.max_batch == 1024
    assert config.nan_policy == "reject"
    assert config.preload == ()
    assert config.registry_url == ".maas/registry"


def test_cache_budget_defaults_to_half_the_lambda_memory() -> None:
    config = ServingConfig.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"})
    assert config.cache_bytes == 1504 * 2**20
    explicit = ServingConfig.from_env(
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008", "MAAS_CACHE_MB": "256"}
    )
    assert explicit.cache_bytes == 256 * 2**20


def test_every_variable_is_read(tmp_path: Path) -> None:
    config = ServingConfig.from_env(
        {
            "MAAS_REGISTRY": "s3://bucket/prefix",
            "MAAS_DEFAULT_ALIAS": "live",
            "MAAS_ALIAS_TTL_SECONDS": "2.5",
            "MAAS_CACHE_DIR": str(tmp_path),
            "MAAS_MAX_BATCH": "64",
            "MAAS_NAN_POLICY": "allow",
            "MAAS_PRELOAD": "a, b@staging,c:3",
        }
    )
    assert (config.registry_url, config.default_alias, config.alias_ttl_seconds) == (
        "s3://bucket/prefix",
        "live",
        2.5,
    )
    assert (config.cache_dir, config.max_batch, config.nan_policy) == (tmp_path, 64, "allow")
    assert config.preload == (
        ModelRef("a"),
        ModelRef("b", alias="staging"),
        ModelRef("c", version=3),
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAAS_ALIAS_TTL_SECONDS": "soon"}, "MAAS_ALIAS_TTL_SECONDS='soon' is not a number"),
        ({"MAAS_MAX_BATCH": "0"}, "MAAS_MAX_BATCH='0' must be at least 1"),
        ({"MAAS_NAN_POLICY": "ignore"}, "MAAS_NAN_POLICY='ignore': use reject or allow"),
        ({"MAAS_DEFAULT_ALIAS": "Prod"}, "invalid alias name"),
        ({"MAAS_PRELOAD": "ok,../bad"}, "invalid model name"),
    ],
)
def test_bad_values_fail_at_start_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ServingConfig.from_env(env)


def test_preload_ignores_blanks() -> None:
    assert parse_preload(" , digits ,") == (ModelRef("digits"),)


def test_the_default_cache_dir_is_per_user() -> None:
    import os

    assert ServingConfig().cache_dir.name == f"maas-models-{os.geteuid()}"
    assert ServingConfig.from_env({}).cache_dir == ServingConfig().cache_dir
