"""The dispatcher against real gateways on 127.0.0.1 and a real store (SQLite, PostgreSQL).

Every failure mode of the gateway is retried, nothing is lost, nothing is delivered twice (the
gateway counts per idempotency key), dead letters appear after the last attempt, and consent
withdrawn after the run cancels the message. Backoff is configured in milliseconds and time is
passed in, so the suite never sleeps for seconds.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_support import wait_for
from gateways import HttpGateway, SmtpServer
from sqlalchemy import Engine, func, select, update
from support import AS_OF, SETTINGS

from engine.actions.base import Effect
from engine.channels import RateLimiter
from engine.channels.config import (
    ChannelConfig,
    Dispatch,
    HttpEndpoint,
    Retry,
    Sending,
)
from engine.channels.config import SmtpServer as SmtpConfig
from engine.core.clock import utc_naive
from engine.delivery.dispatcher import DispatchCounts, Dispatcher, backoff
from engine.execution.sinks import Decision, RunInfo, StoreSink
from engine.policy import AllowedHours, Policy
from engine.store.db import create_all
from engine.store.models import branches, consents, customers, outbox, runs

FAST = Retry(max_attempts=4, first_delay=0.001, max_delay=0.004)
NO_QUIET = Policy()
UTC_AS_OF = utc_naive(AS_OF)


@pytest.fixture
def gateway() -> Iterator[HttpGateway]:
    with HttpGateway(hang_seconds=1.0) as g:
        yield g


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as s:
        yield s


@pytest.fixture
def db(store: Engine) -> Engine:
    create_all(store)
    with store.begin() as conn:
        conn.execute(branches.insert().values(id="B1", name="示例支行", city="北京"))
    return store


def config(
    gateway: HttpGateway | None = None,
    smtp: SmtpServer | None = None,
    *,
    retry: Retry = FAST,
    rate: float = 0.0,
    webhooks: dict[str, HttpEndpoint] | None = None,
    batch: int = 500,
    timeout: float = 0.5,
) -> ChannelConfig:
    sending = Sending(timeout=timeout, concurrency=8, rate_per_second=rate)
    slow = Sending(timeout=10, concurrency=4, rate_per_second=rate)
    return ChannelConfig(
        sms=HttpEndpoint(gateway.url("/sms"), sending=sending) if gateway else None,
        # SMTP gets a generous timeout: only the HTTP "hang" mode needs a short one
        email=SmtpConfig("127.0.0.1", smtp.port, "care@bank.example", sending=slow)
        if smtp
        else None,
        webhooks=webhooks or {},
        retry=retry,
        dispatch=Dispatch(batch_size=batch, lease_seconds=60),
    )


def add_customers(store: Engine, n: int, *, consent: bool = True) -> list[str]:
    ids = [f"C{i:05d}" for i in range(n)]
    with store.begin() as conn:
        conn.execute(
            customers.insert(),
            [
                {
                    "id": cid,
                    "name": "张三",
                    "branch_id": "B1",
                    "tier": "vip",
                    "opened_on": dt.date(2020, 1, 1),
                    "lifecycle_stage": "mature",
                    "phone": f"138{i:08d}",
                    "email": f"c{i}@example.com",
                }
                for i, cid in enumerate(ids)
            ],
        )
        if consent:
            conn.execute(
                consents.insert(),
                [
                    {
                        "customer_id": cid,
                        "channel": ch,
                        "purpose": "marketing",
                        "given_at": dt.datetime(2020, 1, 1),
                    }
                    for cid in ids
                    for ch in ("sms", "email")
                ],
            )
    return ids


def queue(
    store: Engine, ids: list[str], channel: str = "sms", *, playbook: str = "p", **extra: Any
) -> None:
    """Queue one message per customer through the real sink (ledger + outbox, real keys)."""
    with store.begin() as conn:
        run_id = conn.execute(
            runs.insert()
            .values(
                playbook_id=playbook,
                window="2026-11-23T09:00",
                as_of=UTC_AS_OF,
                content_hash="h",
                started_at=UTC_AS_OF,
                status="done",
            )
            .returning(runs.c.id)
        ).scalar_one()
    info = RunInfo(playbook, "2026-11-23T09:00", "h", run_id, UTC_AS_OF, UTC_AS_OF)
    recipient = {"sms": "13800000000", "email": "someone@example.com"}.get(channel, "crm")
    decisions = [
        Decision(
            cid,
            (
                Effect(
                    kind=channel,
                    action_index=0,
                    customer_id=cid,
                    target="outbox",
                    row={
                        "channel": channel,
                        "recipient": extra.get("recipient", recipient),
                        "subject": "主题" if channel == "email" else None,
                        "body": f'{{"customer_id": "{cid}"}}' if channel == "webhook" else "您好",
                    },
                    consent_channel=channel if channel != "webhook" else None,
                    expires_at=extra.get("expires_at"),
                ),
            ),
            (),
        )
        for cid in ids
    ]
    StoreSink(store).write(info, decisions)


def statuses(store: Engine) -> dict[str, int]:
    with store.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
        return {str(s): int(n) for s, n in rows}


def keys(store: Engine) -> set[str]:
    with store.connect() as conn:
        return {r[0] for r in conn.execute(select(outbox.c.idempotency_key))}


def drain_until_settled(d: Dispatcher, rounds: int = 20) -> DispatchCounts:
    total, moment = DispatchCounts(), AS_OF
    for _ in range(rounds):
        total.add(d.drain(moment))
        if not statuses(d.store).get("pending"):
            break
        moment += dt.timedelta(seconds=1)  # later than any backoff of FAST
    return total


def test_every_failure_mode_is_retried_none_lost_none_twice(
    db: Engine, gateway: HttpGateway
) -> None:
    ids = add_customers(db, 30)
    queue(db, ids)
    modes = ["500", "429", "hang", "close", "ok_then_close"]
    gateway.ledger.plan(modes * 2)  # ten of the first requests fail, one way or another
    with Dispatcher(db, SETTINGS, config=config(gateway), policy=NO_QUIET) as d:
        total = drain_until_settled(d)
    assert statuses(db) == {"sent": 30}
    ledger = gateway.ledger
    assert set(ledger.delivered) == keys(db)  # none lost
    assert all(n == 1 for n in ledger.delivered.values())  # none delivered twice
    # the lost answers (ok_then_close) were sent again and dropped as duplicates by key
    assert sum(ledger.duplicates.values()) >= 2
    assert total.retrying >= 10 and total.sent == 30 and total.failed == 0
    with db.connect() as conn:
        attempts = sorted(r[0] for r in conn.execute(select(outbox.c.attempts)))
    assert sum(a - 1 for a in attempts) == total.retrying  # every retry was a new attempt


def test_dead_letter_after_the_last_attempt_keeps_the_error(
    db: Engine, gateway: HttpGateway
) -> None:
    ids = add_customers(db, 3)
    queue(db, ids)
    gateway.ledger.plan([], then="500")
    with Dispatcher(db, SETTINGS, config=config(gateway), policy=NO_QUIET) as d:
        total = drain_until_settled(d)
    assert statuses(db) == {"failed": 3}
    assert total.failed == 3 and total.retrying == 3 * (FAST.max_attempts - 1)
    with db.connect() as conn:
        rows = conn.execute(select(outbox.c.attempts, outbox.c.last_error)).all()
    for attempts, error in rows:
        assert attempts == FAST.max_attempts
        assert "HTTP 500" in error and "out of attempts" in error
    assert sum(gateway.ledger.received.values()) == 3 * FAST.max_attempts
    assert not gateway.ledger.delivered


def test_permanent_refusal_is_a_dead_letter_at_once(db: Engine, gateway: HttpGateway) -> None:
    queue(db, add_customers(db, 2))
    gateway.ledger.plan(["400"])
    with Dispatcher(db, SETTINGS, config=config(gateway), policy=NO_QUIET) as d:
        drain_until_settled(d)
    assert statuses(db) == {"failed": 1, "sent": 1}
    with db.connect() as conn:
        error = conn.execute(
            select(outbox.c.last_error).where(outbox.c.status == "failed")
        ).scalar_one()
    assert "HTTP 400" in error and "permanent" in error


def test_consent_withdrawn_after_the_run_cancels_the_message(
    db: Engine, gateway: HttpGateway
) -> None:
    ids = add_customers(db, 4)
    queue(db, ids)
    with db.begin() as conn:  # the customer opts out between run and dispatch
        conn.execute(
            update(consents)
            .where(consents.c.customer_id == ids[0], consents.c.channel == "sms")
            .values(withdrawn_at=dt.datetime(2026, 11, 23, 8, 30))
        )
    with Dispatcher(db, SETTINGS, config=config(gateway), policy=NO_QUIET) as d:
        counts = d.drain(AS_OF)
    assert counts.cancelled == 1 and counts.sent == 3
    with db.connect() as conn:
        row = conn.execute(
            select(outbox.c.status, outbox.c.last_error).where(outbox.c.customer_id == ids[0])
        ).one()
    assert row.status == "cancelled" and "consent withdrawn" in row.last_error
    assert len(gateway.ledger.delivered) == 3
    assert all(b["body"]["to"] == "13800000000" for b in gateway.ledger.bodies.values())


def test_quiet_hours_at_send_time_postpone_or_expire(db: Engine, gateway: HttpGateway) -> None:
    ids = add_customers(db, 2)
    late_evening = dt.datetime(2026, 11, 23, 22, 0, tzinfo=AS_OF.tzinfo)
    closes = dt.datetime(2026, 11, 23, 13, 0)  # 21:00 local, in UTC
    queue(db, ids[:1])
    queue(db, ids[1:], playbook="q", expires_at=closes)
    day = AllowedHours(dt.time(8), dt.time(21))
    policy = Policy(quiet_hours={("sms", "marketing"): day})
    with Dispatcher(db, SETTINGS, config=config(gateway), policy=policy) as d:
        night = d.drain(late_evening)
        assert night.postponed == 1 and night.cancelled == 1 and night.sent == 0
        with db.connect() as conn:
            waiting = conn.execute(
                select(outbox.c.not_before, outbox.c.attempts).where(outbox.c.status == "pending")
            ).one()
        assert waiting.not_before == dt.datetime(2026, 11, 24, 0, 0)  # 08:00 local next day
        assert waiting.attempts == 0  # waiting is not a failed attempt
        assert d.drain(late_evening + dt.timedelta(hours=2)).claimed == 0
        morning = d.drain(dt.datetime(2026, 11, 24, 8, 0, tzinfo=AS_OF.tzinfo))
    assert morning.sent == 1
    assert statuses(db) == {"sent": 1, "cancelled": 1}


def test_email_over_real_smtp_with_retries(db: Engine, smtp: SmtpServer) -> None:
    ids = add_customers(db, 5)
    queue(db, ids, channel="email")
    smtp.ledger.plan(["451", "451"])
    with Dispatcher(db, SETTINGS, config=config(smtp=smtp), policy=NO_QUIET) as d:
        total = drain_until_settled(d)
    assert statuses(db) == {"sent": 5} and total.retrying >= 2  # the two 451s, at least
    assert set(smtp.ledger.delivered) == keys(db)
    assert all(n == 1 for n in smtp.ledger.delivered.values())
    mail = next(iter(smtp.ledger.bodies.values()))
    assert mail["to"] == ["someone@example.com"] and mail["subject"] == "主题"
    assert mail["message_id"].startswith("<") and "@bank.example>" in mail["message_id"]


def test_smtp_permanent_refusal_is_a_dead_letter(db: Engine, smtp: SmtpServer) -> None:
    queue(db, add_customers(db, 1), channel="email")
    smtp.ledger.plan(["550"])
    with Dispatcher(db, SETTINGS, config=config(smtp=smtp), policy=NO_QUIET) as d:
        drain_until_settled(d)
    assert statuses(db) == {"failed": 1}


def test_webhook_goes_to_the_endpoint_named_by_it(db: Engine, gateway: HttpGateway) -> None:
    ids = add_customers(db, 2, consent=False)  # webhooks are bank-internal: no consent
    queue(db, ids, channel="webhook", recipient="crm")
    hooks = {"crm": HttpEndpoint(gateway.url("/hooks/crm"))}
    with Dispatcher(db, SETTINGS, config=config(webhooks=hooks), policy=NO_QUIET) as d:
        d.drain(AS_OF)
    assert statuses(db) == {"sent": 2}
    bodies = list(gateway.ledger.bodies.values())
    assert {b["path"] for b in bodies} == {"/hooks/crm"}
    assert {b["body"]["customer_id"] for b in bodies} == set(ids)


def test_each_webhook_endpoint_keeps_its_own_concurrency(db: Engine) -> None:
    ids = add_customers(db, 16, consent=False)
    queue(db, ids[:8], channel="webhook", recipient="one", playbook="p1")
    queue(db, ids[8:], channel="webhook", recipient="many", playbook="p2")
    with HttpGateway(delay_seconds=0.05) as slow:
        hooks = {
            "one": HttpEndpoint(slow.url("/hooks/one"), sending=Sending(concurrency=1)),
            "many": HttpEndpoint(slow.url("/hooks/many"), sending=Sending(concurrency=6)),
        }
        # the webhook channel has six senders (the most any endpoint allows) ...
        with Dispatcher(db, SETTINGS, config=config(webhooks=hooks), policy=NO_QUIET) as d:
            assert d.drain(AS_OF).sent == 16
        # ... yet the endpoint that allows one request at a time never saw two
        assert slow.ledger.peak["/hooks/one"] == 1


def test_two_dispatchers_at_once_never_share_a_message(db: Engine, gateway: HttpGateway) -> None:
    queue(db, add_customers(db, 200))
    cfg = config(gateway, batch=25, timeout=10)  # no timeouts: a second request = a shared row
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with Dispatcher(db, SETTINGS, config=cfg, policy=NO_QUIET) as d:
                d.drain(AS_OF)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert statuses(db) == {"sent": 200}
    assert sum(gateway.ledger.received.values()) == 200  # not one request twice
    assert len(gateway.ledger.delivered) == 200


def test_a_connection_the_gateway_closed_while_idle_is_not_a_failed_attempt(
    db: Engine, gateway: HttpGateway
) -> None:
    ids = add_customers(db, 2)
    queue(db, ids[:1])
    gateway.ledger.plan(["ok_idle_close"])
    with Dispatcher(db, SETTINGS, config=config(gateway), policy=NO_QUIET) as d:
        first = d.drain(AS_OF)
        # the pooled connection is now closed by the far side, waiting to be reused
        wait_for("the gateway to close", lambda: gateway.ledger.idle_closed == 1, timeout=10)
        queue(db, ids[1:], playbook="q")
        second = d.drain(AS_OF)
    assert first.sent == second.sent == 1
    assert second.retrying == 0  # a fresh connection, not a failed attempt
    assert len(gateway.ledger.delivered) == 2


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    retry = Retry(max_attempts=10, first_delay=1.0, max_delay=10.0)
    rng = random.Random(3)
    for attempts, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = [backoff(attempts, retry, rng) for _ in range(50)]
        assert all(base / 2 <= d <= base for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_rate_limiter_spaces_messages() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(10, burst=1, clock=lambda: clock[0], sleep=sleep)
    for _ in range(11):
        limiter.acquire()
    assert clock[0] == pytest.approx(1.0)  # 11 messages at 10/s: one second


def test_rate_limited_channel_still_delivers_everything(db: Engine, gateway: HttpGateway) -> None:
    queue(db, add_customers(db, 6))
    with Dispatcher(db, SETTINGS, config=config(gateway, rate=200.0), policy=NO_QUIET) as d:
        assert d.drain(AS_OF).sent == 6
