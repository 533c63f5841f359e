"""Section 5: dispatch from the outbox to a local HTTP gateway with no rate limit, through
:class:`engine.delivery.dispatcher.Dispatcher` (claim, consent re-check, send, record),
against the same
number of JSON POSTs sent straight from as many threads with httpx and with ``http.client``
(the client the SMS adapter uses): the ceiling client and gateway allow on the machine. The
gateway is :class:`engine.bench.loopback.LoopbackGateway`, an asyncio server in its own process, so
the gateway is not what is measured.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import and_, or_, select

from engine.actions.base import Effect
from engine.bench.dispatch_measure import baselines, record_run
from engine.bench.lab import Lab
from engine.bench.loopback import LoopbackGateway
from engine.bench.stores import wipe_engine_rows
from engine.channels.config import ChannelConfig, Dispatch, HttpEndpoint, Retry, Sending
from engine.core.clock import utc_naive
from engine.delivery.dispatcher import Dispatcher
from engine.execution.executor import BATCH_SIZE
from engine.execution.sinks import Decision, RunInfo, StoreSink
from engine.policy import Policy
from engine.store.models import consents, customers

MESSAGES = 5000
CONCURRENCY = 16


def _queue(lab: Lab, n: int, now: dt.datetime) -> int:
    """``n`` SMS in the outbox for customers whose SMS consent holds (the dispatcher checks
    it again at send time)."""
    c = consents.c
    local = now.replace(tzinfo=None)
    with lab.store.connect() as conn:
        rows = conn.execute(
            select(customers.c.id, customers.c.phone)
            .join(consents, c.customer_id == customers.c.id)
            .where(
                c.channel == "sms",
                c.purpose == "marketing",
                c.given_at <= local,
                or_(c.withdrawn_at.is_(None), and_(c.withdrawn_at < c.given_at)),
                customers.c.phone.is_not(None),
            )
            .order_by(customers.c.id)
            .limit(n)
        ).all()
    now_utc = utc_naive(now)
    with lab.store.begin() as conn:
        run_id = record_run(conn, "bench-dispatch", now_utc)
    decisions = [
        Decision(
            str(cid),
            (
                Effect(
                    "sms",
                    0,
                    str(cid),
                    "outbox",
                    {
                        "channel": "sms",
                        "recipient": str(phone),
                        "subject": None,
                        "body": "【示例银行】您好,回复TD退订",
                    },
                    "sms",
                ),
            ),
            (),
        )
        for cid, phone in rows
    ]
    sink = StoreSink(lab.store)
    info = RunInfo("bench-dispatch", "w", "h", int(run_id), now_utc, now_utc)
    for start in range(0, len(decisions), BATCH_SIZE):
        sink.write(info, decisions[start : start + BATCH_SIZE])
    return len(decisions)


def measure(lab: Lab, repeats: int, messages: int = MESSAGES) -> dict[str, Any]:

    now = dt.datetime.combine(lab.day, dt.time(10), lab.settings.timezone)
    with LoopbackGateway() as gateway:
        url = gateway.url()
        raw = [baselines(url, messages, CONCURRENCY) for _ in range(max(1, repeats))]
        rates, sent_counts = [], []
        for _ in range(max(1, repeats)):
            wipe_engine_rows(lab.store)
            queued = _queue(lab, messages, now)
            config = ChannelConfig(
                sms=HttpEndpoint(url, sending=Sending(timeout=10, concurrency=CONCURRENCY)),
                retry=Retry(max_attempts=3),
                dispatch=Dispatch(batch_size=2000),
            )
            with Dispatcher(lab.store, lab.settings, config=config, policy=Policy()) as d:
                started = time.perf_counter()
                counts = d.drain(now)
                seconds = time.perf_counter() - started
            rates.append(counts.sent / seconds)
            sent_counts.append((queued, counts.sent))
        wipe_engine_rows(lab.store)
    base_rates = sorted(r["http_client"] for r in raw)
    httpx_rates = sorted(r["httpx"] for r in raw)
    rates.sort()
    median = rates[len(rates) // 2]
    base = base_rates[len(base_rates) // 2]
    return {
        "messages": messages,
        "concurrency": CONCURRENCY,
        "queued_sent": sent_counts,
        "dispatcher_msgs_per_s": round(median),
        "dispatcher_min_max": [round(rates[0]), round(rates[-1])],
        "straight_msgs_per_s": round(base),
        "straight_min_max": [round(base_rates[0]), round(base_rates[-1])],
        "straight_httpx_msgs_per_s": round(httpx_rates[len(httpx_rates) // 2]),
        "share_of_straight": round(median / base, 3),
        "target_msgs_per_s": 2000,
    }
