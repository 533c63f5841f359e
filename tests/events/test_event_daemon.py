"""Event playbooks hosted by the daemon: stored events processed from the cursor, absence
windows closed by the clock with no further event, one host at a time on one store, a takeover
after a crash that neither loses nor repeats a match, and hot reload. The real-process kill -9
test is in tests/events/test_event_daemon_kill.py."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Engine, func, select
from support import (
    SETTINGS,
    TZ,
    dictionary,
    validator,
    valued_customers,
)

from engine.events.host import EventHost
from engine.events.processor import EventProcessor, ledger_window
from engine.execution.executor import Executor
from engine.playbook.model import Playbook
from engine.store.models import action_ledger, event_cursors, event_matches, tasks
from engine.triggers.event import EventTrigger

DAY0 = dt.datetime(2026, 11, 16, 10, 0, tzinfo=TZ)


def loaded(store: Engine) -> list[tuple[Playbook, Executor]]:
    """The shipped event playbooks, each with its executor, as the daemon's reload has them."""
    v = validator()
    executor = Executor(store, SETTINGS, dictionary(), v.renderer)
    catalog = v.validate_paths([SETTINGS.playbooks_dir])
    return [(p, executor) for p in catalog.playbooks if isinstance(p.trigger, EventTrigger)]


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def host(store: Engine, owner: str, clock: Clock, lease: float = 60.0) -> EventHost:
    h = EventHost(
        store,
        SETTINGS,
        dictionary(),
        owner=owner,
        clock=clock,
        lease=dt.timedelta(seconds=lease),
        log=logging.getLogger("test"),
    )
    h.offer(loaded(store))
    return h


def store_events(store: Engine, now: dt.datetime, *items: tuple[str, Any]) -> None:
    """What `events ingest --store-only` does: check and store, act on nothing."""
    intake = EventProcessor(store, SETTINGS, dictionary(), validator().renderer)
    report, _new = intake.accept(list(items), now)
    assert report.accepted == len(items)


def ev(eid: str, kind: str, cid: str, at: dt.datetime, **fields: Any) -> tuple[str, Any]:
    return eid, {
        "id": eid,
        "type": kind,
        "customer_id": cid,
        "occurred_at": at.isoformat(),
        **fields,
    }


def ledger(store: Engine) -> list[tuple[str, str]]:
    with store.connect() as conn:
        return sorted(
            (r[0], r[1])
            for r in conn.execute(select(action_ledger.c.playbook_id, action_ledger.c.window))
        )


def test_event_host_processes_stored_events_and_closes_windows_by_clock(demo_store: Engine) -> None:
    big, redeemed, reinvested = valued_customers(demo_store, 3)
    clock = Clock(DAY0)
    store_events(
        demo_store,
        DAY0,
        ev("W-1", "withdrawal", big, DAY0, amount=800000.0),
        ev("R-1", "redemption", redeemed, DAY0, amount=200000.0, product_type="wealth"),
        ev("R-2", "redemption", reinvested, DAY0, amount=200000.0, product_type="wealth"),
    )
    a = host(demo_store, "a", clock)
    first = a.cycle()
    assert [(h.match.key, h.result) for h in first.handled] == [("W-1", "acted")]
    assert a.state()["hosting"] is True and a.cursor > 0
    # another daemon on the same store stands by: it processes nothing
    b = host(demo_store, "b", clock)
    assert b.cycle().handled == [] and b.state()["hosting"] is False
    clock.at = DAY0 + dt.timedelta(days=2)
    store_events(demo_store, clock.at, ev("D-2", "deposit", reinvested, clock.at, amount=180000.0))
    assert a.cycle().handled == []  # the deposit blocks R-2; R-1's week is not over
    # the week ends: R-1 fires with no further event arriving, R-2 never does
    clock.at = DAY0 + dt.timedelta(days=7, minutes=1)
    closed = a.cycle()
    assert [(h.match.key, h.result) for h in closed.handled] == [("R-1", "acted")]
    assert a.cycle().handled == []
    assert ledger(demo_store) == sorted(
        [
            ("large-withdrawal-alert", ledger_window("W-1")),
            ("redemption-not-reinvested", ledger_window("R-1")),
        ]
    )


def test_event_host_takeover_after_a_crash_neither_loses_nor_repeats(demo_store: Engine) -> None:
    one, two, three, four, five = valued_customers(demo_store, 5)
    clock = Clock(DAY0)
    month_ago = DAY0 - dt.timedelta(days=30)
    # stored a month before any daemon ran: history, not acted on afresh
    store_events(demo_store, month_ago, ev("W-0", "withdrawal", five, month_ago, amount=800000.0))
    store_events(
        demo_store,
        DAY0,
        ev("W-1", "withdrawal", one, DAY0, amount=800000.0),
        ev("R-1", "redemption", two, DAY0, amount=200000.0, product_type="wealth"),
    )
    a = host(demo_store, "a", clock, lease=0.2)
    assert [h.match.key for h in a.cycle().handled] == ["W-1"]
    # a stores more and "dies" (never cycles again, never releases its lease)
    later = DAY0 + dt.timedelta(hours=1)
    store_events(demo_store, later, ev("W-3", "withdrawal", three, later, amount=600000.0))
    # stored after the cursor, however old: processed once the next host takes over
    store_events(demo_store, later, ev("W-4", "withdrawal", four, month_ago, amount=600000.0))
    with demo_store.begin() as conn:  # its lease lapses
        conn.execute(event_cursors.update().values(lease_until=dt.datetime(2000, 1, 1)))
    clock.at = DAY0 + dt.timedelta(days=8)  # nobody ran while R-1's week ended
    b = host(demo_store, "b", clock)
    handled = b.cycle().handled  # takes over: rebuilds from the store, from a's cursor on
    assert b.state()["hosting"] is True
    assert sorted((h.match.key, h.result) for h in handled) == [
        ("R-1", "acted"),
        ("W-3", "acted"),
        ("W-4", "acted"),
    ]
    assert a.cycle().handled == []  # a comes back: the lease is b's
    c = host(demo_store, "c", clock)
    with demo_store.begin() as conn:
        conn.execute(event_cursors.update().values(lease_until=dt.datetime(2000, 1, 1)))
    assert c.cycle().handled == []  # a third takeover finds everything done
    with demo_store.connect() as conn:
        keys = sorted(conn.execute(select(event_matches.c.match_key)).scalars())
        opened = conn.execute(select(func.count()).select_from(tasks)).scalar_one()
    assert keys == ["R-1", "W-1", "W-3", "W-4"] and opened == 4
    assert len(ledger(demo_store)) == 4


def test_event_host_hot_reload_applies_on_the_next_cycle(demo_store: Engine, tmp_path: Any) -> None:
    [cid] = valued_customers(demo_store, 1)
    clock = Clock(DAY0)
    a = host(demo_store, "a", clock)
    a.offer([])  # every event playbook removed
    store_events(demo_store, DAY0, ev("W-1", "withdrawal", cid, DAY0, amount=800000.0))
    assert a.cycle().handled == [] and a.state()["playbooks"] == []
    # back again: a match completed before it was loaded is not acted on
    a.offer(loaded(demo_store))
    later = DAY0 + dt.timedelta(minutes=5)
    clock.at = later
    store_events(demo_store, later, ev("W-2", "withdrawal", cid, later, amount=900000.0))
    results = sorted((h.match.key, h.result) for h in a.cycle().handled)
    assert results == [("W-2", "acted")]
    assert ledger(demo_store) == [("large-withdrawal-alert", ledger_window("W-2"))]


def test_event_acted_on_but_not_recorded_before_a_crash_is_already_done(demo_store: Engine) -> None:
    """Killed between writing the ledger and recording the match: the next host finds the
    match's own ledger window, writes nothing more, and records it as already done."""
    [cid] = valued_customers(demo_store, 1)
    clock = Clock(DAY0)
    store_events(demo_store, DAY0, ev("W-1", "withdrawal", cid, DAY0, amount=800000.0))
    a = host(demo_store, "a", clock)
    assert [h.result for h in a.cycle().handled] == ["acted"]
    with demo_store.begin() as conn:  # as if a had died before this row was written
        conn.execute(event_matches.delete())
        conn.execute(event_cursors.update().values(lease_until=dt.datetime(2000, 1, 1)))
    b = host(demo_store, "b", clock)
    assert [(h.match.key, h.result) for h in b.cycle().handled] == [("W-1", "already_done")]
    assert ledger(demo_store) == [("large-withdrawal-alert", ledger_window("W-1"))]
    with demo_store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tasks)).scalar_one() == 1
