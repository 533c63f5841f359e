"""Section 2: each audience query, compiled by the engine and streamed the way a run streams
it (SQLAlchemy Core, batches of dicts), against the same audience written by hand and read
through the raw driver. Both must return the same customers. An audience over the target
(:data:`TARGET`) gets both query plans in the report: the statement the engine sent, as the
driver received it, and the twin, explained by the database itself (PostgreSQL ``EXPLAIN
(ANALYZE, BUFFERS)``, SQLite ``EXPLAIN QUERY PLAN``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from engine.bench import handwritten
from engine.bench.figures import cpu_ratio, ratio, repeat
from engine.bench.lab import Lab
from engine.execution.executor import BATCH_SIZE, Executor
from engine.playbook.model import Playbook


def _engine_ids(lab: Lab, executor: Executor, playbook: Playbook) -> list[str]:
    query = executor.audience_query(playbook, lab.clock(playbook))
    ids: list[str] = []
    with lab.store.connect() as conn:
        for batch in executor.batches(conn, query, BATCH_SIZE):
            ids.extend(batch.ids)
    return ids


def _hand_ids(lab: Lab, sql: str) -> list[str]:
    raw = lab.store.raw_connection()
    try:
        # streamed as the engine streams (a server-side cursor on PostgreSQL), not buffered
        postgres = lab.store.dialect.name == "postgresql"
        driver: Any = raw.driver_connection
        cursor = driver.cursor(name="bench_hand") if postgres else raw.cursor()
        cursor.execute(sql)
        ids: list[str] = []
        while rows := cursor.fetchmany(BATCH_SIZE):
            ids.extend(str(r[0]) for r in rows)
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return ids


TARGET = 1.5
"""The engine's audience over its hand-written twin at most (issue: every audience ≤ 1.5×)."""


@contextmanager
def _statements(store: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The (statement, parameters) the driver is handed while the block runs."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        seen.append((statement, params))

    event.listen(store, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store, "before_cursor_execute", note)


def explain(store: Engine, statement: str, params: Any = None) -> str:
    """The database's plan of one statement, as text."""
    postgres = store.dialect.name == "postgresql"
    head = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    raw = store.raw_connection()
    try:
        cursor = raw.cursor()
        if params:
            cursor.execute(head + statement, params)
        else:
            cursor.execute(head + statement)
        rows = cursor.fetchall()
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    if postgres:
        return "\n".join(str(r[0]) for r in rows)
    # SQLite: (id, parent, notused, detail), indented by depth
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return "\n".join(lines)


def _plans(lab: Lab, executor: Executor, playbook: Playbook, sql: str) -> dict[str, str]:
    with _statements(lab.store) as seen:
        _engine_ids(lab, executor, playbook)
    selects = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    statement, params = max(selects, key=lambda sp: len(sp[0]))  # the audience, not a probe
    return {
        "engine_sql": statement,
        "engine_params": repr(params),
        "engine": explain(lab.store, statement, params),
        "hand_sql": sql,
        "hand": explain(lab.store, sql),
    }


def measure(lab: Lab, repeats: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    executor = lab.executor()  # once, as a run has one for the pass
    for playbook in (*lab.scheduled, *lab.event_driven):
        engine, ids = repeat(lambda p=playbook: _engine_ids(lab, executor, p), repeats)  # type: ignore[misc]
        entry: dict[str, Any] = {"id": playbook.id, "rows": len(ids), "engine": engine.as_dict()}
        fields = [f.key for f in executor.reads(playbook)[0]]
        entry["fields"] = fields
        sql = handwritten.query(playbook.id, lab.clock(playbook), fields)
        if sql is None:
            entry["hand"] = None
            entry["note"] = "no hand-written baseline for this audience"
        else:
            hand, hand_ids = repeat(lambda s=sql: _hand_ids(lab, s), repeats)  # type: ignore[misc]
            entry["hand"] = hand.as_dict()
            entry["ratio"] = ratio(engine, hand)
            entry["cpu_ratio"] = cpu_ratio(engine, hand)
            entry["same_customers"] = hand_ids == ids
            if entry["ratio"] > TARGET and ids:
                entry["plans"] = _plans(lab, executor, playbook, sql)
        out.append(entry)
    return out
