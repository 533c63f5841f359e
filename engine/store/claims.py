"""Run claims: how any number of daemons on one database run each schedule slot exactly once.

Before a slot executes, a daemon inserts its ``run_claims`` row (unique per playbook + slot)
with ``ON CONFLICT DO NOTHING … RETURNING``: only the daemon whose insert lands runs it. The
claim carries a lease the owner renews while it works; a daemon killed mid-run stops renewing,
and once the lease lapses another daemon (or the restarted one) takes the claim over with a
compare-and-set update and finishes the slot. Finishing twice is harmless: the action ledger
is unique per (playbook, customer, window), so a resumed run only does what is left.

**Partitions.** Daemons started with ``--partition k/K`` claim each slot once per partition
(``partition_no`` = k; 0 for an unpartitioned daemon): every function here takes the
partition, and a partition's slots run one after another like a playbook's, independent of
the other partitions' (see :mod:`engine.daemon.slots` for who claims which partition).

Every function takes a connection inside the caller's transaction and the wall-clock ``now``
(naive UTC), so the rules here are plain SQL that tests can drive step by step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.models import run_claims, runs, schedule_state

RUNNING = "running"
DONE = "done"
FAILED = "failed"
INTERRUPTED = "interrupted"  # stopped by SIGTERM/SIGINT between batches: resumed at once
MISSED = "missed"  # nobody ran it within the grace period: recorded, never silently dropped
STATUSES = (RUNNING, DONE, FAILED, INTERRUPTED, MISSED)


@dataclass(frozen=True)
class Claim:
    id: int
    playbook_id: str
    slot: str
    due_at: dt.datetime
    status: str
    owner: str | None
    lease_until: dt.datetime | None
    attempts: int
    partition: int = 0  # k of --partition k/K; 0: unpartitioned
    run_id: int | None = None  # the attempt's ``runs`` row, noted as it starts (note_run)


_UNIQUE = ["playbook_id", "slot", "partition_no"]  # uq_run_claims_slot


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _claim(row: Any) -> Claim:
    return Claim(
        id=row.id,
        playbook_id=row.playbook_id,
        slot=row.slot,
        due_at=row.due_at,
        status=row.status,
        owner=row.owner,
        lease_until=row.lease_until,
        attempts=row.attempts,
        partition=row.partition_no,
        run_id=row.run_id,
    )


def try_claim(
    conn: Connection,
    *,
    playbook_id: str,
    slot: str,
    due_at: dt.datetime,
    owner: str,
    content_hash: str,
    now: dt.datetime,
    lease: dt.timedelta,
    partition: int = 0,
) -> int | None:
    """Claim a slot (of one partition) nobody has claimed; the claim's id, or None when
    another daemon has it."""
    claim_id = conn.execute(
        _insert(conn)(run_claims)
        .values(
            playbook_id=playbook_id,
            slot=slot,
            due_at=due_at,
            status=RUNNING,
            owner=owner,
            lease_until=now + lease,
            attempts=1,
            content_hash=content_hash,
            claimed_at=now,
            partition_no=partition,
        )
        .on_conflict_do_nothing(index_elements=_UNIQUE)
        .returning(run_claims.c.id)
    ).scalar()
    return None if claim_id is None else int(claim_id)


def _resumable(now: dt.datetime, max_attempts: int, retry_before: dt.datetime) -> Any:
    """A claim a daemon may take: interrupted, abandoned (its lease lapsed), or failed before
    ``retry_before`` with attempts left."""
    return or_(
        run_claims.c.status == INTERRUPTED,
        and_(run_claims.c.status == RUNNING, run_claims.c.lease_until < now),
        and_(
            run_claims.c.status == FAILED,
            run_claims.c.attempts < max_attempts,
            run_claims.c.finished_at < retry_before,
        ),
    )


def resumable(
    conn: Connection,
    playbook_id: str,
    now: dt.datetime,
    max_attempts: int,
    retry_before: dt.datetime,
    partition: int = 0,
) -> list[Claim]:
    """Claims of a playbook (and partition) that should be (re)run, oldest slot first."""
    rows = conn.execute(
        select(run_claims)
        .where(
            run_claims.c.playbook_id == playbook_id,
            run_claims.c.partition_no == partition,
            _resumable(now, max_attempts, retry_before),
        )
        .order_by(run_claims.c.slot)
    )
    return [_claim(r) for r in rows]


def take_over(
    conn: Connection,
    claim: Claim,
    *,
    owner: str,
    content_hash: str,
    now: dt.datetime,
    lease: dt.timedelta,
) -> bool:
    """Compare-and-set: take a claim :func:`resumable` returned; False when another daemon
    changed it first (the status and attempt count it was read with no longer hold)."""
    result = conn.execute(
        update(run_claims)
        .where(
            run_claims.c.id == claim.id,
            run_claims.c.status == claim.status,
            run_claims.c.attempts == claim.attempts,
            or_(run_claims.c.status != RUNNING, run_claims.c.lease_until < now),
        )
        .values(
            status=RUNNING,
            owner=owner,
            lease_until=now + lease,
            attempts=run_claims.c.attempts + 1,
            content_hash=content_hash,
            claimed_at=now,
            finished_at=None,
            error=None,
        )
    )
    taken = result.rowcount == 1
    if taken and claim.status == RUNNING:
        close_abandoned_runs(conn, claim, now)
    return taken


ABANDONED = "abandoned: the process running it stopped before it finished (its lease lapsed)"


def close_abandoned_runs(conn: Connection, claim: Claim, now: dt.datetime) -> int:
    """Mark the ``runs`` rows a dead daemon left ``running`` for this claim's slot as failed,
    so no run stays "running" for ever; what it wrote stays (the ledger keeps it exactly
    once), the new attempt records a run of its own. A partition's claim closes only the run
    it noted (:func:`note_run`): the other partitions' runs of the slot share its window and
    may be running right now."""
    if claim.partition:
        if claim.run_id is None:
            return 0  # killed before its run started: nothing left running
        which = runs.c.id == claim.run_id
    else:
        which = and_(runs.c.playbook_id == claim.playbook_id, runs.c.window == claim.slot)
    result = conn.execute(
        update(runs)
        .where(which, runs.c.status == "running")
        .values(status="failed", finished_at=now, error=ABANDONED)
    )
    return int(result.rowcount)


def give_up(conn: Connection, claim: Claim, now: dt.datetime, reason: str) -> bool:
    """Record a resumable claim as missed: it is too late to finish it (compare-and-set)."""
    result = conn.execute(
        update(run_claims)
        .where(
            run_claims.c.id == claim.id,
            run_claims.c.status == claim.status,
            run_claims.c.attempts == claim.attempts,
        )
        .values(status=MISSED, lease_until=None, finished_at=now, error=reason)
    )
    given_up = result.rowcount == 1
    if given_up and claim.status == RUNNING:
        close_abandoned_runs(conn, claim, now)
    return given_up


def note_run(conn: Connection, claim_id: int, run_id: int) -> None:
    """Name the ``runs`` row an attempt opened, as it opens it: a takeover then closes that
    run alone (:func:`close_abandoned_runs`)."""
    conn.execute(update(run_claims).where(run_claims.c.id == claim_id).values(run_id=run_id))


def held_elsewhere(
    conn: Connection, playbook_id: str, owner: str, now: dt.datetime, partition: int = 0
) -> bool:
    """Whether another live daemon is running a slot of this playbook (and partition) now.

    Slots of one playbook run one after another, oldest first: cooldowns read what earlier
    slots wrote, so a daemon that finds a colleague busy with a playbook leaves it to them.
    """
    found = conn.execute(
        select(run_claims.c.id)
        .where(
            run_claims.c.playbook_id == playbook_id,
            run_claims.c.partition_no == partition,
            run_claims.c.status == RUNNING,
            run_claims.c.owner != owner,
            run_claims.c.lease_until >= now,
        )
        .limit(1)
    ).first()
    return found is not None


def renew(conn: Connection, owner: str, now: dt.datetime, lease: dt.timedelta) -> int:
    """Extend the lease of every claim this daemon is running; the number renewed."""
    result = conn.execute(
        update(run_claims)
        .where(run_claims.c.owner == owner, run_claims.c.status == RUNNING)
        .values(lease_until=now + lease)
    )
    return int(result.rowcount)


def finish(
    conn: Connection,
    claim_id: int,
    *,
    owner: str,
    status: str,
    now: dt.datetime,
    run_id: int | None,
    duration_ms: int,
    lag_ms: int | None,
    error: str | None,
) -> bool:
    """Record how a claimed slot ended; False if the claim was lost (lease lapsed, taken)."""
    result = conn.execute(
        update(run_claims)
        .where(
            run_claims.c.id == claim_id,
            run_claims.c.owner == owner,
            run_claims.c.status == RUNNING,
        )
        .values(
            status=status,
            lease_until=None,
            finished_at=now,
            run_id=run_id,
            duration_ms=duration_ms,
            lag_ms=lag_ms,
            error=error,
        )
    )
    return result.rowcount == 1


def record_missed(
    conn: Connection,
    *,
    playbook_id: str,
    slots: Sequence[tuple[str, dt.datetime]],
    content_hash: str,
    owner: str,
    now: dt.datetime,
    reason: str,
    partition: int = 0,
) -> int:
    """Record slots (of one partition) that will not run as 'missed' rows; how many were
    new."""
    if not slots:
        return 0
    rows = [
        {
            "playbook_id": playbook_id,
            "slot": key,
            "due_at": due_at,
            "status": MISSED,
            "owner": owner,
            "lease_until": None,
            "attempts": 0,
            "content_hash": content_hash,
            "claimed_at": now,
            "finished_at": now,
            "error": reason,
            "partition_no": partition,
        }
        for key, due_at in slots
    ]
    stmt = (
        _insert(conn)(run_claims)
        .on_conflict_do_nothing(index_elements=_UNIQUE)
        .returning(run_claims.c.id)  # rowcount of a multi-row insert is -1 on psycopg
    )
    inserted = 0
    for start in range(0, len(rows), 500):
        inserted += len(conn.execute(stmt, rows[start : start + 500]).all())
    return inserted


def last_slot(conn: Connection, playbook_id: str, partition: int = 0) -> str | None:
    """The latest slot of a playbook (and partition) anyone has claimed or recorded: the
    catch-up watermark."""
    value = conn.execute(
        select(func.max(run_claims.c.slot)).where(
            run_claims.c.playbook_id == playbook_id, run_claims.c.partition_no == partition
        )
    ).scalar()
    return None if value is None else str(value)


# --- since when a playbook has been enabled -------------------------------------------------


def enabled_since(conn: Connection, playbook_id: str) -> dt.datetime | None:
    value = conn.execute(
        select(schedule_state.c.enabled_since).where(schedule_state.c.playbook_id == playbook_id)
    ).scalar()
    return value if isinstance(value, dt.datetime) else None


def mark_enabled(
    conn: Connection, playbook_id: str, *, since: dt.datetime, cron: str, now: dt.datetime
) -> dt.datetime:
    """Note a playbook as enabled and return since when it counts as enabled (naive UTC).

    An earlier moment is kept while the playbook stays enabled on the same schedule, so slots
    missed while every daemon was down are caught up or reported on start. A playbook that is
    new, was disabled or deleted (``enabled_since`` emptied), or got a new schedule starts
    afresh at ``since``: no backlog is replayed.
    """
    row = conn.execute(
        select(schedule_state.c.enabled_since, schedule_state.c.cron).where(
            schedule_state.c.playbook_id == playbook_id
        )
    ).first()
    if row is None:
        conn.execute(
            _insert(conn)(schedule_state)
            .values(playbook_id=playbook_id, enabled_since=since, cron=cron, updated_at=now)
            .on_conflict_do_nothing(index_elements=["playbook_id"])
        )
        return enabled_since(conn, playbook_id) or since
    if row.enabled_since is not None and row.cron == cron:
        return row.enabled_since  # type: ignore[no-any-return]
    conn.execute(
        update(schedule_state)
        .where(schedule_state.c.playbook_id == playbook_id)
        .values(enabled_since=since, cron=cron, updated_at=now)
    )
    return since


def known_enabled(conn: Connection) -> set[str]:
    """Playbooks the schedule state counts as enabled."""
    query = select(schedule_state.c.playbook_id).where(schedule_state.c.enabled_since.is_not(None))
    return {str(r) for r in conn.execute(query).scalars()}


def mark_disabled(conn: Connection, playbook_id: str, now: dt.datetime) -> None:
    conn.execute(
        update(schedule_state)
        .where(schedule_state.c.playbook_id == playbook_id)
        .values(enabled_since=None, updated_at=now)
    )
