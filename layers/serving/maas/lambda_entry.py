"""Lambda entry points, assembled once per execution environment (at init).

Powertools does the cross-cutting work: structured JSON logs with the Lambda
context (Logger), one EMF record per invocation plus the ColdStart metric
(Metrics). The DataPlane is built from the environment at init, onnxruntime is
imported and the S3 client built there (``DataPlane.warm_up``), and
``MAAS_PRELOAD`` models are loaded there too: with them, the first request
imports nothing and reads nothing (``tests/functional/test_cold_start.py``).
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Callable
from typing import IO, Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from maas import metrics
from maas.config import DeployerConfig, ServingConfig
from maas.errors import MaasError
from maas.http_api import build_app, within_lambda_payload
from maas.local_context import LocalContext
from maas.serving.dataplane import DataPlane

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class _CurrentStdout(io.TextIOBase):
    """``sys.stdout`` as it is at each write. Powertools' handler keeps the stream it
    was given, and the ``maas`` logger outlives whoever replaced ``sys.stdout`` since:
    pytest's capture (whose closed stream failed later tests) or `maas serve`'s
    whole-line writer (which log records bypassed, so they could interleave)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def writable(self) -> bool:
        return True


def service_logger() -> Logger:
    """The ``maas`` Powertools Logger (one handler, shared by every instance)."""
    return Logger(service="maas", stream=cast(IO[str], _CurrentStdout()))


def _logger() -> Logger:
    logger = service_logger()
    # The core logs through the standard library; give it Powertools' JSON format.
    copy_config_to_registered_loggers(
        source_logger=logger, include={"maas"}, log_level=logging.INFO
    )
    return logger


def inference_handler(
    config: ServingConfig | None = None, telemetry: metrics.Telemetry | None = None
) -> LambdaHandler:
    logger = _logger()
    telemetry = telemetry or metrics.Telemetry()
    config = config or ServingConfig.from_env()
    plane = DataPlane(config, telemetry=telemetry)
    plane.warm_up()
    try:
        plane.preload()
    except MaasError as exc:
        # Keep the environment alive: readiness reports 503 until the load succeeds.
        logger.error("preload failed; models will load on first use", extra={"error": str(exc)})
    app = build_app(lambda: plane, config.max_body_bytes)
    _register_snapstart_hook(plane)
    return InferenceHandler(app, plane, logger, telemetry)


def _register_snapstart_hook(plane: DataPlane) -> None:
    """With SnapStart, every environment resumes from one memory snapshot: reseed
    the canary's generator (or all environments would split requests alike) and
    drop the boto3 client (its connections and credentials belong to the snapshot)."""
    try:
        from snapshot_restore_py import register_after_restore  # only on Lambda
    except ImportError:
        return
    register_after_restore(plane.after_restore)


class InferenceHandler:
    """The Lambda entry point: logging context and one metric flush around each event."""

    def __init__(
        self, app: Any, plane: DataPlane, logger: Logger, telemetry: metrics.Telemetry
    ) -> None:
        self.app = app
        self.plane = plane
        # Health checks and metadata calls record no metric; Powertools would warn on each.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        inject = logger.inject_lambda_context(clear_state=True)
        flush = telemetry.metrics.log_metrics(capture_cold_start_metric=True)
        self._handle: LambdaHandler = inject(flush(self._resolve))

    def _resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.app.resolve(event, context)
        return within_lambda_payload(response)

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return self._handle(event, context if context is not None else LocalContext())


def deployer_handler(
    registry_url: str | None = None,
    telemetry: metrics.Telemetry | None = None,
    config: DeployerConfig | None = None,
) -> DeployerHandler:
    from maas.registry import open_registry
    from maas.upload_events import Deployer

    config = config or DeployerConfig.from_env()
    logger = _logger()
    telemetry = telemetry or metrics.Telemetry()
    registry = open_registry(registry_url or config.registry_url)
    return DeployerHandler(Deployer(registry, config.incoming_alias, telemetry), logger, telemetry)


class DeployerHandler:
    """S3 notifications in; a summary of what each record did out (also logged)."""

    def __init__(self, deployer: Any, logger: Logger, telemetry: metrics.Telemetry) -> None:
        self.deployer = deployer
        self.logger = logger
        inject = logger.inject_lambda_context(clear_state=True)
        flush = telemetry.metrics.log_metrics()
        self._handle: LambdaHandler = inject(flush(self._deploy))

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        # Replaying an event by hand passes no context; Powertools needs one.
        return self._handle(event, context if context is not None else LocalContext())

    def _deploy(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        outcomes = [o.as_json() for o in self.deployer.handle_event(event)]
        for outcome in outcomes:
            self.logger.info("deployer outcome", extra={"outcome": outcome})
        return {"results": outcomes}
