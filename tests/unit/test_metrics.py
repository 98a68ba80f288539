"""The per-request metrics written without Powertools' per-call checks are exactly what
``add_metric`` would have recorded, and still one EMF record per request."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from maas import metrics


def test_request_metrics_are_what_add_metric_records() -> None:
    fast = metrics.Telemetry(EphemeralMetrics(namespace="t"))
    fast.request("digits", 3, 1.25, 64, cache_hit=True)
    fast.request("digits", 3, 2, 1, cache_hit=False)

    checked = EphemeralMetrics(namespace="t")
    checked.add_dimension(name="model", value="digits")
    checked.add_dimension(name="version", value="3")
    for hit, ms, rows in ((True, 1.25, 64), (False, 2, 1)):
        checked.add_metric(name=metrics.INFERENCE_TIME, unit=MetricUnit.Milliseconds, value=ms)
        checked.add_metric(name=metrics.PREDICTIONS, unit=MetricUnit.Count, value=rows)
        name = metrics.CACHE_HIT if hit else metrics.CACHE_MISS
        checked.add_metric(name=name, unit=MetricUnit.Count, value=1)

    assert {k: dict(v) for k, v in fast.metrics.metric_set.items()} == {
        k: dict(v) for k, v in checked.metric_set.items()
    }
    assert fast.metrics.dimension_set == checked.dimension_set
    assert (
        fast.metrics.serialize_metric_set()["_aws"]["CloudWatchMetrics"]
        == (checked.serialize_metric_set()["_aws"]["CloudWatchMetrics"])
    )


def test_a_long_unflushed_run_flushes_before_emf_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = metrics.Telemetry(EphemeralMetrics(namespace="t"))
    for _ in range(101):
        telemetry.request("digits", 1, 1.0, 1, cache_hit=True)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 1  # the 101st request starts a new set, with its dimensions
    assert [len(records[0][name]) for name in ("InferenceTime", "Predictions", "CacheHit")] == [
        100
    ] * 3
    assert telemetry.metrics.dimension_set == {"model": "digits", "version": "1"}
    assert [len(v["Value"]) for v in telemetry.metrics.metric_set.values()] == [1, 1, 1]


def test_another_model_flushes_the_previous_set_first(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = metrics.Telemetry(EphemeralMetrics(namespace="t"))
    telemetry.request("digits", 1, 1.0, 1, cache_hit=True)
    telemetry.request("iris", 2, 1.0, 1, cache_hit=False)
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["model"] == "digits" and record[metrics.CACHE_HIT] == [1.0]
    assert telemetry.metrics.dimension_set == {"model": "iris", "version": "2"}
