"""The bounded load (`make load` runs the full one): 4 clients x 300 mixed V2 JSON and
binary requests on kept-open connections, with an alias move half-way. No error, every
answer right for the version that gave it, and the move seen within the TTL + 2 s.
RSS flatness and throughput are judged only by the full run."""

from __future__ import annotations

from tests.load.driver import LoadSpec, run_load


def test_a_bounded_load_has_no_errors_and_sees_the_alias_move() -> None:
    # A short TTL: at this size the half after the move lasts well under a second.
    report = run_load(LoadSpec(clients=4, requests=300, alias_ttl_seconds=0.2, rss_tolerance=None))
    summary = report.summary()
    assert report.problems == [], summary
    assert summary["requests"] == 1200 and summary["errors"] == 0
    assert summary["answers_by_version"]["1"] > 0 and summary["answers_by_version"]["2"] > 0
    assert summary["p50_ms"] > 0 and summary["p99_ms"] >= summary["p50_ms"]
