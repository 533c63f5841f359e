"""Where decided actions go. Dry-run and run share every step before this; only the sink
differs.

:class:`RecordingSink` keeps a preview in memory. :class:`StoreSink` writes the ledger row
and its outbox and task rows for each customer in one transaction per batch; the ledger's
unique key (playbook, customer, window) makes a rerun, a crash-restart or a second daemon a
no-op for customers already done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, insert
from sqlalchemy.dialects import postgresql, sqlite

from engine.actions.base import Effect
from engine.store.models import action_ledger, outbox, tasks


@dataclass(frozen=True)
class Decision:
    """Everything decided for one matched customer in one run."""

    customer_id: str
    effects: tuple[Effect, ...]
    suppressed: tuple[tuple[str | None, str], ...]  # (action kind or None for all, reason)


@dataclass
class RunInfo:
    playbook_id: str
    window: str
    content_hash: str
    run_id: int | None
    now_utc: dt.datetime  # engine timestamps
    not_before_utc: dt.datetime


class Sink(Protocol):
    # Previews mask personal data before rendering; the store must get the real values.
    mask: bool

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        """Record the batch; return the customers that turned out to be done already."""
        ...


@dataclass
class RecordingSink:
    """Keeps decisions for a preview; writes nothing. Masks personal data unless told not to."""

    mask: bool = True
    decisions: list[Decision] = field(default_factory=list)

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        self.decisions.extend(decisions)
        return set()


class StoreSink:
    """Writes ledger + outbox + tasks, one transaction per batch."""

    mask = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        lost: set[str] = set()
        acting = [d for d in decisions if d.effects]
        if not acting:
            return lost
        with self.engine.begin() as conn:
            for decision in acting:
                ledger_id = conn.execute(
                    self._insert(action_ledger)
                    .values(
                        playbook_id=info.playbook_id,
                        customer_id=decision.customer_id,
                        window=info.window,
                        run_id=info.run_id,
                        content_hash=info.content_hash,
                        created_at=info.now_utc,
                    )
                    .on_conflict_do_nothing(index_elements=["playbook_id", "customer_id", "window"])
                    .returning(action_ledger.c.id)
                ).scalar()
                if ledger_id is None:  # another run got here first
                    lost.add(decision.customer_id)
                    continue
                for effect in decision.effects:
                    self._effect(conn, info, ledger_id, effect)
        return lost

    def _effect(self, conn: Any, info: RunInfo, ledger_id: int, effect: Effect) -> None:
        common = {
            "ledger_id": ledger_id,
            "action_index": effect.action_index,
            "playbook_id": info.playbook_id,
            "customer_id": effect.customer_id,
            "created_at": info.now_utc,
        }
        row = effect.row
        if effect.target == "outbox":
            conn.execute(
                insert(outbox).values(
                    **common,
                    channel=row["channel"],
                    recipient=row["recipient"],
                    subject=row.get("subject"),
                    body=row["body"],
                    status="pending",
                    attempts=0,
                    not_before=info.not_before_utc,
                )
            )
        else:
            conn.execute(
                insert(tasks).values(
                    **common,
                    assignee_id=row["assignee_id"],
                    assignee_role=row["assignee_role"],
                    kind=row["kind"],
                    title=row["title"],
                    body=row.get("body"),
                    priority=row["priority"],
                    due_at=row["due_at"],
                    status="open",
                )
            )
