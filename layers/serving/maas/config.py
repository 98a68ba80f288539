"""Every ``MAAS_*`` setting, read from the environment once, when the process starts.

This module is the only reader of ``MAAS_*`` variables (``MAAS_REGISTRY``,
``MAAS_ACTOR`` and ``MAAS_DEBUG`` aside, read where the CLI or the registry
needs them). Hot paths receive a :class:`ServingConfig`; they never read
``os.environ``.
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

#: Lambda's synchronous payload limit, each way.
LAMBDA_PAYLOAD_BYTES = 6 * 2**20


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
    max_body_bytes: int = LAMBDA_PAYLOAD_BYTES
    run_timeout_ms: float = 20_000.0
    #: Drift statistics on served models (``MAAS_DRIFT=off`` disables them), and the
    #: rows per window at which their PSI is emitted (``MAAS_DRIFT_WINDOW``).
    drift: bool = True
    drift_window: int = 500

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
            max_body_bytes=_positive_int(env, "MAAS_MAX_BODY_BYTES", LAMBDA_PAYLOAD_BYTES),
            run_timeout_ms=run_timeout_ms_from_env(env),
            drift=_on_off(env, "MAAS_DRIFT", True),
            drift_window=_positive_int(env, "MAAS_DRIFT_WINDOW", 500),
        )


@dataclass(frozen=True)
class DeployerConfig:
    registry_url: str = ".maas/registry"
    incoming_alias: str = "staging"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeployerConfig:
        env = os.environ if environ is None else environ
        return cls(
            registry_url=registry_url(env.get("MAAS_REGISTRY")),
            incoming_alias=check_alias(env.get("MAAS_INCOMING_ALIAS", "staging")),
        )


def cli_default_alias(environ: Mapping[str, str] | None = None) -> str:
    """The alias a command uses when none is given: ``MAAS_DEFAULT_ALIAS``, else production."""
    env = os.environ if environ is None else environ
    return check_alias(env.get("MAAS_DEFAULT_ALIAS") or "production")


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


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"{name}={raw!r} must be a positive integer")
    return int(raw)


def _nan_policy(raw: str) -> NanPolicy:
    if raw == "reject":
        return "reject"
    if raw == "allow":
        return "allow"
    raise InvalidInput(f"MAAS_NAN_POLICY={raw!r}: use reject or allow")


@dataclass(frozen=True)
class VerifyLimits:
    """Bounds on verifying a candidate model, and on each inference run.

    - ``memory_mb``: the verification child's data limit (RLIMIT_DATA), so a
      model that balloons at session creation is refused, not run into
      Lambda's memory ceiling.
    - ``timeout_s``: wall-clock deadline of the child; it is killed after it.
    - ``max_model_bytes``: checked on the file size before anything parses it.
      512 MiB by default: the inference function caches the file in ``/tmp``
      (512 MB by default, EphemeralStorageSize) and budgets a loaded model at
      twice its file size against half of its 2048 MB memory, so no larger
      model can be served by the default stack. Raise it with both.
    - ``max_nodes``: counted on the wire before the protobuf is parsed (every
      parsed node costs memory even when empty). 100,000 by default: large
      real graphs (BERT-large, ResNet-152, GPT-2 exports) have a few thousand
      nodes; parsing 100,000 empty ones costs about 15 MB.
    - ``run_timeout_ms``: serving's deadline for one ``session.run``; under API
      Gateway's 30 s integration timeout.
    """

    memory_mb: float = 1024.0
    timeout_s: float = 60.0
    max_model_bytes: int = 512 * 2**20
    max_nodes: int = 100_000
    run_timeout_ms: float = 20_000.0

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_mb * 2**20)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VerifyLimits:
        env = os.environ if environ is None else environ
        return cls(
            memory_mb=_number(env, "MAAS_VERIFY_MEMORY_MB", 1024.0, minimum=64.0),
            timeout_s=_number(env, "MAAS_VERIFY_TIMEOUT_S", 60.0, minimum=0.1),
            max_model_bytes=int(_number(env, "MAAS_MAX_MODEL_BYTES", 512 * 2**20, minimum=1)),
            max_nodes=int(_number(env, "MAAS_MAX_NODES", 100_000, minimum=1)),
            run_timeout_ms=run_timeout_ms_from_env(env),
        )


def run_timeout_ms_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``MAAS_RUN_TIMEOUT_MS`` alone: serving's deadline for one inference run."""
    env = os.environ if environ is None else environ
    return _number(env, "MAAS_RUN_TIMEOUT_MS", 20_000.0, minimum=1.0)


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("on", "true", "1"):
        return True
    if value in ("off", "false", "0"):
        return False
    raise InvalidInput(f"{name}={value!r}: use on or off")
