"""`make load`: the full load on `maas serve` (see tests.load.driver), judged and reported.

    python -m tests.load --clients 8 --requests 5000

Exits 1 when any invariant does not hold: an error, the alias move not seen within
the TTL + 2 s, or the server's RSS varying more than 5% after warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tests.load.driver import LoadSpec, run_load


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5000, help="per client")
    parser.add_argument("--alias-ttl", type=float, default=1.0, help="MAAS_ALIAS_TTL_SECONDS")
    parser.add_argument("--rss-tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    spec = LoadSpec(args.clients, args.requests, args.alias_ttl, args.rss_tolerance)
    report = run_load(spec)
    summary = report.summary()
    print(
        f"maas load: {summary['clients']} clients x {summary['requests_per_client']} requests "
        f"(V2 JSON and binary, kept-open connections), {summary['requests']} answered, "
        f"{summary['errors']} errors in {summary['seconds']} s: "
        f"{summary['requests_per_second']} req/s, p50 {summary['p50_ms']} ms, "
        f"p99 {summary['p99_ms']} ms"
    )
    print(
        f"maas load: alias moved 1 -> 2 half-way, first answer from 2 after "
        f"{summary['switch_seconds']} s (TTL {summary['alias_ttl_seconds']} s); "
        f"answers by version {summary['answers_by_version']}"
    )
    print(
        f"maas load: server RSS after warm-up {summary['rss_mb_min_max']} MB "
        f"({summary['rss_growth_percent']}% over {summary['rss_samples']} samples)"
    )
    print(json.dumps(summary))
    for problem in report.problems:
        print(f"maas load: FAILED: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
