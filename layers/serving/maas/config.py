"""Serving configuration, read from the environment once, when the process starts.

Hot paths receive a :class:`ServingConfig`; they never read ``os.environ``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from maas.errors import InvalidInput
from maas.names import ModelRef, check_alias
from maas.store import registry_url

NanPolicy = Literal["reject", "allow"]


@dataclass(frozen=True)
class ServingConfig:
    registry_url: str = ".maas/registry"
    default_alias: str = "production"
    alias_ttl_seconds: float = 10.0
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    cache_bytes: int = 1024 * 2**20
    max_batch: int = 1024
    nan_policy: NanPolicy = "reject"
    preload: tuple[ModelRef, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingConfig:
        """Build from ``MAAS_*`` variables; a bad value fails at start-up, naming it."""
        env = os.environ if environ is None else environ
        return cls(
            registry_url=registry_url(env.get("MAAS_REGISTRY")),
            default_alias=check_alias(env.get("MAAS_DEFAULT_ALIAS", "production")),
            alias_ttl_seconds=_number(env, "MAAS_ALIAS_TTL_SECONDS", 10.0, minimum=0.0),
            cache_dir=Path(env.get("MAAS_CACHE_DIR") or default_cache_dir()),
            cache_bytes=int(
                _number(env, "MAAS_CACHE_MB", default_cache_mb(env), minimum=0.001) * 2**20
            ),
            max_batch=int(_number(env, "MAAS_MAX_BATCH", 1024, minimum=1)),
            nan_policy=_nan_policy(env.get("MAAS_NAN_POLICY", "reject")),
            preload=parse_preload(env.get("MAAS_PRELOAD", "")),
        )


def default_cache_dir() -> Path:
    """One directory per user under the temporary directory: the model cache must be
    private to its user (ModelCache refuses one that is not), and on a shared machine
    a fixed name would be whoever created it first."""
    return Path(tempfile.gettempdir()) / f"maas-models-{os.geteuid()}"


def default_cache_mb(env: Mapping[str, str]) -> float:
    """Half the Lambda function's memory, leaving the rest to the runtime and requests."""
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    return int(memory) / 2 if memory and memory.isdigit() else 1024.0


def parse_preload(text: str) -> tuple[ModelRef, ...]:
    """``MAAS_PRELOAD="digits,digits@staging,other:3"``."""
    return tuple(ModelRef.parse(item.strip()) for item in text.split(",") if item.strip())


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise InvalidInput(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _nan_policy(raw: str) -> NanPolicy:
    if raw == "reject":
        return "reject"
    if raw == "allow":
        return "allow"
    raise InvalidInput(f"MAAS_NAN_POLICY={raw!r}: use reject or allow")
