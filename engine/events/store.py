"""The engine's event tables: accepted events (deduplicated by id), handled matches and
rejections. Set-based writes, one statement per batch, so persistence keeps up with the
rules engine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from engine.store.models import event_matches, event_rejections, events
from engine.triggers.event_model import Event, Rejected


def _upsert(engine: Engine | Connection) -> Any:
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def insert_new(engine: Engine, batch: Sequence[Event], received_at: dt.datetime) -> set[str]:
    """Store the events; return the ids that were new (a duplicate id is stored once).

    SQLite: one SELECT finds ids stored before and one driver-level executemany stores the
    rest, several times faster than an upsert that returns rows. Should another process store
    one of them in between, the unique key refuses the batch and the upsert takes over.
    PostgreSQL: one ``INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING``.
    """
    if not batch:
        return set()
    if engine.dialect.name == "postgresql":
        return _insert_new_postgresql(engine, batch, received_at)
    ids = [e.id for e in batch]
    with engine.begin() as conn:
        known = {
            r[0] for r in conn.execute(select(events.c.event_id).where(events.c.event_id.in_(ids)))
        }
        fresh = [e for e in batch if e.id not in known]
        if not fresh:
            return set()
        mark = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        sql = (
            "INSERT INTO events (event_id, type, customer_id, occurred_at, received_at, payload) "
            f"VALUES ({', '.join([mark] * 6)})"
        )
        rows = [
            (e.id, e.type, e.customer_id, e.occurred_at, received_at, json.dumps(e.fields))
            for e in fresh
        ]
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(sql, rows)
            return {e.id for e in fresh}
        except IntegrityError:
            pass
    stmt = (
        _upsert(engine)(events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(events.c.event_id)
    )
    values = [
        {
            "event_id": e.id,
            "type": e.type,
            "customer_id": e.customer_id,
            "occurred_at": e.occurred_at,
            "received_at": received_at,
            "payload": dict(e.fields),
        }
        for e in fresh
    ]
    with engine.begin() as conn:
        return {r[0] for r in conn.execute(stmt, values)}


# One statement, one round trip, whatever the batch size: the rows travel as one JSON text
# (encoded by the C encoder; no per-row statements, no 6,000-placeholder query for the driver
# to parse, no per-element array adaptation), the unique key drops ids stored before or by
# another process at the same moment, and RETURNING says which were new. WITH ORDINALITY
# keeps the batch's order in ``seq``; NOT EXISTS keeps known ids from using up seq numbers
# (gaps the daemon's cursor would otherwise wait for).
_PG_INSERT = """
INSERT INTO events (event_id, type, customer_id, occurred_at, received_at, payload)
SELECT u.e->>0, u.e->>1, u.e->>2, (u.e->>3)::timestamp, %s, u.e->4
FROM json_array_elements(%s::json) WITH ORDINALITY AS u(e, n)
WHERE NOT EXISTS (SELECT 1 FROM events k WHERE k.event_id = u.e->>0)
ORDER BY u.n
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def _insert_new_postgresql(
    engine: Engine, batch: Sequence[Event], received_at: dt.datetime
) -> set[str]:
    rows = json.dumps(
        [[e.id, e.type, e.customer_id, e.occurred_at.isoformat(), e.fields] for e in batch],
        ensure_ascii=False,
    )
    with engine.begin() as conn:
        return {r[0] for r in conn.exec_driver_sql(_PG_INSERT, (received_at, rows))}


def record_rejections(
    conn: Connection, rejected: Sequence[tuple[str, Rejected]], received_at: dt.datetime
) -> None:
    if rejected:
        conn.execute(
            insert(event_rejections),
            [
                {
                    "received_at": received_at,
                    "source": source[:200],
                    "event_id": r.event_id,
                    "reason": r.reason,
                    "message": r.message[:300],
                }
                for source, r in rejected
            ],
        )


def handled(conn: Connection, playbook_id: str, keys: Sequence[str]) -> set[str]:
    """Which of these matches were handled already (by this process before a restart, or by
    another)."""
    rows = conn.execute(
        select(event_matches.c.match_key).where(
            event_matches.c.playbook_id == playbook_id, event_matches.c.match_key.in_(keys)
        )
    )
    return {r[0] for r in rows}


def record_matches(conn: Connection, handled: Sequence[Any], handled_at: dt.datetime) -> None:
    """Record handled matches (``processor.Handled``) in one statement; a match recorded
    before (by another process) is left as it is."""
    if not handled:
        return
    conn.execute(
        _upsert(conn)(event_matches).on_conflict_do_nothing(
            index_elements=["playbook_id", "match_key"]
        ),
        [
            {
                "playbook_id": h.match.playbook_id,
                "match_key": h.match.key,
                "customer_id": h.match.customer_id,
                "event_ids": list(h.match.events),
                "matched_at": h.match.at,
                "handled_at": handled_at,
                "outcome": h.result,
                "run_id": h.outcome.run_id if h.outcome else None,
            }
            for h in handled
        ],
    )


def stored_events(
    engine: Engine,
    since: dt.datetime,
    batch_size: int = 5000,
    *,
    after_seq: int | None = None,
    until_seq: int | None = None,
    received_since: dt.datetime | None = None,
) -> Iterator[tuple[int, Event]]:
    """``(seq, event)`` for events that occurred since ``since`` (UTC), and with
    ``after_seq`` / ``received_since`` also every event stored after that seq / received
    since then, in arrival order; with ``until_seq`` none stored after that one."""
    where = events.c.occurred_at >= since
    if after_seq is not None:
        where = or_(where, events.c.seq > after_seq)
    if received_since is not None:
        where = or_(where, events.c.received_at >= received_since)
    if until_seq is not None:
        where = and_(where, events.c.seq <= until_seq)
    query = select(*_EVENT_COLUMNS).where(where).order_by(events.c.seq)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch_size).execute(query)
        for r in result:
            yield r[0], _event(r)


def stored_after(
    conn: Connection, after_seq: int, also: Sequence[int] = (), limit: int = 1000
) -> list[tuple[int, Event]]:
    """The next events stored after ``after_seq`` (and those with a seq in ``also``: gaps a
    concurrent writer may still fill), in arrival order."""
    where = events.c.seq > after_seq
    if also:
        where = or_(where, events.c.seq.in_(list(also)))
    rows = conn.execute(select(*_EVENT_COLUMNS).where(where).order_by(events.c.seq).limit(limit))
    return [(r[0], _event(r)) for r in rows]


_EVENT_COLUMNS = (
    events.c.seq,
    events.c.event_id,
    events.c.type,
    events.c.customer_id,
    events.c.occurred_at,
    events.c.payload,
)


def _event(r: Any) -> Event:
    return Event(r[1], r[2], r[3], r[4], r[5])


def counts(engine: Engine) -> dict[str, Any]:
    """Totals for `stats`: events stored, matches by outcome, rejections by reason."""
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
        matches: dict[str, int] = dict(
            conn.execute(
                select(event_matches.c.outcome, func.count()).group_by(event_matches.c.outcome)
            ).all()
        )
        rejected: dict[str, int] = dict(
            conn.execute(
                select(event_rejections.c.reason, func.count()).group_by(event_rejections.c.reason)
            ).all()
        )
    return {"stored": stored, "matches": matches, "rejected": rejected}
