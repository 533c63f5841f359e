"""Slot reconciliation: which slots of a playbook are due or missed, claiming and running them.

APScheduler only wakes a playbook (:meth:`SlotRunner.reconcile`). What a wake-up *does* is
decided from the database, not from APScheduler's memory, so nothing depends on the process
surviving:

- **Due slots** of a playbook are those after its watermark (the latest slot anyone claimed or
  recorded, or the moment it was enabled) up to now. Each is claimed before it runs
  (:mod:`engine.store.claims`); only the daemon whose claim lands executes it.
- **Misfires are explicit.** A slot up to ``grace`` late runs (once: the claim); an older one
  is recorded as ``missed``. So a daemon starting after downtime catches up what is still
  useful and reports the rest; APScheduler's own grace is unlimited and only wakes us.
- **Crash safety.** A killed daemon's claim lapses with its lease and is resumed by whichever
  daemon comes next; the ledger makes the resumed run do only what is left.
- **Partitions.** A daemon started with ``--partition k/K`` claims each slot per partition:
  its own k first, then any partition no live daemon owns (:mod:`engine.daemon.partitions`),
  and runs it over that partition's customers with its share of ``max_per_run``.
- **Graceful stop.** Once the daemon is stopping, :class:`InterruptibleSink` lets the batch
  being written commit and refuses the next one; the claim is marked ``interrupted`` and
  resumed at once by the next daemon.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import Engine, func, select

from engine.conditions.quality import SharedIssues
from engine.core.clock import Clock, local_naive, utc_naive, utc_now
from engine.core.errors import EngineError
from engine.core.observability import error_text, event
from engine.daemon.context import Context
from engine.daemon.folder import Version
from engine.daemon.partitions import served
from engine.execution.sinks import Decision, RunInfo, StoreSink
from engine.playbook.model import cron_of
from engine.store import claims
from engine.store.models import runs
from engine.store.partitions import Partition
from engine.triggers.schedule import slot_key, slots_between

_KEPT_PASSES = 4  # slots whose shared data-issue counts a daemon keeps


class Interrupted(EngineError):
    """The daemon is stopping: the batch in hand was written, the rest is left for later."""


class InterruptibleSink(StoreSink):
    """The store sink, refusing to start a new batch once the daemon is stopping."""

    def __init__(
        self, engine: Engine, stopping: threading.Event, claim_id: int | None = None
    ) -> None:
        super().__init__(engine)
        self.stopping = stopping
        self.claim_id = claim_id
        self.run_id: int | None = None  # the runs row this attempt opened

    def start(self, info: RunInfo) -> None:
        super().start(info)
        self.run_id = info.run_id
        if self.claim_id is not None and info.run_id is not None:
            # the claim names its run at once: a takeover closes that run and no other
            # partition's run of the same window (claims.close_abandoned_runs)
            with self.engine.begin() as conn:
                claims.note_run(conn, self.claim_id, info.run_id)

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        if self.stopping.is_set():
            raise Interrupted("stopped between batches; the slot resumes on the next start")
        return super().write(info, decisions)


class SlotRunner:
    """The slots of the scheduled playbooks a daemon runs: woken by APScheduler jobs (added to
    ``scheduler``), decided from the claims in the store, one thread per playbook at a time."""

    def __init__(self, ctx: Context, scheduler: BaseScheduler) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self._guard = threading.Lock()  # protects the three dicts below and folder swaps
        self._busy: dict[str, threading.Lock] = {}
        self._wanted: dict[str, bool] = {}
        self._active: dict[str, Version] = {}
        # per slot: the data-issue counts the playbooks due in it share (see _shared)
        self._passes: dict[str, SharedIssues] = {}

    @property
    def active(self) -> dict[str, Version]:
        """The scheduled playbooks by id, as the last reload left them (replaced, not edited)."""
        return self._active

    def set_active(self, active: dict[str, Version]) -> None:
        """Swap in the scheduled playbooks of a reload."""
        with self._guard:
            self._active = active

    def wake(self, playbook_id: str) -> None:
        """Ask for a reconcile of one playbook soon, without piling up threads."""
        if self.ctx.stopping.is_set():
            return
        with self._guard:
            self._wanted[playbook_id] = True
            busy = self._busy.setdefault(playbook_id, threading.Lock()).locked()
        if not busy:
            self.scheduler.add_job(
                self.reconcile, args=[playbook_id], executor="runs", misfire_grace_time=None
            )

    def sweep(self) -> None:
        """Wake every playbook: resumes lapsed claims and anything a wake-up missed."""
        with self._guard:
            ids = sorted(self._active)
        for pid in ids:
            self.wake(pid)

    def reconcile(self, playbook_id: str) -> None:
        """Run every due slot of one playbook, oldest first, until none is left."""
        stopping = self.ctx.stopping
        with self._guard:
            self._wanted[playbook_id] = True
            busy = self._busy.setdefault(playbook_id, threading.Lock())
        while not stopping.is_set():
            if not busy.acquire(blocking=False):
                return  # the thread holding it sees the flag before it lets go
            try:
                while not stopping.is_set():
                    with self._guard:
                        if not self._wanted.get(playbook_id):
                            break
                        self._wanted[playbook_id] = False
                    try:
                        while not stopping.is_set() and self._step(playbook_id):
                            pass
                    except Exception as exc:  # e.g. the database is down: retry next tick
                        event(
                            self.ctx.log,
                            "reconcile.error",
                            logging.ERROR,
                            playbook=playbook_id,
                            error=error_text(exc),
                        )
                        return
            finally:
                busy.release()
            with self._guard:
                if not self._wanted.get(playbook_id):
                    return

    def _step(self, playbook_id: str) -> bool:
        """Claim and run one due slot of a playbook, in the first partition this daemon
        serves that has one (unpartitioned: partition 0); False when there is nothing to do."""
        with self.ctx.store.connect() as conn:
            parts = served(conn, self.ctx, utc_now())
        return any(self._step_in(playbook_id, part) for part in parts)

    def _step_in(self, playbook_id: str, part: int) -> bool:
        """Claim and run one due slot of a playbook in one partition."""
        with self._guard:
            version = self._active.get(playbook_id)
        if version is None:
            return False
        cron = cron_of(version.playbook)
        assert cron is not None
        ctx = self.ctx
        cfg = ctx.config
        wall = utc_now()
        local_now = local_naive(ctx.time.now(), ctx.tz)
        chash = version.playbook.content_hash
        with ctx.store.begin() as conn:
            for claim in claims.resumable(
                conn, playbook_id, wall, cfg.max_attempts, wall - cfg.retry_delay, part
            ):
                slot = dt.datetime.fromisoformat(claim.slot)
                if local_now - slot > cfg.grace:
                    if claims.give_up(conn, claim, wall, self._late(slot)):
                        self._missed(playbook_id, [claim.slot])
                    continue
                if not claims.take_over(
                    conn,
                    claim,
                    owner=ctx.owner,
                    content_hash=chash,
                    now=wall,
                    lease=cfg.lease,
                ):
                    return False  # another daemon resumed it
                event(
                    ctx.log,
                    "claim.resumed",
                    playbook=playbook_id,
                    slot=claim.slot,
                    previous_owner=claim.owner,
                    previous_status=claim.status,
                    attempt=claim.attempts + 1,
                    **self._part_field(part),
                )
                target = (claim.id, slot)
                break
            else:
                if claims.held_elsewhere(conn, playbook_id, ctx.owner, wall, part):
                    return False
                since = claims.enabled_since(conn, playbook_id)
                if since is None:  # disabled by another daemon's reload a moment ago
                    return False
                start = local_naive(since.replace(tzinfo=dt.UTC), ctx.tz)
                last = claims.last_slot(conn, playbook_id, part)
                if last is not None:
                    start = max(start, dt.datetime.fromisoformat(last))
                due = list(slots_between(cron, start, local_now))
                late = [s for s in due if local_now - s > cfg.grace]
                if late:
                    keys = [(slot_key(s), self._utc(s)) for s in late]
                    n = claims.record_missed(
                        conn,
                        playbook_id=playbook_id,
                        slots=keys,
                        content_hash=chash,
                        owner=ctx.owner,
                        now=wall,
                        reason=self._late(late[-1]),
                        partition=part,
                    )
                    if n:
                        self._missed(playbook_id, [k for k, _ in keys])
                    return True
                if not due:
                    return False
                slot = due[0]
                claim_id = claims.try_claim(
                    conn,
                    playbook_id=playbook_id,
                    slot=slot_key(slot),
                    due_at=self._utc(slot),
                    owner=ctx.owner,
                    content_hash=chash,
                    now=wall,
                    lease=cfg.lease,
                    partition=part,
                )
                if claim_id is None:
                    return False  # another daemon won this slot and carries on from it
                target = (claim_id, slot)
        self._execute(version, *target, part)
        return True

    def _partition(self, part: int) -> Partition | None:
        """Partition ``part`` of this daemon's scheme; None for 0 (unpartitioned)."""
        mine = self.ctx.config.partition
        return Partition(part, mine.count) if part and mine is not None else None

    def _part_field(self, part: int) -> dict[str, Any]:
        """The log field naming a partition, only for partitioned daemons."""
        partition = self._partition(part)
        return {"partition": partition.label} if partition is not None else {}

    def _utc(self, slot: dt.datetime) -> dt.datetime:
        return utc_naive(slot.replace(tzinfo=self.ctx.tz))

    def _late(self, slot: dt.datetime) -> str:
        grace = int(self.ctx.config.grace.total_seconds())
        return f"not run within the grace period of {grace}s after {slot_key(slot)}"

    def _missed(self, playbook_id: str, slots: list[str]) -> None:
        self.ctx.metrics.missed.labels(playbook_id).inc(len(slots))
        event(
            self.ctx.log,
            "run.missed",
            logging.WARNING,
            playbook=playbook_id,
            slots=len(slots),
            first=slots[0],
            last=slots[-1],
        )

    def _execute(self, version: Version, claim_id: int, slot: dt.datetime, part: int) -> None:
        ctx = self.ctx
        metrics = ctx.metrics
        playbook = version.playbook
        at = slot.replace(tzinfo=ctx.tz)
        lag = (ctx.time.now() - at).total_seconds()
        key = slot_key(slot)
        event(
            ctx.log,
            "run.start",
            playbook=playbook.id,
            slot=key,
            lag_seconds=round(lag, 3),
            owner=ctx.owner,
            **self._part_field(part),
        )
        sink = InterruptibleSink(ctx.store, ctx.stopping, claim_id)
        started = time.monotonic()
        run_id: int | None = None
        error: str | None = None
        try:
            clock = Clock.at(at, ctx.tz)
            outcome = version.executor.execute(
                playbook, clock, sink, shared=self._shared(key), partition=self._partition(part)
            )
            run_id, status = outcome.run_id, claims.DONE
        except Interrupted as exc:
            status, error = claims.INTERRUPTED, exc.message
        except Exception as exc:
            status, error = claims.FAILED, error_text(exc)
        duration_ms = int((time.monotonic() - started) * 1000)
        if run_id is None:
            # this attempt's own run: other partitions' runs share the window
            run_id = sink.run_id if sink.run_id is not None else self._last_run(playbook.id, key)
        with ctx.store.begin() as conn:
            kept = claims.finish(
                conn,
                claim_id,
                owner=ctx.owner,
                status=status,
                now=utc_now(),
                run_id=run_id,
                duration_ms=duration_ms,
                lag_ms=int(lag * 1000),
                error=error,
            )
        metrics.runs.labels(playbook.id, status).inc()
        metrics.lag.labels(playbook.id).set(lag)
        fields: dict[str, Any] = {"playbook": playbook.id, "slot": key, "status": status}
        fields.update(self._part_field(part))
        fields.update(run_id=run_id, duration_ms=duration_ms)
        if status == claims.DONE and outcome.estimated_days:
            decision = "held" if outcome.held_for_estimate else "ran"
            metrics.calendar_estimated.labels(playbook.id, decision).inc()
            event(
                ctx.log,
                "run.calendar_estimated",
                logging.WARNING,
                playbook=playbook.id,
                slot=key,
                decision=decision,
                estimated_days=[d.isoformat() for d in outcome.estimated_days],
                hint="type the year's holiday notice into config/calendar/CN-YYYY.yaml",
            )
        if status == claims.DONE:
            metrics.last_success.labels(playbook.id).set(time.time())
            fields.update(
                matched=outcome.matched_count,
                acted=outcome.acted,
                actions=dict(outcome.effects),
                suppressed=dict(outcome.suppressed),
            )
        if error:
            fields["error"] = error
        level = logging.INFO if status == claims.DONE else logging.WARNING
        event(ctx.log, "run.finished", level, **fields)
        if not kept:
            event(ctx.log, "claim.lost", logging.WARNING, playbook=playbook.id, slot=key)

    def _shared(self, slot: str) -> SharedIssues:
        """The data-issue counts of one slot, shared by every playbook due in it: the first
        to run counts the fields all active playbooks test, in one scan of the customer table,
        instead of a scan per playbook. A few recent slots are kept (a catch-up runs several
        at once); a later slot counts afresh, so an import between slots is seen."""
        with self._guard:
            shared = self._passes.get(slot)
            if shared is None:
                audiences = (v.playbook.audience for v in self._active.values())
                shared = self._passes[slot] = SharedIssues.of(self.ctx.dictionary, audiences)
                for old in sorted(self._passes)[:-_KEPT_PASSES]:
                    del self._passes[old]
            return shared

    def _last_run(self, playbook_id: str, window: str) -> int | None:
        with self.ctx.store.connect() as conn:
            value = conn.execute(
                select(func.max(runs.c.id)).where(
                    runs.c.playbook_id == playbook_id, runs.c.window == window
                )
            ).scalar()
        return None if value is None else int(value)
