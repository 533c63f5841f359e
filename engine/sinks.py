"""Where decided actions go. Dry-run and run share every step before this; only the sink
differs.

:class:`RecordingSink` keeps a preview in memory. :class:`StoreSink` writes the ledger row
and its outbox, task and tag rows for each customer, and the run's suppressions, in one
transaction per batch; the ledger's unique key (playbook, customer, window) makes a rerun, a
crash-restart or a second daemon a no-op for customers already done.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.actions.base import Effect
from engine.policy.gate import DISPLACED, frequency_cap
from engine.store.models import action_ledger, engine_tags, outbox, suppressions, tasks

# Reasons not stored per customer: they repeat on every rerun (the count is in runs).
NOT_STORED = frozenset({"already_done"})


def idempotency_key(playbook_id: str, customer_id: str, window: str, action_index: int) -> str:
    """The same action for the same customer in the same window always has the same key, so
    a gateway can drop a duplicate however the message came to be sent twice."""
    text = f"{playbook_id}\x00{customer_id}\x00{window}\x00{action_index}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Decision:
    """Everything decided for one matched customer in one run."""

    customer_id: str
    effects: tuple[Effect, ...]
    suppressed: tuple[tuple[str | None, str], ...]  # (action kind or None for all, reason)
    held_out: bool = False  # in the playbook's holdout group: recorded, nothing done
    # the ledger window when it is the customer's own (event matches), else the run's
    window: str | None = None


@dataclass
class RunInfo:
    playbook_id: str
    window: str
    content_hash: str
    run_id: int | None
    now_utc: dt.datetime  # engine timestamps
    not_before_utc: dt.datetime
    priority: int = 50
    category: str = "marketing"


class Sink(Protocol):
    # Previews mask personal data before rendering; the store must get the real values.
    mask: bool

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        """Record the batch; return the customers that turned out to be done already."""
        ...


@dataclass
class RecordingSink:
    """Keeps decisions for a preview; writes nothing. Masks personal data unless told not to.

    ``contacts`` tallies the marketing messages previewed so far, per customer and channel;
    share one Counter between the sinks of one preview so frequency caps see the messages
    earlier playbooks would send, as they would in a real run.
    """

    mask: bool = True
    decisions: list[Decision] = field(default_factory=list)
    contacts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        self.decisions.extend(decisions)
        if info.category == "marketing":
            for d in decisions:
                for e in d.effects:
                    if e.channel is not None:
                        self.contacts[(d.customer_id, e.channel)] += 1
        return set()


class StoreSink:
    """Writes ledger + outbox + tasks, one transaction per batch, one statement per table."""

    mask = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        lost: set[str] = set()
        acting = [d for d in decisions if d.effects or d.held_out]
        held = [d for d in decisions if any(r not in NOT_STORED for _, r in d.suppressed)]
        if not acting and not held:
            return lost
        with self.engine.begin() as conn:
            ledger_ids = self._ledger(conn, info, acting)
            outbox_rows: list[dict[str, Any]] = []
            task_rows: list[dict[str, Any]] = []
            for decision in acting:
                window = decision.window or info.window
                ledger_id = ledger_ids.get((decision.customer_id, window))
                if ledger_id is None:  # another run got here first
                    lost.add(decision.customer_id)
                    continue
                for effect in decision.effects:
                    row = self._effect(conn, info, ledger_id, effect, window)
                    if row is not None:
                        (outbox_rows if effect.target == "outbox" else task_rows).append(row)
            # one statement per table and batch (executemany: multi-row on both drivers)
            if outbox_rows:
                conn.execute(self._insert(outbox).on_conflict_do_nothing(), outbox_rows)
            if task_rows:
                # an open task for the same customer, kind and reason wins (partial unique index)
                conn.execute(self._insert(tasks).on_conflict_do_nothing(), task_rows)
            rows = [
                {
                    "run_id": info.run_id,
                    "playbook_id": info.playbook_id,
                    "customer_id": d.customer_id,
                    "window": d.window or info.window,
                    "action": kind,
                    "reason": reason,
                    "created_at": info.now_utc,
                }
                for d in held
                if d.customer_id not in lost
                for kind, reason in d.suppressed
                if reason not in NOT_STORED
            ]
            if rows and info.run_id is not None:
                conn.execute(suppressions.insert(), rows)
        return lost

    def _ledger(
        self, conn: Any, info: RunInfo, acting: Sequence[Decision]
    ) -> dict[tuple[str, str], int]:
        """Insert the batch's ledger rows in one statement; the ids of those that landed, by
        (customer, window). A row another run inserted first is left out: its customer is
        done already, and none of its effects are written again."""
        if not acting:
            return {}
        rows = [
            {
                "playbook_id": info.playbook_id,
                "customer_id": d.customer_id,
                "window": d.window or info.window,
                "run_id": info.run_id,
                "content_hash": info.content_hash,
                "created_at": info.now_utc,
                "held_out": d.held_out,
            }
            for d in acting
        ]
        # the same order in every transaction: two runs racing for the same rows wait for
        # each other instead of deadlocking
        rows.sort(key=lambda r: (r["customer_id"], r["window"]))
        stmt = (
            self._insert(action_ledger)
            .on_conflict_do_nothing(index_elements=["playbook_id", "customer_id", "window"])
            .returning(action_ledger.c.id, action_ledger.c.customer_id, action_ledger.c.window)
        )
        return {(r[1], r[2]): int(r[0]) for r in conn.execute(stmt, rows)}

    def _displace(self, conn: Any, info: RunInfo, effect: Effect, window: str) -> bool:
        """Cancel the lower-priority message this one displaces, and record why against the
        run that queued it. False when a dispatcher took it meanwhile (it is being sent, so
        the cap is full after all): this message is then held back by the cap instead."""
        victim = effect.displaces
        assert victim is not None
        o = outbox.c
        cancelled = conn.execute(
            update(outbox)
            .where(
                o.id == victim.outbox_id,
                o.status == "pending",
                or_(o.claimed_until.is_(None), o.claimed_until < info.now_utc),
            )
            .values(
                status="cancelled",
                claimed_until=None,
                last_error=f"{DISPLACED}: {info.playbook_id} (priority {info.priority})",
            )
        ).rowcount
        won = bool(cancelled)
        held = {
            "run_id": victim.run_id if won else info.run_id,
            "playbook_id": victim.playbook_id if won else info.playbook_id,
            "customer_id": effect.customer_id,
            "window": victim.window if won else window,
            "action": victim.kind if won else effect.kind,
            "reason": DISPLACED if won else frequency_cap(victim.kind),
            "created_at": info.now_utc,
        }
        if held["run_id"] is not None:
            conn.execute(suppressions.insert().values(**held))
        return won

    def _effect(
        self, conn: Any, info: RunInfo, ledger_id: int, effect: Effect, window: str
    ) -> dict[str, Any] | None:
        """The outbox or task row of one effect (written by the caller, batched); tag
        changes are applied here, in order."""
        common = {
            "ledger_id": ledger_id,
            "action_index": effect.action_index,
            "playbook_id": info.playbook_id,
            "customer_id": effect.customer_id,
            "created_at": info.now_utc,
        }
        row = effect.row
        if effect.target == "outbox":
            if effect.displaces is not None and not self._displace(conn, info, effect, window):
                return None
            key = idempotency_key(info.playbook_id, effect.customer_id, window, effect.action_index)
            return {
                **common,
                "channel": row["channel"],
                "recipient": row["recipient"],
                "subject": row.get("subject"),
                "body": row["body"],
                "status": "pending",
                "attempts": 0,
                "not_before": effect.not_before or info.not_before_utc,
                "expires_at": effect.expires_at,
                "idempotency_key": key,
                "purpose": info.category,
                "priority": info.priority,
            }
        if effect.target == "tasks":
            return {
                **common,
                "assignee_id": row["assignee_id"],
                "assignee_role": row["assignee_role"],
                "queue": row.get("queue"),
                "kind": row["kind"],
                "reason": row["reason"],
                "title": row["title"],
                "body": row.get("body"),
                "checklist": row.get("checklist"),
                "priority": row["priority"],
                "due_at": row["due_at"],
                "status": "open",
                "escalation_level": 0,
            }
        if row["op"] == "add":
            conn.execute(
                self._insert(engine_tags)
                .values(
                    customer_id=effect.customer_id,
                    tag=row["tag"],
                    playbook_id=info.playbook_id,
                    set_at=info.now_utc,
                )
                .on_conflict_do_nothing()
            )
        else:
            conn.execute(
                delete(engine_tags).where(
                    engine_tags.c.customer_id == effect.customer_id,
                    engine_tags.c.tag == row["tag"],
                )
            )
        return None
