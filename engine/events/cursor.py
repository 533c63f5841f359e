"""The daemons' processing cursor over the events table, and the lease to move it.

One daemon at a time hosts the event playbooks: it holds the lease on the ``event_cursors``
row and moves ``last_seq`` forward as it processes stored events. The others stand by; when
the holder stops renewing (killed, hung, network gone), its lease lapses and the next daemon
takes over, rebuilding the windows from stored events and starting after ``last_seq``.

Correctness does not rest on the lease: a match is recorded in ``event_matches`` and the
ledger is unique per (playbook, customer, ``event:<first id>``), so a holder that lost its
lease without noticing acts on nothing twice. The lease only keeps daemons from doing the same
work twice. Every function takes a connection inside the caller's transaction and the wall
clock ``now`` (naive UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.models import event_cursors, events

DAEMON = "daemon"  # the cursor the daemons share


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def acquire(
    conn: Connection, owner: str, now: dt.datetime, lease: dt.timedelta, name: str = DAEMON
) -> int | None:
    """Take or renew the lease; the cursor's ``last_seq`` when this daemon holds it, None
    when another live daemon does. The very first daemon starts the cursor at the events
    stored so far: their windows are rebuilt from the replay range, but a history stored
    before any daemon ran is not acted on afresh."""
    stored = select(func.coalesce(func.max(events.c.seq), 0)).scalar_subquery()
    conn.execute(
        _insert(conn)(event_cursors)
        .values(name=name, last_seq=stored, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = conn.execute(
        update(event_cursors)
        .where(
            event_cursors.c.name == name,
            or_(
                event_cursors.c.owner.is_(None),
                event_cursors.c.owner == owner,
                event_cursors.c.lease_until < now,
            ),
        )
        .values(owner=owner, lease_until=now + lease)
    )
    if result.rowcount != 1:
        return None
    seq = conn.execute(
        select(event_cursors.c.last_seq).where(event_cursors.c.name == name)
    ).scalar_one()
    return int(seq)


def advance(
    conn: Connection,
    owner: str,
    last_seq: int,
    now: dt.datetime,
    lease: dt.timedelta,
    name: str = DAEMON,
) -> bool:
    """Move the cursor and renew the lease; False when the lease was lost meanwhile."""
    result = conn.execute(
        update(event_cursors)
        .where(event_cursors.c.name == name, event_cursors.c.owner == owner)
        .values(last_seq=last_seq, lease_until=now + lease, updated_at=now)
    )
    return bool(result.rowcount == 1)


def release(conn: Connection, owner: str, name: str = DAEMON) -> None:
    """Give the lease up at a graceful stop, so a standby daemon takes over at once."""
    conn.execute(
        update(event_cursors)
        .where(event_cursors.c.name == name, event_cursors.c.owner == owner)
        .values(owner=None, lease_until=None)
    )


def read(conn: Connection, name: str = DAEMON) -> dict[str, Any] | None:
    """The cursor row, for ``status``."""
    row = conn.execute(select(event_cursors).where(event_cursors.c.name == name)).first()
    return None if row is None else dict(row._mapping)
