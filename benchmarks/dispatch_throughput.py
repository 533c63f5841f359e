"""Dispatch throughput to a local HTTP gateway, side by side with its baseline.

Baseline: the same number of JSON POSTs sent straight with httpx from the same number of
threads (the ceiling the client and this gateway allow). Dispatcher: the same messages queued
in a SQLite outbox and delivered by ``Dispatcher.drain`` (claim, consent re-check, send,
record). The gateway runs in its own process so it does not share our interpreter's lock.

    .venv/bin/python benchmarks/dispatch_throughput.py [--messages 10000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from engine.actions.base import Effect  # noqa: E402
from engine.channels.config import ChannelConfig, Dispatch, HttpEndpoint, Retry, Sending  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.dispatch import Dispatcher  # noqa: E402
from engine.policy import Policy  # noqa: E402
from engine.sinks import Decision, RunInfo, StoreSink  # noqa: E402
from engine.store.db import create_all, open_store  # noqa: E402
from engine.store.models import branches, consents, customers, runs  # noqa: E402

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from gateways import HttpGateway
with HttpGateway() as g:
    print(g.port, flush=True)
    while True:
        time.sleep(3600)
"""


def gateway() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=str(ROOT / "tests"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/sms"


def baseline(url: str, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(limits=limits, timeout=10) as client:

        def post(i: int) -> int:
            key = f"base-{i}"
            body = {"to": "13800000000", "text": "您好", "idempotency_key": key}
            return client.post(url, json=body, headers={"Idempotency-Key": key}).status_code

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            codes = list(pool.map(post, range(n)))
        elapsed = time.perf_counter() - start
    assert codes.count(200) == n
    return n / elapsed


def queue(url: str, n: int) -> None:
    store = open_store(url)
    create_all(store)
    now = dt.datetime(2026, 11, 23, 1, 0)
    ids = [f"C{i:07d}" for i in range(n)]
    with store.begin() as conn:
        conn.execute(branches.insert().values(id="B1", name="支行", city="北京"))
        conn.execute(
            customers.insert(),
            [
                {
                    "id": c,
                    "name": "张三",
                    "branch_id": "B1",
                    "tier": "vip",
                    "opened_on": dt.date(2020, 1, 1),
                    "lifecycle_stage": "mature",
                }
                for c in ids
            ],
        )
        conn.execute(
            consents.insert(),
            [
                {
                    "customer_id": c,
                    "channel": "sms",
                    "purpose": "marketing",
                    "given_at": dt.datetime(2020, 1, 1),
                }
                for c in ids
            ],
        )
        run_id = conn.execute(
            runs.insert()
            .values(
                playbook_id="bench",
                window="w",
                as_of=now,
                content_hash="h",
                started_at=now,
                status="done",
            )
            .returning(runs.c.id)
        ).scalar_one()
    row = {"channel": "sms", "recipient": "13800000000", "subject": None, "body": "您好"}
    decisions = [Decision(c, (Effect("sms", 0, c, "outbox", row, "sms"),), ()) for c in ids]
    sink = StoreSink(store)
    for i in range(0, n, 1000):
        sink.write(RunInfo("bench", "w", "h", run_id, now, now), decisions[i : i + 1000])
    store.dispose()


def dispatcher(db_url: str, url: str, concurrency: int) -> tuple[float, int]:
    store = open_store(db_url)
    config = ChannelConfig(
        sms=HttpEndpoint(url, sending=Sending(timeout=10, concurrency=concurrency)),
        retry=Retry(max_attempts=3),
        dispatch=Dispatch(batch_size=2000),
    )
    moment = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with Dispatcher(store, Settings(root=ROOT), config=config, policy=Policy()) as d:
        start = time.perf_counter()
        counts = d.drain(moment)
        elapsed = time.perf_counter() - start
    store.dispose()
    return counts.sent / elapsed, counts.sent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    proc, url = gateway()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/bench.db"
            queue(db_url, args.messages)
            base = baseline(url, args.messages, args.concurrency)
            rate, sent = dispatcher(db_url, url, args.concurrency)
    finally:
        proc.terminate()
    assert sent == args.messages, sent
    print(f"messages {args.messages}, concurrency {args.concurrency}")
    print(f"baseline  httpx straight to the gateway : {base:8,.0f} msg/s")
    print(f"dispatcher outbox -> gateway (SQLite)   : {rate:8,.0f} msg/s ({rate / base:.0%})")


if __name__ == "__main__":
    main()
