"""One bad event is one rejected event: hostile lines in a JSON Lines feed are rejected with a
reason, and the good lines around them are stored and acted on exactly as without them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from support import AS_OF, SETTINGS, clear_engine_tables, dictionary, validator, valued_customers

from engine.events.ingest import ingest, read_jsonl
from engine.events.processor import EventProcessor
from engine.store.db import open_store
from engine.store.models import action_ledger, events, tasks
from engine.triggers.event import EventTrigger

HOSTILE_LINES = [
    '{"id": "h1", "type": "withdrawal", "customer_id": "C1", "amount": ' + "9" * 400 + "}",
    "[" * 50_000 + "]" * 50_000,
    '{"id": "h3", "id": "h3b", "type": "deposit", "customer_id": "C1", "amount": 1}',
    '{"id": "h4", "type": "withdrawal", "customer_id": "C1", "amount": -100,'
    ' "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h5", "type": "withdrawal", "customer_id": "C1", "amount": NaN,'
    ' "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h6", "type": "withdrawal", "customer_id": "C1", "amount": 1e400,'
    ' "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h7", "type": "withdrawal", "customer_id": "C1", "amount": 1,'
    ' "channel": "counter\\u0000", "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h8\'; DROP TABLE events; --", "type": "withdrawal", "customer_id": "C1",'
    ' "amount": 1, "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h9", "type": "withdrawal", "customer_id": "' + "C" * 5000 + '", "amount": 1,'
    ' "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h10", "type": "__class__", "customer_id": "C1", "amount": 1,'
    ' "occurred_at": "2026-11-23T09:00:00+08:00"}',
    '{"id": "h11", "type": "withdrawal", "customer_id": "C1", "amount": "50000",'
    ' "occurred_at": "not a time"}',
    "\xff\xfe not utf-8",
    "null",
    '"just a string"',
    "{",
]


@pytest.fixture
def store(demo_url: str) -> Iterator[Engine]:
    engine = open_store(demo_url)
    clear_engine_tables(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _good_events(store: Engine) -> list[str]:
    ids = valued_customers(store, 40)  # the large-withdrawal alert's audience
    at = AS_OF.replace(hour=10)
    lines = []
    for n, cid in enumerate(ids):
        kind, amount = ("withdrawal", 600_000 + n) if n % 2 else ("deposit", 100 + n)
        moment = (at + dt.timedelta(minutes=n)).isoformat()
        lines.append(
            json.dumps(
                {
                    "id": f"g{n}",
                    "type": kind,
                    "customer_id": cid,
                    "occurred_at": moment,
                    "amount": amount,
                    "channel": "counter",
                }
            )
        )
    return lines


def _ingest(store: Engine, path: Path) -> tuple[int, list[str], list[tuple[str, str]]]:
    clear_engine_tables(store)
    playbooks = [
        p
        for p in validator().validate_paths([SETTINGS.playbooks_dir]).playbooks
        if isinstance(p.trigger, EventTrigger)
    ]
    processor = EventProcessor(store, SETTINGS, dictionary(), validator().renderer)
    processor.restore(playbooks, AS_OF)
    report = ingest(processor, read_jsonl(path), lambda: AS_OF.replace(hour=12), batch=7)
    with store.connect() as conn:
        stored = sorted(r[0] for r in conn.execute(select(events.c.event_id)))
        acted = sorted(
            (r.playbook_id, r.customer_id)
            for r in conn.execute(select(action_ledger.c.playbook_id, action_ledger.c.customer_id))
        )
        assert conn.execute(select(tasks.c.id)).first() is not None or not acted
    return len(report.rejected), stored, acted


def test_hostile_lines_are_rejected_and_the_good_ones_decided_as_without_them(
    store: Engine, tmp_path: Path
) -> None:
    good = _good_events(store)
    clean_file = tmp_path / "clean.jsonl"
    clean_file.write_text("\n".join(good) + "\n", encoding="utf-8")
    mixed = []
    for n, line in enumerate(good):
        mixed.append(line)
        if n < len(HOSTILE_LINES):
            mixed.append(HOSTILE_LINES[n])
    mixed_file = tmp_path / "mixed.jsonl"
    mixed_file.write_bytes("\n".join(mixed).encode("utf-8", "surrogateescape") + b"\n")

    rejected_clean, stored_clean, acted_clean = _ingest(store, clean_file)
    rejected, stored, acted = _ingest(store, mixed_file)
    assert rejected_clean == 0
    assert rejected == len(HOSTILE_LINES)
    assert stored == stored_clean and len(stored) == len(good)
    assert acted == acted_clean and acted  # the large withdrawals still act
