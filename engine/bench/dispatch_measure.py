"""Dispatch throughput to a local HTTP gateway, measured side by side with raw baselines.

``measure`` queues the same number of SMS in a store (through the real sink: ledger and
outbox rows with their idempotency keys, consent for every customer) and times
``Dispatcher.drain`` delivering them (claim, consent and quiet-hour re-check, send, record)
to :class:`~engine.bench.loopback.LoopbackGateway`, with no rate limit. In the same run, on the
same gateway and with the same number of threads, it times two baselines that only POST:
``httpx`` (a general-purpose client) and ``http.client`` (what the SMS adapter uses). The
gateway's own counts prove every message arrived once.

The target (issue: actions and delivery) is at least 2,000 messages a second.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection

from engine.actions.base import Effect
from engine.bench.loopback import LoopbackGateway
from engine.channels.config import ChannelConfig, Dispatch, HttpEndpoint, Retry, Sending
from engine.core.clock import utc_naive
from engine.core.settings import Settings
from engine.delivery.dispatcher import Dispatcher
from engine.execution.sinks import Decision, RunInfo, StoreSink
from engine.policy import Policy
from engine.store.db import create_all, open_store
from engine.store.models import branches, consents, customers, runs

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
BODY = "您好，您的理财产品将于下周到期，回复 1 预约理财经理。"


def measure(
    messages: int = 10_000,
    concurrency: int = 16,
    *,
    batch_size: int = 2000,
    db_url: str | None = None,
) -> dict[str, Any]:
    """Queue ``messages`` SMS, deliver them, and return the rates (messages per second).

    ``db_url`` defaults to a fresh SQLite file in a temporary folder; a PostgreSQL URL must
    name an empty database (the tables are created in it).
    """
    with tempfile.TemporaryDirectory() as tmp, LoopbackGateway() as gateway:
        url = db_url or f"sqlite:///{tmp}/bench.db"
        queue_messages(url, messages)
        raw = baselines(gateway.url(), messages, concurrency)
        raw_httpx, raw_stdlib = raw["httpx"], raw["http_client"]
        before = _stats(gateway)
        rate, sent = _dispatch(url, gateway.url(), concurrency, batch_size)
        after = _stats(gateway)
    delivered = after["delivered"] - before["delivered"]
    return {
        "messages": messages,
        "concurrency": concurrency,
        "batch_size": batch_size,
        "store": url.split(":", 1)[0],
        "baseline_httpx_per_s": round(raw_httpx),
        "baseline_http_client_per_s": round(raw_stdlib),
        "dispatcher_per_s": round(rate),
        "ratio_to_http_client": round(rate / raw_stdlib, 3),
        "sent": sent,
        "gateway_delivered": delivered,
        "gateway_duplicates": after["duplicates"] - before["duplicates"],
    }


def record_run(conn: Connection, playbook_id: str, at: dt.datetime, window: str = "w") -> int:
    """A finished run row for the benchmark's queued messages and tasks to belong to; its id."""
    return int(
        conn.execute(
            runs.insert()
            .values(
                playbook_id=playbook_id,
                window=window,
                as_of=at,
                content_hash="h",
                started_at=at,
                status="done",
                matched=0,
                acted=0,
                suppressed={},
            )
            .returning(runs.c.id)
        ).scalar_one()
    )


def queue_messages(db_url: str, n: int) -> None:
    """``n`` customers with SMS marketing consent and one pending SMS each."""
    store = open_store(db_url)
    create_all(store)
    now = utc_naive(AS_OF)
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
        run_id = record_run(conn, "bench", now)
    row = {"channel": "sms", "recipient": "13800000000", "subject": None, "body": BODY}
    decisions = [Decision(c, (Effect("sms", 0, c, "outbox", row, "sms"),), ()) for c in ids]
    sink = StoreSink(store)
    info = RunInfo("bench", "w", "h", run_id, now, now)
    for i in range(0, n, 1000):
        sink.write(info, decisions[i : i + 1000])
    store.dispose()


def _dispatch(db_url: str, url: str, concurrency: int, batch_size: int) -> tuple[float, int]:
    store = open_store(db_url)
    config = ChannelConfig(
        sms=HttpEndpoint(url, sending=Sending(timeout=10, concurrency=concurrency)),
        retry=Retry(max_attempts=3),
        dispatch=Dispatch(batch_size=batch_size),
    )
    try:
        with Dispatcher(store, Settings(root=ROOT), config=config, policy=Policy()) as d:
            start = time.perf_counter()
            counts = d.drain(AS_OF)
            elapsed = time.perf_counter() - start
    finally:
        store.dispose()
    return counts.sent / elapsed, counts.sent


Poster = tuple[Callable[[int], int], Callable[[], None]]  # (post message i, close)


def baselines(url: str, n: int, concurrency: int) -> dict[str, float]:
    """Messages per second posting ``n`` SMS bodies straight to ``url`` from ``concurrency``
    threads, with httpx and with ``http.client`` (what the SMS adapter uses): the ceiling
    the client and the gateway allow on this machine."""
    return {
        "httpx": _timed(n, concurrency, _httpx_poster(url, concurrency)),
        "http_client": _timed(n, concurrency, _stdlib_poster(url, concurrency)),
    }


def _timed(n: int, concurrency: int, make: Callable[[], Poster]) -> float:
    post, close = make()
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            codes = list(pool.map(post, range(n)))
        elapsed = time.perf_counter() - start
    finally:
        close()
    if codes.count(200) != n:
        raise RuntimeError(f"baseline: {n - codes.count(200)} of {n} POSTs not answered 200")
    return n / elapsed


def _body(key: str) -> dict[str, str]:
    return {"to": "13800000000", "text": BODY, "idempotency_key": key}


def _httpx_poster(url: str, concurrency: int) -> Callable[[], Poster]:
    def make() -> Poster:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.Client(limits=limits, timeout=10)

        def post(i: int) -> int:
            key = f"httpx-{i}"
            headers = {"Idempotency-Key": key}
            return client.post(url, json=_body(key), headers=headers).status_code

        return post, client.close

    return make


def _stdlib_poster(url: str, concurrency: int) -> Callable[[], Poster]:
    def make() -> Poster:
        local = threading.local()
        opened: list[http.client.HTTPConnection] = []
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")

        def post(i: int) -> int:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=10)
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                opened.append(conn)
            key = f"stdlib-{i}"
            payload = json.dumps(_body(key), ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json", "Idempotency-Key": key}
            conn.request("POST", "/sms", body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            return int(response.status)

        def close() -> None:
            for conn in opened:
                conn.close()

        return post, close

    return make


def _stats(gateway: LoopbackGateway) -> dict[str, int]:
    with httpx.Client(timeout=10) as client:
        data = client.get(gateway.url("/stats")).json()
    return {k: int(v) for k, v in data.items()}
