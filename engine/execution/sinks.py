"""Where decided actions go. Dry-run and run share every step before this; only the sink
differs.

:class:`RecordingSink` keeps a preview in memory. :class:`StoreSink` writes the ledger row
and its outbox, task and tag rows for each customer, and the run's suppressions, in one
transaction per batch; the ledger's unique key (playbook, customer, window) makes a rerun, a
crash-restart or a second daemon a no-op for customers already done. Customers held back by the
run's own limit are listed compactly (:mod:`engine.store.holds`), written as their lists fill
and when the run finishes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Table,
    bindparam,
    delete,
    or_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from engine.actions.base import Effect
from engine.core.clock import utc_now
from engine.policy.gate import DISPLACED, MAX_PER_RUN, WECOM_KIND, frequency_cap
from engine.store import holds
from engine.store.models import (
    action_ledger,
    engine_tags,
    outbox,
    run_data_issues,
    run_holds,
    runs,
    suppressions,
    tasks,
)

# Reasons not stored per customer: they repeat on every rerun (the count is in runs).
NOT_STORED = frozenset({"already_done"})
# Reasons of the run's own, not the customer's: listed compactly per run (run_holds).
COMPACT = frozenset({MAX_PER_RUN})


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
    version_hash: str | None = None  # the governed version that runs (None: governance off)


@dataclass(frozen=True)
class RunTotals:
    """What a finished run of one playbook counted, for its ``runs`` row."""

    matched: int
    acted: int
    suppressed: Mapping[str, int]  # reason -> customers, held-out ones included
    data_issues: Mapping[str, Mapping[str, int]]  # field -> kind -> customers


class Sink(Protocol):
    """Where the executor's decisions go. A dry-run and a run differ only in this object: the
    executor calls the same methods in the same order and never asks which sink it has."""

    # Previews mask personal data before rendering; the store must get the real values.
    mask: bool

    @property
    def planned(self) -> Counter[tuple[str, str]] | None:
        """Marketing messages (and WeCom messages, channel ``wecom``) this sink has taken so
        far but not stored, per (customer, channel), for frequency caps and WeCom limits to
        count; None when the store itself holds them."""
        ...

    @property
    def queues(self) -> bool:
        """Whether what this sink takes is queued for delivery: then consent is read on the
        primary, just before; a preview reads it with the rest of the bank's data (a
        replica, if any)."""
        ...

    def start(self, info: RunInfo) -> None:
        """A run of ``info.playbook_id`` begins; a recording sink records it (``info.run_id``)."""
        ...

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        """Record the batch; return the customers that turned out to be done already."""
        ...

    def finish(self, info: RunInfo, totals: RunTotals, *, error: str | None) -> None:
        """The run ended: done (``error`` None) or failed with the located reason."""
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

    @property
    def planned(self) -> Counter[tuple[str, str]] | None:
        return self.contacts

    @property
    def queues(self) -> bool:
        return False  # a preview sends nothing

    def start(self, info: RunInfo) -> None:
        """A preview records no run."""

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        self.decisions.extend(decisions)
        for d in decisions:
            for e in d.effects:
                if e.channel is not None and info.category == "marketing":
                    self.contacts[(d.customer_id, e.channel)] += 1
                elif e.kind == WECOM_KIND:  # WeCom limits count service messages too
                    self.contacts[(d.customer_id, WECOM_KIND)] += 1
        return set()

    def finish(self, info: RunInfo, totals: RunTotals, *, error: str | None) -> None:
        """A preview records no run."""


class _Bulk:
    """One table's ``INSERT … ON CONFLICT DO NOTHING`` as driver SQL, compiled once.

    Rows go to the driver's ``executemany`` as tuples, each value through the column type's
    own bind processor (SQLAlchemy's, so a timestamp is stored exactly as SQLAlchemy stores
    it). Skipping the per-row parameter handling of a Core ``executemany`` is what brings a
    batch close to a bare bulk insert; the SQL and the values are the same.
    """

    def __init__(self, engine: Engine, table: Table, columns: Sequence[str]) -> None:
        dialect = engine.dialect
        quote = dialect.identifier_preparer.quote
        self.columns = tuple(columns)
        self._get = operator.itemgetter(*self.columns)
        # (position, processor) of the columns that need one; a batch repeats the same few
        # timestamps (the run's moment, a due date), so their conversions are remembered
        self._processed: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(self.columns):
            column_type = table.c[name].type
            process = column_type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                hashable = isinstance(column_type, DateTime | Date | Boolean)
                self._processed.append(
                    (i, functools.lru_cache(256)(process) if hashable else process)
                )
        postgres = dialect.name == "postgresql"
        mark = "%s" if postgres else "?"
        marks = [
            f"{mark}::json" if postgres and isinstance(table.c[c].type, JSON) else mark
            for c in self.columns
        ]
        self.row_sql = "(" + ", ".join(marks) + ")"
        self.head = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
        )
        # PostgreSQL: a whole batch as one array per column, so the statement is the same
        # text for every batch (the driver parses and caches it once, the server plans it once)
        self.arrays = None
        if postgres:
            types = [table.c[c].type.compile(dialect=dialect) for c in self.columns]
            self.arrays = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in types)})"
            )

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        got = self._get(row)
        if not self._processed:
            return tuple(got)
        out = list(got)
        for i, process in self._processed:
            if out[i] is not None:
                out[i] = process(out[i])
        return tuple(out)

    def insert_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            sql = self.head + self.row_sql + " ON CONFLICT DO NOTHING"
            conn.exec_driver_sql(sql, [self.values(r) for r in rows])

    def insert_returning(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]], conflict: str, returning: str
    ) -> list[tuple[Any, ...]]:
        """Multi-row ``VALUES`` with ``RETURNING``, in chunks under the parameter limits; on
        PostgreSQL one ``unnest`` of column arrays (a ``VALUES`` list of thousands of
        placeholders is a new statement text per batch size, parsed by the driver each time).
        Rows go in in the given order either way."""
        found: list[tuple[Any, ...]] = []
        if self.arrays is not None and rows:
            columns = list(zip(*(self.values(r) for r in rows), strict=True))
            sql = self.arrays + f" ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}"
            found.extend(tuple(r) for r in conn.exec_driver_sql(sql, tuple(map(list, columns))))
            return found
        step = max(1, 30_000 // len(self.columns))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            sql = (
                self.head
                + ", ".join([self.row_sql] * len(chunk))
                + f" ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}"
            )
            params = tuple(v for r in chunk for v in self.values(r))
            found.extend(tuple(r) for r in conn.exec_driver_sql(sql, params))
        return found


LEDGER_COLUMNS = ("playbook_id", "customer_id", "window", "run_id", "content_hash",
                  "created_at", "held_out")  # fmt: skip
OUTBOX_COLUMNS = ("ledger_id", "action_index", "playbook_id", "customer_id", "created_at",
                  "channel", "recipient", "subject", "body", "status", "attempts", "not_before",
                  "expires_at", "idempotency_key", "purpose", "priority")  # fmt: skip
HELD_COLUMNS = ("run_id", "playbook_id", "customer_id", "window", "action", "reason",
                "created_at")  # fmt: skip
TASK_COLUMNS = ("ledger_id", "action_index", "playbook_id", "customer_id", "created_at",
                "assignee_id", "assignee_role", "queue", "kind", "reason", "title", "body",
                "checklist", "priority", "due_at", "status", "escalation_level")  # fmt: skip


class StoreSink:
    """Writes ledger + outbox + tasks, one transaction per batch, a few statements per batch.

    The ledger rows of a whole batch go in as one multi-row ``INSERT … ON CONFLICT DO NOTHING
    RETURNING id, customer_id``: a customer whose row is not returned was done by another run
    (a rerun, a second daemon) and gets nothing else. The outbox, task and tag rows of the
    customers that won then go in with one driver ``executemany`` per table (see
    :class:`_Bulk`). Row by row this cost a round trip per row (about 250 customers/s); the
    guarantee is the same, it rests on the ledger's unique key either way.
    """

    mask = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._ledger_rows = _Bulk(engine, action_ledger, LEDGER_COLUMNS)
        self._outbox_rows = _Bulk(engine, outbox, OUTBOX_COLUMNS)
        self._task_rows = _Bulk(engine, tasks, TASK_COLUMNS)
        self._held_rows = _Bulk(engine, suppressions, HELD_COLUMNS)
        quote = engine.dialect.identifier_preparer.quote
        self._conflict = ", ".join(quote(c) for c in ("playbook_id", "customer_id", "window"))
        # run id -> (window, reason, bucket) -> customers held back, not yet written
        self._holding: dict[int, dict[tuple[str, str, int], list[str]]] = {}

    @property
    def planned(self) -> Counter[tuple[str, str]] | None:
        return None  # what this sink takes is in the outbox, where the caps count it

    @property
    def queues(self) -> bool:
        return True

    def start(self, info: RunInfo) -> None:
        """Open the run's ``runs`` row (status ``running``) and note its id in ``info``."""
        with self.engine.begin() as conn:
            run_id = conn.execute(
                runs.insert()
                .values(
                    playbook_id=info.playbook_id,
                    window=info.window,
                    as_of=info.now_utc,
                    content_hash=info.content_hash,
                    started_at=utc_now(),
                    status="running",
                    matched=0,
                    acted=0,
                    suppressed={},
                    # only when governed: a store made before the column existed still runs
                    **({"version_hash": info.version_hash} if info.version_hash else {}),
                )
                .returning(runs.c.id)
            ).scalar_one()
        info.run_id = int(run_id)

    def finish(self, info: RunInfo, totals: RunTotals, *, error: str | None) -> None:
        """Close the ``runs`` row with its counts and data issues, ``done`` or ``failed``, and
        write the rest of its compact holds in the same transaction."""
        with self.engine.begin() as conn:
            if info.run_id is not None:
                self._write_holds(conn, info, self._holding.pop(info.run_id, {}), full_only=False)
            conn.execute(
                update(runs)
                .where(runs.c.id == info.run_id)
                .values(
                    finished_at=utc_now(),
                    status="done" if error is None else "failed",
                    matched=totals.matched,
                    acted=totals.acted,
                    suppressed=dict(totals.suppressed),
                    error=error,
                )
            )
            if totals.data_issues:
                conn.execute(
                    run_data_issues.insert(),
                    [
                        {"run_id": info.run_id, "field": k, **v}
                        for k, v in totals.data_issues.items()
                    ],
                )

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        acting = [d for d in decisions if d.effects or d.held_out]
        held = [d for d in decisions if any(r not in NOT_STORED for _, r in d.suppressed)]
        if not acting and not held:
            return set()
        with self.engine.begin() as conn:
            won = self._ledger(conn, info, acting)
            lost = {d.customer_id for d in acting if (d.customer_id, _window(d, info)) not in won}
            effects = [
                (won[key], key[1], e)
                for d in acting
                if (key := (d.customer_id, _window(d, info))) in won
                for e in d.effects
            ]
            queued = [
                (lid, window, e)
                for lid, window, e in effects
                if e.target == "outbox"
                and (e.displaces is None or self._displace(conn, info, e, window))
            ]
            self._outbox(conn, info, queued)
            won_effects = [(lid, e) for lid, _, e in effects]
            self._tasks(conn, info, [(lid, e) for lid, e in won_effects if e.target == "tasks"])
            self._tags(
                conn, info, [e for _, e in won_effects if e.target not in ("outbox", "tasks")]
            )
            if info.run_id is not None:
                self._held(conn, info, [d for d in held if d.customer_id not in lost])
        return lost

    def _held(self, conn: Connection, info: RunInfo, held: Sequence[Decision]) -> None:
        """A row each for reasons about the customer; the run's own limit into the run's
        compact lists, the full ones written now (in the batch's transaction)."""
        assert info.run_id is not None
        lists = self._holding.setdefault(info.run_id, {})
        rows = []
        for d in held:
            window = _window(d, info)
            for kind, reason in d.suppressed:
                if reason in NOT_STORED:
                    continue
                if reason in COMPACT and kind is None and holds.compactable(d.customer_id):
                    key = (window, reason, holds.bucket(d.customer_id))
                    lists.setdefault(key, []).append(d.customer_id)
                    continue
                rows.append(
                    {
                        "run_id": info.run_id,
                        "playbook_id": info.playbook_id,
                        "customer_id": d.customer_id,
                        "window": window,
                        "action": kind,
                        "reason": reason,
                        "created_at": info.now_utc,
                    }
                )
        self._held_rows.insert_many(conn, rows)
        self._write_holds(conn, info, lists, full_only=True)

    def _write_holds(
        self,
        conn: Connection,
        info: RunInfo,
        lists: dict[tuple[str, str, int], list[str]],
        *,
        full_only: bool,
    ) -> None:
        """Write the run's lists that reached :data:`holds.HOLD_CHUNK` (all of them when the
        run finishes) as ``run_holds`` rows, and forget them."""
        rows = []
        for key in [k for k, ids in lists.items() if not full_only or len(ids) >= holds.HOLD_CHUNK]:
            window, reason, bucket = key
            ids = lists.pop(key)
            for start in range(0, len(ids), holds.HOLD_CHUNK):
                chunk = ids[start : start + holds.HOLD_CHUNK]
                rows.append(
                    {
                        "run_id": info.run_id,
                        "playbook_id": info.playbook_id,
                        "window": window,
                        "reason": reason,
                        "bucket": bucket,
                        "held": len(chunk),
                        "customers": holds.encode(chunk),
                        "created_at": info.now_utc,
                    }
                )
        if rows:
            conn.execute(run_holds.insert(), rows)

    def _ledger(
        self, conn: Any, info: RunInfo, acting: Sequence[Decision]
    ) -> dict[tuple[str, str], int]:
        """(customer id, window) -> ledger id, for the rows this batch inserted."""
        if not acting:
            return {}
        rows = [
            {
                "playbook_id": info.playbook_id,
                "customer_id": d.customer_id,
                "window": _window(d, info),
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
        quote = conn.dialect.identifier_preparer.quote
        returning = f"customer_id, {quote('window')}, id"
        found = self._ledger_rows.insert_returning(conn, rows, self._conflict, returning)
        return {(str(cid), str(window)): int(lid) for cid, window, lid in found}

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

    def _outbox(self, conn: Any, info: RunInfo, effects: Sequence[tuple[int, str, Effect]]) -> None:
        if not effects:
            return
        rows = []
        for ledger_id, window, effect in effects:
            row = effect.row
            key = idempotency_key(info.playbook_id, effect.customer_id, window, effect.action_index)
            rows.append(
                {
                    **_common(info, ledger_id, effect),
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
            )
        self._outbox_rows.insert_many(conn, rows)

    def _tasks(self, conn: Any, info: RunInfo, effects: Sequence[tuple[int, Effect]]) -> None:
        if not effects:
            return
        rows = [
            {
                **_common(info, ledger_id, effect),
                "assignee_id": effect.row["assignee_id"],
                "assignee_role": effect.row["assignee_role"],
                "queue": effect.row.get("queue"),
                "kind": effect.row["kind"],
                "reason": effect.row["reason"],
                "title": effect.row["title"],
                "body": effect.row.get("body"),
                "checklist": effect.row.get("checklist"),
                "priority": effect.row["priority"],
                "due_at": effect.row["due_at"],
                "status": "open",
                "escalation_level": 0,
            }
            for ledger_id, effect in effects
        ]
        # an open task for the same customer, kind and reason wins (partial unique index)
        self._task_rows.insert_many(conn, rows)

    def _tags(self, conn: Any, info: RunInfo, effects: Sequence[Effect]) -> None:
        """Tag adds and removes in their order: each run of one operation is one statement."""
        for op, group in itertools.groupby(effects, key=lambda e: e.row["op"]):
            items = list(group)
            if op == "add":
                rows = [
                    {
                        "customer_id": e.customer_id,
                        "tag": e.row["tag"],
                        "playbook_id": info.playbook_id,
                        "set_at": info.now_utc,
                    }
                    for e in items
                ]
                conn.execute(self._insert(engine_tags).on_conflict_do_nothing(), rows)
            else:
                conn.execute(
                    delete(engine_tags).where(
                        engine_tags.c.customer_id == bindparam("cid"),
                        engine_tags.c.tag == bindparam("t"),
                    ),
                    [{"cid": e.customer_id, "t": e.row["tag"]} for e in items],
                )


def _common(info: RunInfo, ledger_id: int, effect: Effect) -> dict[str, Any]:
    return {
        "ledger_id": ledger_id,
        "action_index": effect.action_index,
        "playbook_id": info.playbook_id,
        "customer_id": effect.customer_id,
        "created_at": info.now_utc,
    }


def _window(d: Decision, info: RunInfo) -> str:
    return d.window or info.window
