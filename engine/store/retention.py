"""Retention (PIPL Art. 19, minimum necessary): personal content is kept only as long as the
bank says, the facts for ever.

``config/retention.yaml`` says how long rendered texts and addresses stay in the outbox, the
texts of closed tasks, and the fields of stored events. :func:`purge` blanks what is older,
keeping every fact an auditor asks for: who (customer id), which playbook and version (the
ledger and the run), when, what kind (channel, task kind, event type), delivery status and
outcome. Messages still queued and open tasks are never touched. Each purge is one audit
entry with its counts; the daemon runs it hourly, ``runner.py purge`` on demand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Text, and_, cast, func, select, update

from engine.core.configfile import load_config
from engine.store import audit
from engine.store.models import events, outbox, tasks

PURGED = "〔已按保留期清除 purged〕"
FINISHED_MESSAGES = ("sent", "failed", "dead", "cancelled")
_DURATION = {"type": "string", "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "keep"],
    "properties": {
        "version": {"const": 1},
        "keep": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "message_texts": _DURATION,
                "task_texts": _DURATION,
                "event_payloads": _DURATION,
            },
        },
    },
}


@dataclass(frozen=True)
class Retention:
    """How long each kind of personal content is kept (None: for ever)."""

    message_texts: dt.timedelta | None = None
    task_texts: dt.timedelta | None = None
    event_payloads: dt.timedelta | None = None


@dataclass(frozen=True)
class Purged:
    messages: int
    tasks: int
    events: int

    def __str__(self) -> str:
        return f"{self.messages} message(s), {self.tasks} task(s), {self.events} event(s)"


def load_retention(path: Path) -> Retention:
    """The file, checked (E0412 at its line); without it nothing is purged."""
    if not path.exists():
        return Retention()
    cfg = load_config(path, SCHEMA, "E0412")
    keep = cfg.data["keep"] or {}

    def span(key: str) -> dt.timedelta | None:
        return cfg.duration(keep[key], ("keep", key)) if key in keep else None

    return Retention(span("message_texts"), span("task_texts"), span("event_payloads"))


def purge(
    store: Engine, rules: Retention, now_utc: dt.datetime, actor: str, *, dry_run: bool = False
) -> Purged:
    """Blank the personal content older than the rules allow; one audit entry (unless
    nothing was due, or ``dry_run``, which only counts)."""
    if not dry_run:
        audit.ensure_tables(store)
    with store.begin() as conn:
        counts = []
        for statement in _statements(rules, now_utc):
            if dry_run:
                query = select(func.count()).select_from(statement.table)
                query = query.where(statement.whereclause)
                counts.append(int(conn.execute(query).scalar_one()))
            else:
                counts.append(int(conn.execute(statement).rowcount or 0))
        done = Purged(*counts)
        if not dry_run and any(counts):
            audit.record(
                conn,
                actor=actor,
                action="retention.purge",
                subject="outbox, tasks, events",
                detail={"messages": done.messages, "tasks": done.tasks, "events": done.events},
            )
    return done


def _statements(rules: Retention, now_utc: dt.datetime) -> list[Any]:
    """One UPDATE per kind of content; a kind the rules keep for ever matches nothing."""
    never = dt.datetime(1, 1, 1)

    def cutoff(span: dt.timedelta | None) -> dt.datetime:
        return now_utc - span if span is not None else never

    o, t, e = outbox.c, tasks.c, events.c
    return [
        update(outbox)
        .where(
            and_(
                o.created_at < cutoff(rules.message_texts),
                o.status.in_(FINISHED_MESSAGES),
                o.body != PURGED,
            )
        )
        .values(body=PURGED, recipient="", subject=None, last_error=None),
        update(tasks)
        .where(and_(t.created_at < cutoff(rules.task_texts), t.status == "done", t.title != PURGED))
        .values(title=PURGED, body=None, note=None),
        update(events)
        # JSON has no equality on PostgreSQL: compare its text
        .where(and_(e.received_at < cutoff(rules.event_payloads), cast(e.payload, Text) != "{}"))
        .values(payload=_EMPTY),
    ]


_EMPTY: dict[str, Any] = {}
