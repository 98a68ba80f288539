from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maas.config import ServingConfig, VerifyLimits, parse_preload
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


SERVING: Callable[[dict[str, str]], object] = ServingConfig.from_env
LIMITS: Callable[[dict[str, str]], object] = VerifyLimits.from_env


@pytest.mark.parametrize(
    ("read", "env", "message"),
    [
        (
            SERVING,
            {"MAAS_ALIAS_TTL_SECONDS": "soon"},
            "MAAS_ALIAS_TTL_SECONDS='soon' is not a number",
        ),
        (SERVING, {"MAAS_MAX_BATCH": "0"}, "MAAS_MAX_BATCH='0' must be at least 1"),
        (SERVING, {"MAAS_NAN_POLICY": "ignore"}, "MAAS_NAN_POLICY='ignore': use reject or allow"),
        (SERVING, {"MAAS_DEFAULT_ALIAS": "Prod"}, "invalid alias name"),
        (SERVING, {"MAAS_PRELOAD": "ok,../bad"}, "invalid model name"),
        (SERVING, {"MAAS_RUN_TIMEOUT_MS": "0"}, "MAAS_RUN_TIMEOUT_MS='0' must be at least 1"),
        (LIMITS, {"MAAS_VERIFY_MEMORY_MB": "lots"}, "MAAS_VERIFY_MEMORY_MB='lots' is not a number"),
        (LIMITS, {"MAAS_VERIFY_MEMORY_MB": "10"}, "MAAS_VERIFY_MEMORY_MB='10' must be at least 64"),
        (LIMITS, {"MAAS_VERIFY_TIMEOUT_S": "0"}, "MAAS_VERIFY_TIMEOUT_S='0' must be at least 0.1"),
        (LIMITS, {"MAAS_MAX_MODEL_BYTES": "0"}, "MAAS_MAX_MODEL_BYTES='0' must be at least 1"),
        (LIMITS, {"MAAS_MAX_NODES": "-3"}, "MAAS_MAX_NODES='-3' must be at least 1"),
    ],
)
def test_bad_values_fail_naming_the_variable(
    read: Callable[[dict[str, str]], object], env: dict[str, str], message: str
) -> None:
    """Serving reads its settings at start-up; publish and the deployer read the
    verification limits (``VerifyLimits``) when they verify."""
    with pytest.raises(InvalidInput, match=message):
        read(env)


def test_preload_ignores_blanks() -> None:
    assert parse_preload(" , digits ,") == (ModelRef("digits"),)


def test_body_limit_defaults_to_lambdas_payload_limit_and_is_checked() -> None:
    from maas.config import LAMBDA_PAYLOAD_BYTES

    assert ServingConfig.from_env({}).max_body_bytes == LAMBDA_PAYLOAD_BYTES == 6 * 2**20
    assert ServingConfig.from_env({"MAAS_MAX_BODY_BYTES": "1024"}).max_body_bytes == 1024
    for bad in ("0", "-1", "1e6", "lots"):
        with pytest.raises(InvalidInput, match="MAAS_MAX_BODY_BYTES"):
            ServingConfig.from_env({"MAAS_MAX_BODY_BYTES": bad})


def test_deployer_settings() -> None:
    from maas.config import DeployerConfig

    assert DeployerConfig.from_env({}) == DeployerConfig(".maas/registry", "staging")
    configured = DeployerConfig.from_env(
        {"MAAS_REGISTRY": "s3://b/p", "MAAS_INCOMING_ALIAS": "review"}
    )
    assert configured == DeployerConfig("s3://b/p", "review")
    with pytest.raises(InvalidInput):
        DeployerConfig.from_env({"MAAS_INCOMING_ALIAS": "Not An Alias"})


def test_verification_limits_default_and_read() -> None:
    defaults = VerifyLimits.from_env({})
    assert defaults == VerifyLimits()
    assert (defaults.memory_mb, defaults.timeout_s, defaults.run_timeout_ms) == (1024, 60, 20000)
    assert (defaults.max_model_bytes, defaults.max_nodes) == (512 * 2**20, 100_000)
    assert defaults.memory_bytes == 2**30
    limits = VerifyLimits.from_env(
        {
            "MAAS_VERIFY_MEMORY_MB": "256",
            "MAAS_VERIFY_TIMEOUT_S": "5",
            "MAAS_MAX_MODEL_BYTES": "1000",
            "MAAS_MAX_NODES": "10",
            "MAAS_RUN_TIMEOUT_MS": "250",
        }
    )
    assert limits == VerifyLimits(256, 5, 1000, 10, 250)
    assert ServingConfig.from_env({"MAAS_RUN_TIMEOUT_MS": "250"}).run_timeout_ms == 250


def test_the_default_cache_dir_is_per_user() -> None:
    import os

    assert ServingConfig().cache_dir.name == f"maas-models-{os.geteuid()}"
    assert ServingConfig.from_env({}).cache_dir == ServingConfig().cache_dir
