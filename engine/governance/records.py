"""The governance tables, read and written: versions, their events, the live pointer.

Every write here runs in the caller's transaction so a state change, its event and its audit
entry commit together or not at all; the compare-and-set helpers return whether their row was
still as the caller saw it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.core.clock import utc_now
from engine.store import audit
from engine.store.models import (
    GOVERNANCE_TABLES,
    console_accounts,
    playbook_live,
    playbook_versions,
    runs,
    version_events,
)


@dataclass(frozen=True)
class Actor:
    """Who acts: a console account (with its role) or ``cli:NAME`` (no role)."""

    name: str
    role: str | None = None

    @property
    def person(self) -> str:
        """The human behind the name: ``cli:alice`` and the account ``alice`` are one person,
        so nobody approves their own version by switching between CLI and console."""
        return self.name.removeprefix("cli:")


@dataclass(frozen=True)
class Live:
    """A playbook's live pointer as one reader saw it."""

    playbook_id: str
    version_id: int | None
    paused: bool
    generation: int


def ensure_tables(store: Engine) -> None:
    """The governance tables, the audit log, and ``runs.version_hash`` on a store made before
    it (nullable, so the change is additive; the Alembic migration will own this)."""
    for table in (*GOVERNANCE_TABLES, console_accounts):
        table.create(store, checkfirst=True)
    audit.ensure_tables(store)
    found = inspect(store)
    if found.has_table(runs.name):
        columns = {c["name"] for c in found.get_columns(runs.name)}
        if "version_hash" not in columns:
            with store.begin() as conn:
                conn.execute(text("ALTER TABLE runs ADD COLUMN version_hash VARCHAR(64)"))


def account_role(conn: Connection, name: str) -> str | None:
    """The role of an enabled console account, None when there is no such account."""
    row = conn.execute(
        select(console_accounts.c.role).where(
            console_accounts.c.name == name, console_accounts.c.disabled_at.is_(None)
        )
    ).first()
    return None if row is None else str(row[0])


def version(conn: Connection, playbook_id: str, number: int) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(playbook_versions).where(
                playbook_versions.c.playbook_id == playbook_id, playbook_versions.c.number == number
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def version_by_id(conn: Connection, version_id: int) -> dict[str, Any]:
    row = (
        conn.execute(select(playbook_versions).where(playbook_versions.c.id == version_id))
        .mappings()
        .one()
    )
    return dict(row)


def versions(conn: Connection, playbook_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(playbook_versions)
        .where(playbook_versions.c.playbook_id == playbook_id)
        .order_by(playbook_versions.c.number)
    ).mappings()
    return [dict(r) for r in rows]


def events(conn: Connection, version_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(version_events)
        .where(version_events.c.version_id == version_id)
        .order_by(version_events.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def live(conn: Connection, playbook_id: str) -> Live | None:
    row = (
        conn.execute(select(playbook_live).where(playbook_live.c.playbook_id == playbook_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Live(playbook_id, row["version_id"], bool(row["paused"]), int(row["generation"]))


def ensure_live_row(store: Engine, playbook_id: str, actor: str) -> None:
    """The pointer row every compare-and-set works on, made once (no version yet)."""
    try:
        with store.begin() as conn:
            if live(conn, playbook_id) is None:
                conn.execute(
                    playbook_live.insert().values(
                        playbook_id=playbook_id,
                        version_id=None,
                        paused=False,
                        generation=0,
                        updated_at=utc_now(),
                        updated_by=actor,
                    )
                )
    except IntegrityError:
        pass  # another process made it first: the same row


def next_number(conn: Connection, playbook_id: str) -> int:
    top = conn.execute(
        select(func.max(playbook_versions.c.number)).where(
            playbook_versions.c.playbook_id == playbook_id
        )
    ).scalar()
    return int(top or 0) + 1


def move_live(
    conn: Connection, seen: Live, actor: str, *, version_id: int | None, paused: bool
) -> bool:
    """Compare-and-set the pointer: only if nobody changed it since ``seen``."""
    result = conn.execute(
        update(playbook_live)
        .where(
            playbook_live.c.playbook_id == seen.playbook_id,
            playbook_live.c.generation == seen.generation,
        )
        .values(
            version_id=version_id,
            paused=paused,
            generation=seen.generation + 1,
            updated_at=utc_now(),
            updated_by=actor,
        )
    )
    return result.rowcount == 1


def set_state(conn: Connection, version_id: int, expected: str, state: str) -> bool:
    """Compare-and-set one version's state."""
    result = conn.execute(
        update(playbook_versions)
        .where(playbook_versions.c.id == version_id, playbook_versions.c.state == expected)
        .values(state=state)
    )
    return result.rowcount == 1


def add_event(
    conn: Connection,
    row: dict[str, Any],
    action: str,
    actor: Actor,
    *,
    comment: str | None = None,
    generation: int | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """One step of a version, and its audit entry, in ``conn``'s transaction."""
    conn.execute(
        version_events.insert().values(
            version_id=row["id"],
            playbook_id=row["playbook_id"],
            action=action,
            actor=actor.name,
            at=at or utc_now(),
            comment=comment,
            generation=generation,
        )
    )
    audit.record(
        conn,
        actor=actor.name,
        action=f"playbook.{action}",
        subject=row["playbook_id"],
        detail={
            "version": row["number"],
            "hash": row["hash"],
            **({"comment": comment} if comment else {}),
            **(detail or {}),
        },
        at=at,
    )


def people(rows: list[dict[str, Any]], action: str, *, generation: int | None = None) -> set[str]:
    """The distinct persons behind ``action`` events (of one live generation, if given)."""
    return {
        Actor(r["actor"]).person
        for r in rows
        if r["action"] == action and (generation is None or r["generation"] == generation)
    }
