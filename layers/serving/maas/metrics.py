"""Metric names, in one place, and the thin layer that records them (CloudWatch EMF via Powertools).

Per-request metrics (InferenceTime, Predictions, CacheHit/CacheMiss) go into
the invocation's shared metric set, flushed once by the handler's
``log_metrics``: one EMF record per request, whatever the number of metrics.
Rare events (loads, downloads, evictions, stale serves) are emitted at once
with their own dimensions through ``single_metric``, so they never change the
dimensions of the request's set. Powertools flushes by itself at 100 metrics.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.constants import MAX_METRICS

COLD_START = "ColdStart"  # emitted by Powertools' log_metrics(capture_cold_start_metric=True)
MODEL_LOAD_TIME = "ModelLoadTime"
MODEL_DOWNLOAD_BYTES = "ModelDownloadBytes"
CACHE_HIT = "CacheHit"
CACHE_MISS = "CacheMiss"
CACHE_EVICTIONS = "CacheEvictions"
INFERENCE_TIME = "InferenceTime"
PREDICTIONS = "Predictions"
STALE_SERVES = "StaleServes"
INTEGRITY_FAILURES = "IntegrityFailures"
DEPLOYMENT_SUCCEEDED = "DeploymentSucceeded"
DEPLOYMENT_FAILED = "DeploymentFailed"
DEPLOY_VALIDATION_TIME = "DeployValidationTime"
DEPLOY_EVENTS_IGNORED = "DeployEventsIgnored"
DRIFT_PSI = "DriftPSI"
DRIFT_PSI_MEAN = "DriftPSIMean"
DRIFTED_FEATURES = "DriftedFeatures"
PREDICTION_DRIFT_PSI = "PredictionDriftPSI"

_MILLISECONDS = MetricUnit.Milliseconds.value
_COUNT = MetricUnit.Count.value
#: Values one request adds: InferenceTime, Predictions, CacheHit or CacheMiss.
_PER_REQUEST = 3

DIMENSION_MODEL = "model"
DIMENSION_VERSION = "version"
DEFAULT_NAMESPACE = "maas"

log = logging.getLogger(__name__)


def default_metrics() -> Any:
    """Powertools Metrics; its namespace comes from POWERTOOLS_METRICS_NAMESPACE."""
    from aws_lambda_powertools import Metrics

    namespace = None if os.environ.get("POWERTOOLS_METRICS_NAMESPACE") else DEFAULT_NAMESPACE
    return Metrics(namespace=namespace)


class Telemetry:
    """What the serving core counts. Built on an injectable Powertools metrics object."""

    def __init__(self, metrics: Any = None) -> None:
        self._metrics = metrics

    @property
    def metrics(self) -> Any:
        if self._metrics is None:
            self._metrics = default_metrics()
        return self._metrics

    def _add(self, name: str, unit: MetricUnit, value: float) -> None:
        self.metrics.add_metric(name=name, unit=unit, value=value)

    def _event(
        self,
        name: str,
        unit: MetricUnit,
        value: float,
        model: str | None = None,
        version: int | None = None,
    ) -> None:
        from aws_lambda_powertools.metrics import single_metric

        dims: dict[str, str] = {}
        if model is not None:
            dims[DIMENSION_MODEL] = model
        if version is not None:
            dims[DIMENSION_VERSION] = str(version)
        with single_metric(
            name=name,
            unit=unit,
            value=value,
            namespace=self.metrics.namespace,
            default_dimensions=dims,
        ) as metric:
            del metric  # dimensions come from default_dimensions

    # per request: one call, into the invocation's shared set
    def request(
        self, model: str, version: int, inference_ms: float, rows: int, cache_hit: bool
    ) -> None:
        metrics = self.metrics
        if self._full():
            # Without a per-invocation flush (local serving), publish before EMF's
            # limit, so that this request's three values stay in one record.
            metrics.flush_metrics()
        current = metrics.dimension_set
        version_text = str(version)
        if current.get(DIMENSION_MODEL) != model or current.get(DIMENSION_VERSION) != version_text:
            if current.get(DIMENSION_MODEL) is not None and metrics.metric_set:
                # Another model's request is still unflushed (no per-invocation
                # flush, e.g. local serving): publish it before re-dimensioning.
                metrics.flush_metrics()
            metrics.add_dimension(name=DIMENSION_MODEL, value=model)
            metrics.add_dimension(name=DIMENSION_VERSION, value=version_text)
        self._append(INFERENCE_TIME, _MILLISECONDS, float(inference_ms))
        self._append(PREDICTIONS, _COUNT, float(rows))
        self._append(CACHE_HIT if cache_hit else CACHE_MISS, _COUNT, 1.0)

    def _full(self) -> bool:
        metric_set = self.metrics.metric_set
        if len(metric_set) > MAX_METRICS - _PER_REQUEST:
            return True
        return any(len(entry["Value"]) >= MAX_METRICS for entry in metric_set.values())

    def _append(self, name: str, unit: str, value: float) -> None:
        """``add_metric`` without its per-call checks, for the per-request metrics: their
        names and units are the constants above (``tests/unit/test_metrics.py`` proves
        the entries equal ``add_metric``'s), their values are numbers by construction."""
        metric_set = self.metrics.metric_set
        entry = metric_set.get(name)
        if entry is None:
            entry = metric_set[name] = {"Unit": unit, "StorageResolution": 60, "Value": []}
        entry["Value"].append(value)

    # the deployer: no dimensions, so alarms can watch them directly
    def deployment(self, status: str, validation_ms: float) -> None:
        if status == "succeeded":
            self._add(DEPLOYMENT_SUCCEEDED, MetricUnit.Count, 1)
        elif status == "failed":
            self._add(DEPLOYMENT_FAILED, MetricUnit.Count, 1)
        if validation_ms:
            self._add(DEPLOY_VALIDATION_TIME, MetricUnit.Milliseconds, validation_ms)

    def ignored_event(self) -> None:
        self._add(DEPLOY_EVENTS_IGNORED, MetricUnit.Count, 1)

    # rare events
    def model_loaded(self, model: str, version: int, load_ms: float) -> None:
        self._event(MODEL_LOAD_TIME, MetricUnit.Milliseconds, load_ms, model, version)

    def downloaded(self, model: str, version: int, size: int) -> None:
        self._event(MODEL_DOWNLOAD_BYTES, MetricUnit.Bytes, size, model, version)

    def evicted(self, model: str, version: int) -> None:
        self._event(CACHE_EVICTIONS, MetricUnit.Count, 1, model, version)

    def stale_serve(self, model: str) -> None:
        self._event(STALE_SERVES, MetricUnit.Count, 1, model)

    def integrity_failure(self, model: str, version: int) -> None:
        self._event(INTEGRITY_FAILURES, MetricUnit.Count, 1, model, version)

    def drift(self, model: str, version: int, scores: Any) -> None:
        """One window's drift: one EMF record of its own, with model and version, so the
        request's record (and its dimensions) stays as it is."""
        from aws_lambda_powertools.metrics import EphemeralMetrics

        record = EphemeralMetrics(namespace=self.metrics.namespace)
        record.add_dimension(name=DIMENSION_MODEL, value=model)
        record.add_dimension(name=DIMENSION_VERSION, value=str(version))
        record.add_metric(name=DRIFT_PSI, unit=MetricUnit.NoUnit, value=scores.psi_max)
        record.add_metric(name=DRIFT_PSI_MEAN, unit=MetricUnit.NoUnit, value=scores.psi_mean)
        record.add_metric(
            name=DRIFTED_FEATURES, unit=MetricUnit.Count, value=scores.drifted_features
        )
        if scores.prediction_psi is not None:
            record.add_metric(
                name=PREDICTION_DRIFT_PSI, unit=MetricUnit.NoUnit, value=scores.prediction_psi
            )
        record.flush_metrics()
