"""Applying hot reloads to a running daemon.

:class:`~engine.daemon.folder.PlaybookFolder` says what changed under ``playbooks/`` and
``templates/``, and :class:`~engine.policy.watch.PolicyWatch` whether config/policy.yaml did.
The :class:`Reloader` records each schedule change in the store (since when a playbook is
enabled, where its due slots start until one is claimed), adds or removes its APScheduler job,
hands the event playbooks to the event host, logs what was kept or rejected, and writes the
state ``status`` shows into this daemon's ``daemons`` row.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import update

from engine.core.clock import utc_naive, utc_now
from engine.core.observability import error_text, event
from engine.daemon.context import Context
from engine.daemon.folder import Changes, PlaybookFolder
from engine.daemon.partitions import partition_state
from engine.daemon.slots import SlotRunner
from engine.daemon.timesource import SlotTrigger
from engine.events.host import EventHost
from engine.governance.gate import CHANGED, NOT_APPROVED, PAUSED
from engine.playbook.model import cron_of
from engine.policy.watch import PolicyWatch
from engine.store import claims
from engine.store.models import daemons


class Reloader:
    """One daemon's reloads: ``folder`` and ``policy`` polled, ``slots`` and ``scheduler``
    told what runs now; ``dispatcher`` only says, in the saved state, whether one runs."""

    def __init__(
        self,
        ctx: Context,
        *,
        folder: PlaybookFolder,
        policy: PolicyWatch,
        slots: SlotRunner,
        scheduler: BaseScheduler,
        events: EventHost | None,
        dispatcher: bool,
    ) -> None:
        self.ctx = ctx
        self.folder = folder
        self.policy = policy
        self.slots = slots
        self.scheduler = scheduler
        self.events = events
        self.dispatcher = dispatcher

    def reload(self, initial: bool = False) -> Changes | None:
        """Apply what changed under playbooks/ and templates/ (everything, on start)."""
        ctx = self.ctx
        if ctx.stopping.is_set():
            return None
        policy_changed = self._reload_policy()
        before = self.folder.state()
        try:
            changes = self.folder.poll()
            if changes is not None:
                self._record_schedules(changes, initial)
        except Exception as exc:  # an unreadable folder or a database hiccup: try again later
            self.folder.restore(before)
            event(ctx.log, "reload.error", logging.ERROR, error=error_text(exc))
            return None
        if changes is None:
            if policy_changed:
                self.save_state()
            return None
        for version in changes.replaced:
            event(
                ctx.log,
                "playbook.reloaded",
                playbook=version.id,
                content_hash=version.playbook.content_hash[:12],
            )
        for problem in changes.problems:
            ctx.metrics.reload_failures.inc()
            for d in problem.diagnostics:
                event(
                    ctx.log,
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
                    ctx.log,
                    "reload.kept_last_good",
                    logging.WARNING,
                    file=problem.file,
                    playbook=problem.kept.id,
                    content_hash=problem.kept.playbook.content_hash[:12],
                )
        for held in changes.withheld:
            event(
                ctx.log,
                "playbook.withheld",
                logging.WARNING if held.reason == CHANGED else logging.INFO,
                playbook=held.playbook_id,
                file=held.file,
                reason=held.reason,
                live_version=held.live_version,
            )
        for reason in (CHANGED, NOT_APPROVED, PAUSED):
            n = sum(1 for h in changes.withheld if h.reason == reason)
            ctx.metrics.withheld.labels(reason=reason).set(n)
        self._reschedule(changes)
        if self.events is not None:
            self.events.offer([(v.playbook, v.executor) for v in self.folder.active().values()])
        ctx.metrics.invalid_files.set(len(changes.problems))
        ctx.metrics.active.set(len(self.slots.active))
        self.save_state()
        return changes

    def _reload_policy(self) -> bool:
        """Apply an edit of config/policy.yaml to every loaded version (validated first; an
        invalid edit keeps the last good policy, is logged and shown by ``status``)."""
        log = self.ctx.log
        had_problem = self.policy.problem
        try:
            policy = self.policy.poll()
        except Exception as exc:  # unreadable now: keep what runs, try again next time
            event(log, "policy.error", logging.ERROR, error=error_text(exc))
            return False
        if policy is not None:
            for version in self.folder.versions.values():
                version.executor.policy = policy
            # playbooks are checked again with the new texts (SMS parts count them)
            self.folder.digest = None
            event(log, "policy.reloaded", file=str(self.ctx.settings.policy_path))
            return True
        problem = self.policy.problem
        if problem is not None and problem != had_problem:
            self.ctx.metrics.reload_failures.inc()
            event(
                log,
                "policy.invalid",
                logging.ERROR,
                where=problem.where,
                code=problem.code,
                message=problem.message,
            )
            event(log, "policy.kept_last_good", logging.WARNING)
            return True
        return False

    def _record_schedules(self, changes: Changes, initial: bool) -> None:
        """Note in the store since when each playbook is enabled, and which ones stopped."""
        ctx = self.ctx
        now = ctx.time.now()
        with ctx.store.begin() as conn:
            for version in changes.started:
                cron = cron_of(version.playbook)
                if cron is None:
                    continue
                since = claims.mark_enabled(
                    conn, version.id, since=utc_naive(now), cron=cron, now=utc_now()
                )
                event(
                    ctx.log,
                    "playbook.scheduled",
                    playbook=version.id,
                    schedule=cron,
                    content_hash=version.playbook.content_hash[:12],
                    enabled_since=since.isoformat(timespec="seconds"),
                )
            for pid, why in changes.stopped:
                claims.mark_disabled(conn, pid, utc_now())
                event(ctx.log, "playbook.stopped", playbook=pid, reason=why)
            if initial and not changes.problems:
                # playbooks deleted while no daemon ran: a later comeback starts afresh
                active = set(self.folder.active())
                for pid in claims.known_enabled(conn) - active:
                    claims.mark_disabled(conn, pid, utc_now())

    def _reschedule(self, changes: Changes) -> None:
        active = {
            pid: v for pid, v in self.folder.active().items() if cron_of(v.playbook) is not None
        }
        self.slots.set_active(active)
        for pid, _why in changes.stopped:
            if self.scheduler.get_job(f"playbook:{pid}") is not None:
                self.scheduler.remove_job(f"playbook:{pid}")
        for version in changes.started:
            cron = cron_of(version.playbook)
            if cron is None:
                continue
            self.scheduler.add_job(
                self.slots.reconcile,
                SlotTrigger(cron, self.ctx.tz, self.ctx.time),
                args=[version.id],
                id=f"playbook:{version.id}",
                executor="runs",
                replace_existing=True,
                max_instances=4,  # a wake-up while the playbook runs just flags more work
            )
            self.slots.wake(version.id)

    def save_state(self) -> None:
        """Write what runs, what was rejected and how this daemon is set up to its row."""
        ctx = self.ctx
        state = {
            "playbooks": {
                pid: {
                    "file": v.file,
                    "content_hash": v.playbook.content_hash,
                    "schedule": cron_of(v.playbook),
                    "kept_last_good": v.file in self.folder.problems,
                }
                for pid, v in sorted(self.slots.active.items())
            },
            "withheld": [
                {
                    "playbook": w.playbook_id,
                    "file": w.file,
                    "reason": w.reason,
                    "live_version": w.live_version,
                }
                for w in sorted(self.folder.withheld.values(), key=lambda w: w.playbook_id)
            ],
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
            "grace_seconds": int(ctx.config.grace.total_seconds()),
            "clock": ctx.time.label,
            "heartbeat_seconds": ctx.config.heartbeat_every,
            "dispatcher": self.dispatcher,
            "events": self.events.state() if self.events is not None else None,
            "policy_error": self.policy.problem.as_dict() if self.policy.problem else None,
            **partition_state(ctx),
        }
        try:
            with ctx.store.begin() as conn:
                conn.execute(update(daemons).where(daemons.c.id == ctx.owner).values(state=state))
        except Exception as exc:  # status shows older news until the next reload
            event(ctx.log, "state.error", logging.ERROR, error=error_text(exc))
