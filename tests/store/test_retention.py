"""Retention on SQLite and PostgreSQL: texts, addresses and event fields older than
config/retention.yaml allows are blanked; queued messages and open tasks are not; the ledger's
facts stay; each purge is one audit entry; a second purge finds nothing; mistakes in the file
are located."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from support import REPO

from engine.core.configfile import ConfigError
from engine.store import audit
from engine.store.db import create_all
from engine.store.models import action_ledger, events, outbox, runs, tasks
from engine.store.retention import PURGED, Retention, load_retention, purge

THEN = dt.datetime(2026, 1, 5, 2, 0)
LATER = THEN + dt.timedelta(days=200)
RULES = Retention(dt.timedelta(days=180), dt.timedelta(days=180), dt.timedelta(days=90))


def _fill(store: Engine) -> None:
    create_all(store)
    with store.begin() as conn:
        conn.execute(runs.insert().values(id=1, playbook_id="p", window="w", as_of=THEN,
                                          content_hash="h", started_at=THEN, status="done",
                                          matched=3, acted=3, suppressed={}))  # fmt: skip
        for i, who in enumerate(("C1", "C2", "C3"), start=1):
            conn.execute(action_ledger.insert().values(id=i, playbook_id="p", customer_id=who,
                         window="w", run_id=1, content_hash="h", created_at=THEN,
                         held_out=False))  # fmt: skip
        for i, status in ((1, "sent"), (2, "pending")):
            conn.execute(outbox.insert().values(ledger_id=i, action_index=0, playbook_id="p",
                         customer_id=f"C{i}", channel="sms", recipient="13800000000",
                         body="张伟先生您好", status=status, created_at=THEN, not_before=THEN,
                         idempotency_key=f"k{i}"))  # fmt: skip
        for i, status in ((1, "done"), (3, "open")):
            conn.execute(tasks.insert().values(ledger_id=i, action_index=1, playbook_id="p",
                         customer_id=f"C{i}", assignee_role="manager", kind="call",
                         title="回访 张伟 13800000000", note="客户说下周来", priority="normal",
                         due_at=THEN, status=status, created_at=THEN))  # fmt: skip
        conn.execute(events.insert().values(event_id="e1", type="withdrawal", customer_id="C1",
                     occurred_at=THEN, received_at=THEN, payload={"amount": 50000}))  # fmt: skip


def test_purge_blanks_old_personal_content_and_keeps_the_facts(store: Engine) -> None:
    _fill(store)
    counted = purge(store, RULES, LATER, "daemon:test", dry_run=True)
    assert (counted.messages, counted.tasks, counted.events) == (1, 1, 1)
    with store.connect() as conn:
        assert PURGED not in conn.execute(select(outbox.c.body)).scalars().all()  # counted only
    done = purge(store, RULES, LATER, "daemon:test")
    assert (done.messages, done.tasks, done.events) == (1, 1, 1)
    with store.connect() as conn:
        messages = {r.status: r for r in conn.execute(select(outbox))}
        assert messages["sent"].body == PURGED and messages["sent"].recipient == ""
        assert messages["pending"].body == "张伟先生您好"  # still queued: untouched
        work = {r.status: r for r in conn.execute(select(tasks))}
        assert work["done"].title == PURGED and work["done"].note is None
        assert work["done"].kind == "call" and work["open"].title.startswith("回访")
        assert conn.execute(select(events.c.payload, events.c.type)).one() == ({}, "withdrawal")
        assert len(conn.execute(select(action_ledger)).all()) == 3  # the facts stay
    entries = audit.entries(store, action="retention.purge")
    assert len(entries) == 1 and entries[0]["actor"] == "daemon:test"
    again = purge(store, RULES, LATER, "daemon:test")
    assert (again.messages, again.tasks, again.events) == (0, 0, 0)
    assert len(audit.entries(store, action="retention.purge")) == 1  # nothing done: no entry


def test_nothing_younger_than_the_rules_is_touched(store: Engine) -> None:
    _fill(store)
    done = purge(store, RULES, THEN + dt.timedelta(days=30), "daemon:test")
    assert (done.messages, done.tasks, done.events) == (0, 0, 0)


def test_the_shipped_file_and_a_mistake_in_one(tmp_path: Path) -> None:
    shipped = load_retention(REPO / "config/retention.yaml")
    assert shipped.message_texts is not None and shipped.event_payloads is not None
    bad = tmp_path / "retention.yaml"
    bad.write_text("version: 1\nkeep:\n  message_texts: six months\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_retention(bad)
    assert caught.value.code == "E0412" and caught.value.where == f"{bad}:3:18"
    assert load_retention(tmp_path / "missing.yaml") == Retention()  # no file: kept for ever


def test_the_command_counts_then_purges_and_is_audited(tmp_path: Path) -> None:
    from support import cli

    from engine.store.db import open_store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    try:
        _fill(engine)
    finally:
        engine.dispose()
    later = LATER.date().isoformat()
    counted = cli("purge", "--db", url, "--as-of", later, "--dry-run")
    # the shipped file: messages 180d and events 90d are past, closed tasks' 365d are not
    assert counted.returncode == 0 and "would blank 1 message(s), 0 task(s), 1 event(s)" in (
        counted.stdout
    )
    done = cli("purge", "--db", url, "--as-of", later)
    assert done.returncode == 0 and "blanked 1 message(s)" in done.stdout, done.stderr
    engine = open_store(url)
    try:
        (entry,) = audit.entries(engine, action="retention.purge")
        assert str(entry["actor"]).startswith("cli:")
    finally:
        engine.dispose()
