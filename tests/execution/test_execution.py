"""Evaluate → gate → render → sink on a real store: once per window, consent, cooldown, caps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from support import (
    AS_OF,
    SETTINGS,
    TZ,
    dictionary,
    playbook_from_text,
    validator,
)

from engine.core.clock import Clock
from engine.execution.executor import Executor, Outcome, slot_on, window_of
from engine.execution.sinks import RecordingSink, StoreSink
from engine.playbook.model import Playbook
from engine.policy import held_out
from engine.rendering.renderer import Renderer
from engine.store.models import action_ledger, consents, outbox, runs, tasks

DICTIONARY = dictionary()


@pytest.fixture
def executor(demo_store: Engine) -> Executor:
    return Executor(demo_store, SETTINGS, DICTIONARY, Renderer(SETTINGS.templates_dir, DICTIONARY))


@pytest.fixture(scope="module")
def vip() -> Playbook:
    return (
        validator().validate_paths([SETTINGS.playbooks_dir / "vip_inactive_60d.yaml"]).playbooks[0]
    )


def hand_written_audience(store: Engine, as_of: dt.datetime) -> list[str]:
    """The first playbook's audience written independently, in plain SQL."""
    cutoff = as_of.astimezone(TZ).replace(tzinfo=None) - dt.timedelta(days=60)
    sql = text(
        "SELECT c.id FROM customers c WHERE c.tier IN ('vip', 'private') "
        "AND c.last_active_at < :cutoff AND NOT EXISTS (SELECT 1 FROM customer_tags t "
        "WHERE t.customer_id = c.id AND t.tag = '已流失') ORDER BY c.id"
    ).bindparams(cutoff=cutoff)
    from sqlalchemy import DateTime, bindparam

    sql = sql.bindparams(bindparam("cutoff", type_=DateTime()))
    with store.connect() as conn:
        return [r[0] for r in conn.execute(sql, {"cutoff": cutoff})]


def count(store: Engine, table: Any, *where: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def run(executor: Executor, playbook: Playbook, at: dt.datetime, store: Engine) -> Outcome:
    return executor.execute(playbook, Clock.at(at, TZ), StoreSink(store), keep_details=True)


def test_dry_run_matches_hand_written_sql_and_writes_nothing(
    executor: Executor, demo_store: Engine, vip: Playbook
) -> None:
    outcome = executor.execute(vip, Clock(AS_OF), RecordingSink(), keep_details=True)
    expected = hand_written_audience(demo_store, AS_OF)
    assert outcome.matched == expected and len(expected) > 0
    assert outcome.matched_count == len(expected)
    assert (
        count(demo_store, action_ledger)
        == count(demo_store, outbox)
        == count(demo_store, runs)
        == 0
    )
    sms = [e for d in outcome.decisions for e in d.effects if e.kind == "sms"]
    assert sms, "some matched customers should have SMS consent"
    for e in sms:  # masked preview: never a full phone number
        assert "****" in e.row["recipient"]
        assert e.row["body"].startswith("【示例银行】") and e.row["body"].endswith("回复TD退订")


def test_run_writes_ledger_outbox_tasks_once_per_window(
    executor: Executor, demo_store: Engine, vip: Playbook
) -> None:
    first = run(executor, vip, AS_OF, demo_store)
    assert first.acted > 0
    ledger, messages, open_tasks = (
        count(demo_store, action_ledger),
        count(demo_store, outbox),
        count(demo_store, tasks),
    )
    assert ledger == first.acted + first.held_out  # held out: recorded, nothing done
    assert messages == first.effects["sms"] and open_tasks == first.effects["task"]
    # the same run again adds nothing
    second = run(executor, vip, AS_OF, demo_store)
    assert second.window == first.window
    assert second.acted == 0
    assert second.suppressed["already_done"] == first.acted + first.held_out
    assert (
        count(demo_store, action_ledger),
        count(demo_store, outbox),
        count(demo_store, tasks),
    ) == (
        ledger,
        messages,
        open_tasks,
    )
    # later in the same window only customers who newly qualify are acted on
    later = run(executor, vip, AS_OF + dt.timedelta(hours=3), demo_store)
    assert later.window == first.window
    newcomers = set(later.matched) - set(first.matched)
    assert {d.customer_id for d in later.decisions if d.effects or d.held_out} == newcomers
    assert count(demo_store, action_ledger) == ledger + later.acted + later.held_out
    assert later.acted + later.held_out == len(newcomers)
    assert count(demo_store, runs, runs.c.status == "done") == 3
    # real messages carry the real phone number, not the masked preview
    with demo_store.connect() as conn:
        phones = [r[0] for r in conn.execute(select(outbox.c.recipient))]
    assert all(p.isdigit() and len(p) == 11 for p in phones)


def test_cooldown_suppresses_the_next_window(
    executor: Executor, demo_store: Engine, vip: Playbook
) -> None:
    first = run(executor, vip, AS_OF, demo_store)
    next_day = run(executor, vip, AS_OF + dt.timedelta(days=1), demo_store)
    assert next_day.window != first.window
    assert next_day.suppressed["cooldown"] >= first.acted - 5  # a few may leave the audience
    acted_twice = set(first.matched) & {d.customer_id for d in next_day.decisions if d.effects}
    assert acted_twice == set()


def test_withdrawn_consent_gets_the_task_but_no_sms(
    executor: Executor, demo_store: Engine, vip: Playbook
) -> None:
    # the first customer of the audience not in the playbook's holdout group
    target = next(
        c
        for c in hand_written_audience(demo_store, AS_OF)
        if not held_out(vip.id, c, vip.holdout_percent)
    )
    with demo_store.begin() as conn:
        conn.execute(
            update(consents)
            .where(consents.c.customer_id == target, consents.c.channel == "sms")
            .values(given_at=dt.datetime(2020, 1, 1), withdrawn_at=dt.datetime(2026, 1, 1))
        )
        # the call is marketing by phone: it needs phone consent, which this customer gives
        conn.execute(
            update(consents)
            .where(consents.c.customer_id == target, consents.c.channel == "phone")
            .values(given_at=dt.datetime(2020, 1, 1), withdrawn_at=None)
        )
    outcome = run(executor, vip, AS_OF, demo_store)
    decision = next(d for d in outcome.decisions if d.customer_id == target)
    assert [e.kind for e in decision.effects] == ["task"]
    assert ("sms", "no_consent_sms") in decision.suppressed
    assert count(demo_store, outbox, outbox.c.customer_id == target) == 0
    assert count(demo_store, tasks, tasks.c.customer_id == target) == 1


def test_max_per_run_caps_customers(executor: Executor, demo_store: Engine, tmp_path: Path) -> None:
    source = (SETTINGS.playbooks_dir / "vip_inactive_60d.yaml").read_text(encoding="utf-8")
    capped = playbook_from_text(tmp_path, source.replace("max_per_run: 500", "max_per_run: 20"))
    outcome = run(executor, capped, AS_OF, demo_store)
    # a held-out customer is decided like an acted one: both take a slot of the cap
    assert outcome.acted + outcome.held_out == 20
    assert outcome.acted > 0 and outcome.held_out > 0
    assert count(demo_store, action_ledger) == 20
    assert outcome.held_back_by["max_per_run"] > 0
    # customers held back for their own reasons (no consent…) take none
    taken = [d for d in outcome.decisions if d.effects or d.held_out]
    assert len(taken) == 20
    last = outcome.decisions.index(taken[-1])
    assert all((None, "max_per_run") in d.suppressed for d in outcome.decisions[last + 1 :])


def test_windows_follow_the_schedule(vip: Playbook) -> None:
    monday_10 = Clock(dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ))
    monday_08 = Clock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ))
    saturday = Clock(dt.datetime(2026, 11, 28, 12, 0, tzinfo=TZ))
    assert window_of(vip, monday_10) == "2026-11-23T09:00"
    assert window_of(vip, monday_08) == "2026-11-20T09:00"  # the Friday before
    assert window_of(vip, saturday) == "2026-11-27T09:00"
    assert slot_on(vip, dt.date(2026, 11, 23), TZ) == dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    assert slot_on(vip, dt.date(2026, 11, 28), TZ) is None


def test_failed_run_is_recorded(executor: Executor, demo_store: Engine, vip: Playbook) -> None:
    class Broken:
        def write(self, info: Any, decisions: Any) -> set[str]:
            raise RuntimeError("disk full")

    # a real StoreSink records the run; this one fails after the run row exists
    sink = StoreSink(demo_store)
    sink.write = Broken().write  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        executor.execute(vip, Clock(AS_OF), sink)
    with demo_store.connect() as conn:
        status, error = conn.execute(select(runs.c.status, runs.c.error)).one()
    assert status == "failed" and "disk full" in error
    assert count(demo_store, action_ledger) == 0


def test_failure_description_keeps_personal_data_out() -> None:
    from sqlalchemy.exc import IntegrityError

    from engine.core.errors import describe_failure

    exc = IntegrityError(
        "INSERT INTO outbox (recipient) VALUES (?)",
        {"recipient": "13812345678"},
        Exception("UNIQUE constraint failed: outbox.id"),
    )
    assert "13812345678" in str(exc)  # what SQLAlchemy would have written
    text = describe_failure(exc)
    assert "13812345678" not in text
    assert text == "IntegrityError: UNIQUE constraint failed: outbox.id"
