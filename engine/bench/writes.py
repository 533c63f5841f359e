"""Section 4: writing ledger + outbox + tasks through :class:`engine.execution.sinks.StoreSink` (the
exactly-once insert, ``ON CONFLICT DO NOTHING RETURNING``, one transaction per batch) against a
bare bulk insert of the same rows through the raw driver (``executemany``, ids given, no
conflict handling), into the same empty tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from engine.actions.base import Effect
from engine.bench.dispatch_measure import record_run
from engine.bench.figures import cpu_ratio, ratio, repeat
from engine.bench.lab import Lab
from engine.bench.stores import wipe_engine_rows
from engine.execution.executor import BATCH_SIZE
from engine.execution.sinks import Decision, RunInfo, StoreSink, idempotency_key
from engine.store.models import customers

CUSTOMERS = 20_000
"""Customers acted on (one SMS and one call task each): about as many as a busy day."""
NOW = dt.datetime(2026, 10, 12, 1, 0)
WINDOW = "2026-10-12T09:00"
BODY = (
    "【示例银行】王女士您好,好久不见,您的专属客户经理李明近期将与您联系,"
    "如有需要请致电13800000000。回复TD退订"
)


def _decisions(ids: list[str]) -> list[Decision]:
    due = NOW + dt.timedelta(days=3)
    out = []
    for cid in ids:
        sms = Effect(
            "sms",
            1,
            cid,
            "outbox",
            {
                "channel": "sms",
                "recipient": "13800000000",
                "subject": None,
                "body": BODY,
                "segments": 2,
            },
            "sms",
        )
        task = Effect(
            "task",
            0,
            cid,
            "tasks",
            {
                "assignee_id": "M000001",
                "assignee_role": "manager",
                "queue": None,
                "kind": "call",
                "reason": "bench",
                "title": "电话回访 王女士",
                "body": BODY,
                "checklist": None,
                "priority": "high",
                "due_at": due,
            },
            None,
        )
        out.append(Decision(cid, (task, sms), ()))
    return out


def _run_row(store: Engine) -> int:
    with store.begin() as conn:
        return record_run(conn, "bench", NOW, WINDOW)


def _bare(store: Engine, run_id: int, ids: list[str]) -> None:
    """The same rows, straight through the driver: what the database can take."""
    mark = "%s" if store.dialect.name == "postgresql" else "?"

    def values(n: int) -> str:
        return "(" + ", ".join([mark] * n) + ")"

    now, due = NOW, NOW + dt.timedelta(days=3)
    if store.dialect.name == "sqlite":  # SQLAlchemy's own text forms on SQLite
        now, due = now.isoformat(" ", "microseconds"), due.isoformat(" ", "microseconds")  # type: ignore[assignment]
    raw = store.raw_connection()
    try:
        cursor = raw.cursor()
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = list(enumerate(ids[start : start + BATCH_SIZE], start + 1))
            cursor.executemany(
                'INSERT INTO action_ledger (id, playbook_id, customer_id, "window", run_id,'
                f" content_hash, created_at, held_out) VALUES {values(8)}",
                [(i, "bench", c, WINDOW, run_id, "h", now, False) for i, c in chunk],
            )
            cursor.executemany(
                "INSERT INTO outbox (ledger_id, action_index, playbook_id, customer_id, channel,"
                " recipient, subject, body, status, attempts, created_at, not_before,"
                f" idempotency_key, purpose, priority) VALUES {values(15)}",
                [
                    (
                        i,
                        1,
                        "bench",
                        c,
                        "sms",
                        "13800000000",
                        None,
                        BODY,
                        "pending",
                        0,
                        now,
                        now,
                        idempotency_key("bench", c, WINDOW, 1),
                        "marketing",
                        50,
                    )
                    for i, c in chunk
                ],
            )
            cursor.executemany(
                "INSERT INTO tasks (ledger_id, action_index, playbook_id, customer_id,"
                " assignee_id, assignee_role, queue, kind, reason, title, body, checklist,"
                f" priority, due_at, status, escalation_level, created_at) VALUES {values(17)}",
                [
                    (
                        i,
                        0,
                        "bench",
                        c,
                        "M000001",
                        "manager",
                        None,
                        "call",
                        "bench",
                        "电话回访 王女士",
                        BODY,
                        None,
                        "high",
                        due,
                        "open",
                        0,
                        now,
                    )
                    for i, c in chunk
                ],
            )
            raw.commit()
        cursor.close()
    finally:
        raw.close()


def _sink(store: Engine, run_id: int, decisions: list[Decision]) -> int:
    sink = StoreSink(store)
    info = RunInfo("bench", WINDOW, "h", run_id, NOW, NOW)
    lost = 0
    for start in range(0, len(decisions), BATCH_SIZE):
        lost += len(sink.write(info, decisions[start : start + BATCH_SIZE]))
    return lost


def measure(lab: Lab, repeats: int) -> dict[str, Any]:
    store = lab.store
    with store.connect() as conn:
        query = select(customers.c.id).order_by(customers.c.id).limit(CUSTOMERS)
        ids = [str(r[0]) for r in conn.execute(query)]
    decisions = _decisions(ids)
    run_id = [0]

    def fresh() -> None:
        wipe_engine_rows(store)
        run_id[0] = _run_row(store)

    bare, _ = repeat(lambda: _bare(store, run_id[0], ids), repeats, before=fresh)
    sink, lost = repeat(lambda: _sink(store, run_id[0], decisions), repeats, before=fresh)
    # and a rerun of the same batch writes nothing: the ledger's guarantee is still there
    again = _sink(store, run_id[0], decisions)
    wipe_engine_rows(store)
    rows = len(ids) * 3
    return {
        "customers": len(ids),
        "rows": rows,
        "sink": sink.as_dict(),
        "bare": bare.as_dict(),
        "sink_rows_per_s": round(rows / sink.median),
        "bare_rows_per_s": round(rows / bare.median),
        "sink_customers_per_s": round(len(ids) / sink.median),
        "ratio": ratio(sink, bare),
        "cpu_ratio": cpu_ratio(sink, bare),
        "lost_first_time": lost,
        "lost_on_rerun": again,
        "target_ratio": 2.0,
    }
