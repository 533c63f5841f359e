"""Section 2: each audience query, compiled by the engine and streamed the way a run streams
it (SQLAlchemy Core, batches of dicts), against the same audience written by hand and read
through the raw driver. Both must return the same customers."""

from __future__ import annotations

from typing import Any

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
        out.append(entry)
    return out
