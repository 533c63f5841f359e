"""A higher-priority playbook displaces a lower-priority marketing message that is still
waiting in the outbox when the frequency cap would otherwise hold it back; a message a
dispatcher holds or has sent is never displaced. Real demo store on both backends, real
runs, and the real dispatcher against the test gateway for what finally goes out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from gateways import HttpGateway
from sqlalchemy import Engine, select, update
from support import (
    AS_OF,
    SETTINGS,
    TZ,
    dictionary,
    playbook_from_text,
)

from engine.channels.config import ChannelConfig, HttpEndpoint
from engine.core.clock import Clock
from engine.delivery.dispatcher import Dispatcher
from engine.execution.executor import Executor, Outcome
from engine.execution.sinks import Decision, RecordingSink, RunInfo, Sink, StoreSink
from engine.playbook.model import Playbook
from engine.policy import Policy, default_policy
from engine.rendering.renderer import Renderer
from engine.store.models import outbox, suppressions

DICTIONARY = dictionary()
RENDERER = Renderer(SETTINGS.templates_dir, DICTIONARY)
SMS = "  - sms: {template: vip_inactive_60d.sms.j2}\n"
LATER = AS_OF + dt.timedelta(minutes=5)


def playbook(tmp_path: Path, pid: str, priority: int) -> Playbook:
    text = f"""id: {pid}
title: 测试 {pid}
trigger: {{schedule: "0 9 * * *"}}
priority: {priority}
audience:
  tier: [vip, private]
actions:
{SMS}"""
    return playbook_from_text(tmp_path, text, name=f"{pid}.yaml")


def run(store: Engine, p: Playbook, at: dt.datetime, sink: Sink | None = None) -> Outcome:
    ex = Executor(store, SETTINGS, DICTIONARY, RENDERER, Policy(caps=default_policy().caps))
    return ex.execute(p, Clock.at(at, TZ), sink or StoreSink(store), keep_details=True)


def messages(store: Engine, playbook_id: str) -> dict[str, tuple[str, str | None]]:
    """customer -> (status, last_error) of the playbook's outbox rows."""
    o = outbox.c
    with store.connect() as conn:
        rows = conn.execute(
            select(o.customer_id, o.status, o.last_error).where(o.playbook_id == playbook_id)
        )
        return {r.customer_id: (r.status, r.last_error) for r in rows}


def stored(store: Engine, playbook_id: str, reason: str) -> list[str]:
    """Customers of the stored suppressions of the playbook's runs with this reason."""
    s = suppressions.c
    with store.connect() as conn:
        rows = conn.execute(
            select(s.customer_id).where(s.playbook_id == playbook_id, s.reason == reason)
        )
        return sorted(r.customer_id for r in rows)


def sent(outcome: Outcome) -> set[str]:
    return {d.customer_id for d in outcome.decisions if d.effects}


def test_higher_priority_displaces_a_queued_lower_one(demo_store: Engine, tmp_path: Path) -> None:
    low = run(demo_store, playbook(tmp_path, "low", 50), AS_OF)
    queued = sent(low)
    assert len(queued) > 20
    high = run(demo_store, playbook(tmp_path, "high", 90), LATER)
    assert sent(high) == queued and "frequency_cap_sms" not in high.suppressed
    lows = messages(demo_store, "low")
    assert {s for s, _ in lows.values()} == {"cancelled"}
    assert all(
        e is not None and e.startswith("displaced_by_priority: high") for _, e in lows.values()
    )
    assert {s for s, _ in messages(demo_store, "high").values()} == {"pending"}
    # the suppression is recorded against the run that queued the displaced message
    assert stored(demo_store, "low", "displaced_by_priority") == sorted(queued)
    # the cap holds: a third playbook of the same top priority finds no room and no victim
    again = run(demo_store, playbook(tmp_path, "again", 90), LATER + dt.timedelta(minutes=5))
    assert not sent(again) and again.suppressed["frequency_cap_sms"] == len(queued)
    # what finally goes out: one message per customer, the high one
    with HttpGateway() as gateway:
        config = ChannelConfig(sms=HttpEndpoint(gateway.url("/sms")))
        with Dispatcher(demo_store, SETTINGS, config=config, policy=Policy()) as d:
            counts = d.drain(LATER + dt.timedelta(minutes=10))
        assert counts.sent == len(gateway.ledger.delivered) == len(queued)
    assert {s for s, _ in messages(demo_store, "high").values()} == {"sent"}


def test_equal_or_lower_priority_does_not_displace(demo_store: Engine, tmp_path: Path) -> None:
    queued = sent(run(demo_store, playbook(tmp_path, "first", 50), AS_OF))
    same = run(demo_store, playbook(tmp_path, "same", 50), LATER)
    lower = run(demo_store, playbook(tmp_path, "lower", 10), LATER)
    assert not sent(same) and not sent(lower)
    assert same.suppressed["frequency_cap_sms"] == len(queued)
    assert lower.suppressed["frequency_cap_sms"] == len(queued)
    assert {s for s, _ in messages(demo_store, "first").values()} == {"pending"}


def test_a_message_being_sent_or_sent_is_never_displaced(
    demo_store: Engine, tmp_path: Path
) -> None:
    queued = sorted(sent(run(demo_store, playbook(tmp_path, "low", 50), AS_OF)))
    claimed, delivered = queued[:2], queued[2:4]
    lease = dt.datetime(2100, 1, 1)  # a dispatcher holds these
    with demo_store.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.customer_id.in_(claimed)).values(claimed_until=lease)
        )
        conn.execute(
            update(outbox).where(outbox.c.customer_id.in_(delivered)).values(status="sent")
        )
    high = run(demo_store, playbook(tmp_path, "high", 90), LATER)
    assert sent(high) == set(queued[4:])
    assert high.suppressed["frequency_cap_sms"] == 4
    lows = messages(demo_store, "low")
    assert {c for c, (s, _) in lows.items() if s == "cancelled"} == set(queued[4:])


class ClaimingFirst(StoreSink):
    """The store sink, with a dispatcher claiming every pending message just before a
    batch is written: the race between deciding a displacement and writing it."""

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.status == "pending")
                .values(claimed_until=dt.datetime(2100, 1, 1))
            )
        return super().write(info, decisions)


def test_a_displacement_that_loses_the_race_keeps_the_cap(
    demo_store: Engine, tmp_path: Path
) -> None:
    queued = sent(run(demo_store, playbook(tmp_path, "low", 50), AS_OF))
    high = run(demo_store, playbook(tmp_path, "high", 90), LATER, ClaimingFirst(demo_store))
    assert sent(high) == queued  # decided before the claim ...
    assert not messages(demo_store, "high")  # ... but not queued: the low ones are being sent
    assert {s for s, _ in messages(demo_store, "low").values()} == {"pending"}
    assert stored(demo_store, "high", "frequency_cap_sms") == sorted(queued)


def test_dry_run_shows_the_displacement_without_writing(demo_store: Engine, tmp_path: Path) -> None:
    queued = sent(run(demo_store, playbook(tmp_path, "low", 50), AS_OF))
    preview = run(demo_store, playbook(tmp_path, "high", 90), LATER, RecordingSink())
    effects = [e for d in preview.decisions for e in d.effects]
    assert {e.customer_id for e in effects} == queued
    assert all(e.displaces is not None and e.displaces.playbook_id == "low" for e in effects)
    assert {s for s, _ in messages(demo_store, "low").values()} == {"pending"}
