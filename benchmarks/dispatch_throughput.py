"""Dispatch throughput to a local HTTP gateway, side by side with its raw baselines.

The measuring is :func:`engine.dispatch_bench.measure`; this prints its result.

    .venv/bin/python benchmarks/dispatch_throughput.py [--messages 10000] [--concurrency 16]
        [--batch-size 2000] [--db URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.dispatch_bench import measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--db", default=None, help="an empty database (default: SQLite file)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.messages, args.concurrency, batch_size=args.batch_size, db_url=args.db)
    if args.json:
        print(json.dumps(result))
        return
    assert result["gateway_delivered"] == args.messages, result
    print(f"messages {args.messages}, concurrency {args.concurrency}, store {result['store']}")
    print(
        f"baseline  httpx straight to the gateway       : {result['baseline_httpx_per_s']:8,} msg/s"
    )
    print(
        f"baseline  http.client straight to the gateway : "
        f"{result['baseline_http_client_per_s']:8,} msg/s"
    )
    print(
        f"dispatcher outbox -> gateway                  : {result['dispatcher_per_s']:8,} msg/s "
        f"({result['ratio_to_http_client']:.0%} of http.client)"
    )
    print(
        f"gateway: delivered {result['gateway_delivered']}, "
        f"duplicates {result['gateway_duplicates']}"
    )


if __name__ == "__main__":
    main()
