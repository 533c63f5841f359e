"""The audit log: append-only and tamper-evident.

Each entry's hash covers its own fields and the previous entry's hash, so editing, deleting or
reordering any entry breaks the chain from there on, and :func:`verify` says where. The head
row (entries, last hash) is updated first by every writer: that serialises appends on SQLite
and PostgreSQL alike, and a log cut short no longer matches it. Entries are written in the
caller's transaction, so an action and its record commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.core.clock import utc_now
from engine.store.models import audit_head, audit_log

GENESIS = "0" * 64


def ensure_tables(store: Engine) -> None:
    for table in (audit_log, audit_head):
        table.create(store, checkfirst=True)
    try:
        with store.begin() as conn:
            if conn.execute(select(audit_head.c.id)).first() is None:
                conn.execute(insert(audit_head).values(id=1, entries=0, last_hash=GENESIS))
    except IntegrityError:
        pass  # another process made the head row first


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str = "",
    customer_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Append one entry in ``conn``'s transaction; returns its id."""
    # the head's update takes the write lock (SQLite) or the row lock (PostgreSQL) before
    # the last hash is read: two writers cannot both chain onto the same entry
    conn.execute(
        update(audit_head).where(audit_head.c.id == 1).values(entries=audit_head.c.entries + 1)
    )
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().one()
    entry = {
        "id": int(head["entries"]),
        "at": (at or utc_now()).replace(microsecond=0),
        "actor": actor[:64],
        "action": action[:40],
        "subject": subject[:200],
        "customer_id": customer_id,
        "detail": json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, default=str),
        "prev_hash": head["last_hash"],
    }
    entry["hash"] = entry_hash(entry)
    conn.execute(insert(audit_log).values(**entry))
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(last_hash=entry["hash"]))
    return int(entry["id"])


def entry_hash(entry: Mapping[str, Any]) -> str:
    at = entry["at"]
    fields = [
        entry["prev_hash"],
        int(entry["id"]),
        at.isoformat() if isinstance(at, dt.datetime) else str(at),
        entry["actor"],
        entry["action"],
        entry["subject"],
        entry["customer_id"],
        entry["detail"],
    ]
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Verification:
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(store: Engine) -> Verification:
    """Walk the chain from the first entry: each hash recomputed, each link to the entry
    before, ids without gaps, and the head agreeing with the last entry."""
    found = Verification()
    previous, expected_id = GENESIS, 1
    with store.connect() as conn:
        head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().first()
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings()
        for row in rows:
            found.entries += 1
            if row["id"] != expected_id:
                found.problems.append(f"entry {expected_id} is missing (next is {row['id']})")
                expected_id = row["id"]
            if row["prev_hash"] != previous:
                found.problems.append(f"entry {row['id']} does not follow the entry before it")
            if entry_hash(dict(row)) != row["hash"]:
                found.problems.append(f"entry {row['id']} was changed after it was written")
            previous, expected_id = row["hash"], expected_id + 1
    if head is None:
        if found.entries:
            found.problems.append("the log's head row is missing")
    elif head["entries"] != found.entries or head["last_hash"] != previous:
        found.problems.append(
            f"the head says {head['entries']} entries, the log has {found.entries}: "
            "entries were removed from the end or added around the log"
        )
    return found


def entries(
    store: Engine,
    *,
    since: dt.datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    customer_id: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Entries matching every filter given, newest first."""
    c = audit_log.c
    where = []
    if since is not None:
        where.append(c.at >= since)
    if actor:
        where.append(c.actor == actor)
    if action:
        where.append(c.action.startswith(action))
    if subject:
        where.append(c.subject == subject)
    if customer_id:
        where.append(c.customer_id == customer_id)
    query = select(audit_log).where(*where).order_by(c.id.desc()).limit(limit)
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
