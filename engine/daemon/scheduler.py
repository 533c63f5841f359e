"""The scheduler daemon: every enabled playbook on its schedule, unattended, for months.

APScheduler 3.x (a :class:`BackgroundScheduler`) is the clock: one job per playbook fires at
its slots (:class:`~engine.daemon.timesource.SlotTrigger`), and interval jobs reload playbooks,
renew
leases, sweep, publish metrics and run the dispatcher. What a wake-up *does* is decided from
the database, not from APScheduler's memory, so nothing depends on the process surviving:

- **Due slots** of a playbook are those after its watermark (the latest slot anyone claimed or
  recorded, or the moment it was enabled) up to now. Each is claimed before it runs
  (:mod:`engine.store.claims`); only the daemon whose claim lands executes it.
- **Misfires are explicit.** A slot up to ``grace`` late runs (once: the claim); an older one
  is recorded as ``missed``. So a daemon starting after downtime catches up what is still
  useful and reports the rest; APScheduler's own grace is unlimited and only wakes us.
- **Crash safety.** A killed daemon's claim lapses with its lease and is resumed by whichever
  daemon comes next; the ledger makes the resumed run do only what is left.
- **Graceful stop.** SIGTERM/SIGINT set :attr:`Daemon.stopping`; the batch being written
  commits, the next one is not started, the claim is marked ``interrupted`` and resumed at once
  by the next daemon.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, func, insert, select, update

from engine.conditions.quality import SharedIssues
from engine.core.clock import Clock, local_naive, utc_naive, utc_now
from engine.core.dictionary import DataDictionary
from engine.core.errors import EngineError
from engine.core.observability import DEAD_LETTER_STATUSES, LOGGER, Metrics, error_text, event
from engine.core.settings import Settings
from engine.daemon.reload import Changes, PlaybookFolder, Version
from engine.daemon.timesource import SlotTrigger, TimeSource
from engine.delivery.tasklist import escalate_overdue
from engine.events.host import EventHost
from engine.execution.executor import Executor
from engine.execution.sinks import Decision, RunInfo, StoreSink
from engine.playbook.model import cron_of
from engine.policy.watch import PolicyWatch
from engine.rendering.renderer import Renderer
from engine.store import claims
from engine.store.models import daemons, outbox, runs, tasks
from engine.triggers.schedule import slot_key, slots_between

_KEPT_PASSES = 4  # slots whose shared data-issue counts a daemon keeps

Dispatch = Callable[[dt.datetime], Mapping[str, int]]
"""One dispatcher round at a (wall-clock) moment: claim a batch of due outbox rows, deliver
them, and return the counts; ``claimed`` 0 means nothing was due. The daemon calls it again at
once while rows keep coming, so a backlog drains without waiting for the next interval.
:meth:`engine.delivery.dispatcher.Dispatcher.run_once` is one
(``engine/commands/daemon.py`` wires it)."""


@dataclass(frozen=True)
class DaemonConfig:
    """How the daemon behaves; every value has an operational meaning (see README)."""

    grace: dt.timedelta = dt.timedelta(hours=1)  # a slot later than this is recorded missed
    lease: dt.timedelta = dt.timedelta(seconds=60)  # a silent daemon's claims lapse after this
    tick: float = 15.0  # seconds between sweeps for lapsed claims and missed wake-ups
    reload_interval: float = 2.0  # seconds between checks of playbooks/ and templates/
    workers: int = 2  # playbooks executed at the same time
    max_attempts: int = 3  # runs of a failing slot before it stays failed
    retry_delay: dt.timedelta = dt.timedelta(minutes=1)  # wait before retrying a failed slot
    dispatch_interval: float = 5.0
    escalate_interval: float = 300.0  # seconds between escalations of overdue tasks
    metrics_interval: float = 15.0
    metrics_file: Path | None = None
    metrics_port: int | None = None
    events: bool = True  # host the event playbooks (engine/events/host.py)
    event_interval: float = 1.0  # seconds between reads of newly stored events


class Interrupted(EngineError):
    """The daemon is stopping: the batch in hand was written, the rest is left for later."""


class InterruptibleSink(StoreSink):
    """The store sink, refusing to start a new batch once the daemon is stopping."""

    def __init__(self, engine: Engine, stopping: threading.Event) -> None:
        super().__init__(engine)
        self.stopping = stopping

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        if self.stopping.is_set():
            raise Interrupted("stopped between batches; the slot resumes on the next start")
        return super().write(info, decisions)


class Daemon:
    """One scheduler process. Create, :meth:`start`, and :meth:`stop` (or :meth:`serve`)."""

    def __init__(
        self,
        store: Engine,
        settings: Settings,
        dictionary: DataDictionary,
        *,
        config: DaemonConfig | None = None,
        time_source: TimeSource | None = None,
        dispatch: Dispatch | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dictionary = dictionary
        self.tz = settings.timezone
        self.config = config or DaemonConfig()
        self.time = time_source or TimeSource()
        self.dispatch = dispatch
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.log = logging.getLogger(LOGGER)
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self.events: EventHost | None = None
        if self.config.events:
            self.events = EventHost(
                store,
                settings,
                dictionary,
                owner=self.owner,
                clock=self.time.now,
                lease=self.config.lease,
                log=self.log,
            )

        self.policy = PolicyWatch(settings.policy_path)

        def make_executor(renderer: Renderer) -> Executor:
            return Executor(store, settings, dictionary, renderer, self.policy.current)

        self.folder = PlaybookFolder(settings, dictionary, make_executor)
        self._guard = threading.Lock()  # protects the three dicts below and folder swaps
        self._busy: dict[str, threading.Lock] = {}
        self._wanted: dict[str, bool] = {}
        self._active: dict[str, Version] = {}
        # per slot: the data-issue counts the playbooks due in it share (see _shared)
        self._passes: dict[str, SharedIssues] = {}
        self.scheduler = BackgroundScheduler(
            timezone=self.tz,
            executors={
                "default": ThreadPoolExecutor(4),
                "runs": ThreadPoolExecutor(self.config.workers),
                "dispatch": ThreadPoolExecutor(1),
                "events": ThreadPoolExecutor(1),
            },
            # APScheduler only wakes us; lateness and catch-up are decided from the claims
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        # a broken deployment file (the contact policy) stops the start with one clear error,
        # instead of every reload failing quietly later
        self.policy.load()
        self.folder.make_executor(Renderer(self.settings.templates_dir, self.dictionary))
        now = utc_now()
        with self.store.begin() as conn:
            conn.execute(
                insert(daemons).values(
                    id=self.owner,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                    state={},
                )
            )
        self.reload(initial=True)
        cfg = self.config
        add = self.scheduler.add_job
        add(self.reload, "interval", seconds=cfg.reload_interval, id="reload")
        add(self.sweep, "interval", seconds=cfg.tick, id="sweep")
        add(self.heartbeat, "interval", seconds=self._heartbeat_every(), id="heartbeat")
        add(self.publish_metrics, "interval", seconds=cfg.metrics_interval, id="metrics")
        add(self.escalate, "interval", seconds=cfg.escalate_interval, id="escalate")
        if self.events is not None:
            add(
                self.events.cycle,
                "interval",
                seconds=cfg.event_interval,
                id="events",
                executor="events",
                next_run_time=dt.datetime.now(dt.UTC),
            )
        if self.dispatch is not None:
            add(
                self.dispatch_once,
                "interval",
                seconds=cfg.dispatch_interval,
                id="dispatch",
                executor="dispatch",
            )
        if cfg.metrics_port is not None:
            port = self.metrics.serve(cfg.metrics_port)
            event(self.log, "metrics.serving", url=f"http://127.0.0.1:{port}/metrics")
        self.scheduler.start()
        self.sweep()  # catch up (or record as missed) what fell due while no daemon ran
        event(
            self.log,
            "daemon.started",
            owner=self.owner,
            playbooks=sorted(self._active),
            grace_seconds=int(cfg.grace.total_seconds()),
            clock="wall" if self.time.is_wall else f"rehearsal x{self.time.speed:g}",
            dispatcher=self.dispatch is not None,
        )

    def stop(self) -> None:
        """Finish the batch in hand, leave the rest of the slot to the next daemon, and stop."""
        event(self.log, "daemon.stopping", owner=self.owner)
        self.stopping.set()
        if self.events is not None:
            self.events.stop()
        self.scheduler.shutdown(wait=True)
        try:
            with self.store.begin() as conn:
                conn.execute(
                    update(daemons)
                    .where(daemons.c.id == self.owner)
                    .values(stopped_at=utc_now(), heartbeat_at=utc_now())
                )
            self.publish_metrics()
        finally:
            self.metrics.close()
        event(self.log, "daemon.stopped", owner=self.owner)

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (by a signal handler), then stop gracefully."""
        self.start()
        stop.wait()
        self.stop()

    def _heartbeat_every(self) -> float:
        return max(0.2, self.config.lease.total_seconds() / 3)

    # --- reload ------------------------------------------------------------------------------

    def reload(self, initial: bool = False) -> Changes | None:
        """Apply what changed under playbooks/ and templates/ (everything, on start)."""
        if self.stopping.is_set():
            return None
        policy_changed = self._reload_policy()
        before = self.folder.state()
        try:
            changes = self.folder.poll()
            if changes is not None:
                self._record_schedules(changes, initial)
        except Exception as exc:  # an unreadable folder or a database hiccup: try again later
            self.folder.restore(before)
            event(self.log, "reload.error", logging.ERROR, error=error_text(exc))
            return None
        if changes is None:
            if policy_changed:
                self._save_state()
            return None
        for version in changes.replaced:
            event(
                self.log,
                "playbook.reloaded",
                playbook=version.id,
                content_hash=version.playbook.content_hash[:12],
            )
        for problem in changes.problems:
            self.metrics.reload_failures.inc()
            for d in problem.diagnostics:
                event(
                    self.log,
                    "reload.invalid",
                    logging.ERROR,
                    file=d.file,
                    line=d.line,
                    col=d.col,
                    code=d.code,
                    message=d.message,
                )
            if problem.kept is not None:
                event(
                    self.log,
                    "reload.kept_last_good",
                    logging.WARNING,
                    file=problem.file,
                    playbook=problem.kept.id,
                    content_hash=problem.kept.playbook.content_hash[:12],
                )
        self._reschedule(changes)
        if self.events is not None:
            self.events.offer([(v.playbook, v.executor) for v in self.folder.active().values()])
        self.metrics.invalid_files.set(len(changes.problems))
        self.metrics.active.set(len(self._active))
        self._save_state()
        return changes

    def _reload_policy(self) -> bool:
        """Apply an edit of config/policy.yaml to every loaded version (validated first; an
        invalid edit keeps the last good policy, is logged and shown by ``status``)."""
        had_problem = self.policy.problem
        try:
            policy = self.policy.poll()
        except Exception as exc:  # unreadable now: keep what runs, try again next time
            event(self.log, "policy.error", logging.ERROR, error=error_text(exc))
            return False
        if policy is not None:
            for version in self.folder.versions.values():
                version.executor.policy = policy
            event(self.log, "policy.reloaded", file=str(self.settings.policy_path))
            return True
        problem = self.policy.problem
        if problem is not None and problem != had_problem:
            self.metrics.reload_failures.inc()
            event(
                self.log,
                "policy.invalid",
                logging.ERROR,
                where=problem.where,
                code=problem.code,
                message=problem.message,
            )
            event(self.log, "policy.kept_last_good", logging.WARNING)
            return True
        return False

    def _record_schedules(self, changes: Changes, initial: bool) -> None:
        """Note in the store since when each playbook is enabled, and which ones stopped."""
        now = self.time.now()
        with self.store.begin() as conn:
            for version in changes.started:
                cron = cron_of(version.playbook)
                if cron is None:
                    continue
                since = claims.mark_enabled(
                    conn, version.id, since=utc_naive(now), cron=cron, now=utc_now()
                )
                event(
                    self.log,
                    "playbook.scheduled",
                    playbook=version.id,
                    schedule=cron,
                    content_hash=version.playbook.content_hash[:12],
                    enabled_since=since.isoformat(timespec="seconds"),
                )
            for pid, why in changes.stopped:
                claims.mark_disabled(conn, pid, utc_now())
                event(self.log, "playbook.stopped", playbook=pid, reason=why)
            if initial and not changes.problems:
                # playbooks deleted while no daemon ran: a later comeback starts afresh
                active = set(self.folder.active())
                for pid in claims.known_enabled(conn) - active:
                    claims.mark_disabled(conn, pid, utc_now())

    def _reschedule(self, changes: Changes) -> None:
        active = {
            pid: v for pid, v in self.folder.active().items() if cron_of(v.playbook) is not None
        }
        with self._guard:
            self._active = active
        for pid, _why in changes.stopped:
            if self.scheduler.get_job(f"playbook:{pid}") is not None:
                self.scheduler.remove_job(f"playbook:{pid}")
        for version in changes.started:
            cron = cron_of(version.playbook)
            if cron is None:
                continue
            self.scheduler.add_job(
                self.reconcile,
                SlotTrigger(cron, self.tz, self.time),
                args=[version.id],
                id=f"playbook:{version.id}",
                executor="runs",
                replace_existing=True,
                max_instances=4,  # a wake-up while the playbook runs just flags more work
            )
            self.wake(version.id)

    def _save_state(self) -> None:
        state = {
            "playbooks": {
                pid: {
                    "file": v.file,
                    "content_hash": v.playbook.content_hash,
                    "schedule": cron_of(v.playbook),
                    "kept_last_good": v.file in self.folder.problems,
                }
                for pid, v in sorted(self._active.items())
            },
            "reload_errors": [
                {
                    "file": d.file,
                    "line": d.line,
                    "col": d.col,
                    "code": d.code,
                    "message": d.message,
                    "kept": p.kept.id if p.kept is not None else None,
                }
                for p in self.folder.problems.values()
                for d in p.diagnostics
            ],
            "reloaded_at": utc_now().isoformat(timespec="seconds"),
            "grace_seconds": int(self.config.grace.total_seconds()),
            "clock": "wall" if self.time.is_wall else f"rehearsal x{self.time.speed:g}",
            "heartbeat_seconds": self._heartbeat_every(),
            "dispatcher": self.dispatch is not None,
            "events": self.events.state() if self.events is not None else None,
            "policy_error": self.policy.problem.as_dict() if self.policy.problem else None,
        }
        try:
            with self.store.begin() as conn:
                conn.execute(update(daemons).where(daemons.c.id == self.owner).values(state=state))
        except Exception as exc:  # status shows older news until the next reload
            event(self.log, "state.error", logging.ERROR, error=error_text(exc))

    # --- slots -------------------------------------------------------------------------------

    def wake(self, playbook_id: str) -> None:
        """Ask for a reconcile of one playbook soon, without piling up threads."""
        if self.stopping.is_set():
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
        with self._guard:
            self._wanted[playbook_id] = True
            busy = self._busy.setdefault(playbook_id, threading.Lock())
        while not self.stopping.is_set():
            if not busy.acquire(blocking=False):
                return  # the thread holding it sees the flag before it lets go
            try:
                while not self.stopping.is_set():
                    with self._guard:
                        if not self._wanted.get(playbook_id):
                            break
                        self._wanted[playbook_id] = False
                    try:
                        while not self.stopping.is_set() and self._step(playbook_id):
                            pass
                    except Exception as exc:  # e.g. the database is down: retry next tick
                        event(
                            self.log,
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
        """Claim and run one due slot of a playbook; False when there is nothing to do."""
        with self._guard:
            version = self._active.get(playbook_id)
        if version is None:
            return False
        cron = cron_of(version.playbook)
        assert cron is not None
        cfg = self.config
        wall = utc_now()
        local_now = local_naive(self.time.now(), self.tz)
        chash = version.playbook.content_hash
        with self.store.begin() as conn:
            for claim in claims.resumable(
                conn, playbook_id, wall, cfg.max_attempts, wall - cfg.retry_delay
            ):
                slot = dt.datetime.fromisoformat(claim.slot)
                if local_now - slot > cfg.grace:
                    if claims.give_up(conn, claim, wall, self._late(slot)):
                        self._missed(playbook_id, [claim.slot])
                    continue
                if not claims.take_over(
                    conn,
                    claim,
                    owner=self.owner,
                    content_hash=chash,
                    now=wall,
                    lease=cfg.lease,
                ):
                    return False  # another daemon resumed it
                event(
                    self.log,
                    "claim.resumed",
                    playbook=playbook_id,
                    slot=claim.slot,
                    previous_owner=claim.owner,
                    previous_status=claim.status,
                    attempt=claim.attempts + 1,
                )
                target = (claim.id, slot)
                break
            else:
                if claims.held_elsewhere(conn, playbook_id, self.owner, wall):
                    return False
                since = claims.enabled_since(conn, playbook_id)
                if since is None:  # disabled by another daemon's reload a moment ago
                    return False
                start = local_naive(since.replace(tzinfo=dt.UTC), self.tz)
                last = claims.last_slot(conn, playbook_id)
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
                        owner=self.owner,
                        now=wall,
                        reason=self._late(late[-1]),
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
                    owner=self.owner,
                    content_hash=chash,
                    now=wall,
                    lease=cfg.lease,
                )
                if claim_id is None:
                    return False  # another daemon won this slot and carries on from it
                target = (claim_id, slot)
        self._execute(version, *target)
        return True

    def _utc(self, slot: dt.datetime) -> dt.datetime:
        return utc_naive(slot.replace(tzinfo=self.tz))

    def _late(self, slot: dt.datetime) -> str:
        grace = int(self.config.grace.total_seconds())
        return f"not run within the grace period of {grace}s after {slot_key(slot)}"

    def _missed(self, playbook_id: str, slots: list[str]) -> None:
        self.metrics.missed.labels(playbook_id).inc(len(slots))
        event(
            self.log,
            "run.missed",
            logging.WARNING,
            playbook=playbook_id,
            slots=len(slots),
            first=slots[0],
            last=slots[-1],
        )

    def _execute(self, version: Version, claim_id: int, slot: dt.datetime) -> None:
        playbook = version.playbook
        at = slot.replace(tzinfo=self.tz)
        lag = (self.time.now() - at).total_seconds()
        key = slot_key(slot)
        event(
            self.log,
            "run.start",
            playbook=playbook.id,
            slot=key,
            lag_seconds=round(lag, 3),
            owner=self.owner,
        )
        sink = InterruptibleSink(self.store, self.stopping)
        started = time.monotonic()
        run_id: int | None = None
        error: str | None = None
        try:
            clock = Clock.at(at, self.tz)
            outcome = version.executor.execute(playbook, clock, sink, shared=self._shared(key))
            run_id, status = outcome.run_id, claims.DONE
        except Interrupted as exc:
            status, error = claims.INTERRUPTED, exc.message
        except Exception as exc:
            status, error = claims.FAILED, error_text(exc)
        duration_ms = int((time.monotonic() - started) * 1000)
        if run_id is None:
            run_id = self._last_run(playbook.id, key)
        with self.store.begin() as conn:
            kept = claims.finish(
                conn,
                claim_id,
                owner=self.owner,
                status=status,
                now=utc_now(),
                run_id=run_id,
                duration_ms=duration_ms,
                lag_ms=int(lag * 1000),
                error=error,
            )
        self.metrics.runs.labels(playbook.id, status).inc()
        self.metrics.lag.labels(playbook.id).set(lag)
        fields: dict[str, Any] = {"playbook": playbook.id, "slot": key, "status": status}
        fields.update(run_id=run_id, duration_ms=duration_ms)
        if status == claims.DONE:
            self.metrics.last_success.labels(playbook.id).set(time.time())
            fields.update(
                matched=outcome.matched_count,
                acted=outcome.acted,
                actions=dict(outcome.effects),
                suppressed=dict(outcome.suppressed),
            )
        if error:
            fields["error"] = error
        level = logging.INFO if status == claims.DONE else logging.WARNING
        event(self.log, "run.finished", level, **fields)
        if not kept:
            event(self.log, "claim.lost", logging.WARNING, playbook=playbook.id, slot=key)

    def _shared(self, slot: str) -> SharedIssues:
        """The data-issue counts of one slot, shared by every playbook due in it: the first
        to run counts the fields all active playbooks test, in one scan of the customer table,
        instead of a scan per playbook. A few recent slots are kept (a catch-up runs several
        at once); a later slot counts afresh, so an import between slots is seen."""
        with self._guard:
            shared = self._passes.get(slot)
            if shared is None:
                audiences = (v.playbook.audience for v in self._active.values())
                shared = self._passes[slot] = SharedIssues.of(self.dictionary, audiences)
                for old in sorted(self._passes)[:-_KEPT_PASSES]:
                    del self._passes[old]
            return shared

    def _last_run(self, playbook_id: str, window: str) -> int | None:
        with self.store.connect() as conn:
            value = conn.execute(
                select(func.max(runs.c.id)).where(
                    runs.c.playbook_id == playbook_id, runs.c.window == window
                )
            ).scalar()
        return None if value is None else int(value)

    # --- housekeeping ------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew this daemon's leases; a daemon that stops calling this loses its claims."""
        try:
            now = utc_now()
            with self.store.begin() as conn:
                claims.renew(conn, self.owner, now, self.config.lease)
                conn.execute(
                    update(daemons).where(daemons.c.id == self.owner).values(heartbeat_at=now)
                )
            self.metrics.heartbeat.set(time.time())
        except Exception as exc:
            event(self.log, "heartbeat.error", logging.ERROR, error=error_text(exc))

    def publish_metrics(self) -> None:
        """Refresh the gauges read from the store and write the text file, if one is set."""
        try:
            with self.store.connect() as conn:

                def count(query: Any) -> int:
                    return int(conn.execute(query).scalar_one())

                self.metrics.outbox_pending.set(
                    count(select(func.count()).where(outbox.c.status == "pending"))
                )
                self.metrics.dead_letters.set(
                    count(select(func.count()).where(outbox.c.status.in_(DEAD_LETTER_STATUSES)))
                )
                self.metrics.tasks_open.set(
                    count(select(func.count()).where(tasks.c.status == "open"))
                )
            if self.config.metrics_file is not None:
                self.config.metrics_file.parent.mkdir(parents=True, exist_ok=True)
                self.metrics.write_textfile(str(self.config.metrics_file))
        except Exception as exc:
            event(self.log, "metrics.error", logging.ERROR, error=error_text(exc))

    def escalate(self) -> int:
        """Give tasks overdue by ``tasks.escalate_after`` to the next role up, as of the
        schedule clock. The ladder is config/policy.yaml as the policy watch last loaded it:
        an edit applies without a restart, a broken one keeps the last good ladder. Several
        daemons may do it at once: each level of a task has a unique key, so it is written
        once. Returns the escalation tasks this call created."""
        if self.stopping.is_set():
            return 0
        try:
            current = self.policy.current or self.policy.load()
            created = escalate_overdue(self.store, current.tasks, self.time.now())
        except Exception as exc:  # a locked store or a broken policy edit: try next time
            event(self.log, "escalate.error", logging.ERROR, error=error_text(exc))
            return 0
        if created:
            event(self.log, "tasks.escalated", created=created)
        return created

    def dispatch_once(self) -> None:
        """Dispatcher rounds until nothing is due (or the daemon stops); failures are logged
        and counted, and the next interval tries again."""
        if self.dispatch is None:
            return
        total: Counter[str] = Counter()
        try:
            while not self.stopping.is_set():
                counts = self.dispatch(dt.datetime.now(dt.UTC))
                total.update(counts)
                if not counts.get("claimed"):
                    break
        except Exception as exc:
            self.metrics.dispatch_errors.inc()
            event(self.log, "dispatch.error", logging.ERROR, error=error_text(exc))
        if total.get("claimed"):
            event(self.log, "dispatch.round", **{k: v for k, v in sorted(total.items()) if v})
