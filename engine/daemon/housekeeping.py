"""The daemon's interval jobs beside the slots: its ``daemons`` row and heartbeat, metrics,
escalation of overdue tasks, and dispatcher rounds. Each job logs and counts its failures and
leaves the next interval to try again; none stops the daemon."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, insert, select, update

from engine.core.calendarfile import work_calendar
from engine.core.clock import utc_now
from engine.core.observability import DEAD_LETTER_STATUSES, error_text, event
from engine.daemon.context import Context, Dispatch
from engine.daemon.partitions import partition_state
from engine.delivery.tasklist import escalate_overdue
from engine.policy.watch import PolicyWatch
from engine.store import claims
from engine.store.models import daemons, outbox, tasks
from engine.store.retention import load_retention, purge


class Housekeeping:
    """The jobs of one daemon that are not slots; ``dispatch`` None runs no dispatcher."""

    def __init__(self, ctx: Context, policy: PolicyWatch, dispatch: Dispatch | None) -> None:
        self.ctx = ctx
        self.policy = policy
        self.dispatch = dispatch

    def register(self) -> None:
        """Insert this daemon's ``daemons`` row (``status`` lists it from there)."""
        now = utc_now()
        with self.ctx.store.begin() as conn:
            conn.execute(
                insert(daemons).values(
                    id=self.ctx.owner,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                    # before the first reload: other daemons read which partition it serves
                    state=partition_state(self.ctx),
                )
            )

    def record_stop(self) -> None:
        """Mark this daemon's row stopped."""
        with self.ctx.store.begin() as conn:
            conn.execute(
                update(daemons)
                .where(daemons.c.id == self.ctx.owner)
                .values(stopped_at=utc_now(), heartbeat_at=utc_now())
            )

    def heartbeat(self) -> None:
        """Renew this daemon's leases; a daemon that stops calling this loses its claims."""
        ctx = self.ctx
        try:
            now = utc_now()
            with ctx.store.begin() as conn:
                claims.renew(conn, ctx.owner, now, ctx.config.lease)
                conn.execute(
                    update(daemons).where(daemons.c.id == ctx.owner).values(heartbeat_at=now)
                )
            ctx.metrics.heartbeat.set(time.time())
        except Exception as exc:
            event(ctx.log, "heartbeat.error", logging.ERROR, error=error_text(exc))

    def publish_metrics(self) -> None:
        """Refresh the gauges read from the store and write the text file, if one is set."""
        ctx = self.ctx
        metrics = ctx.metrics
        try:
            with ctx.store.connect() as conn:

                def count(query: Any) -> int:
                    return int(conn.execute(query).scalar_one())

                metrics.outbox_pending.set(
                    count(select(func.count()).where(outbox.c.status == "pending"))
                )
                metrics.dead_letters.set(
                    count(select(func.count()).where(outbox.c.status.in_(DEAD_LETTER_STATUSES)))
                )
                metrics.tasks_open.set(count(select(func.count()).where(tasks.c.status == "open")))
            if ctx.config.metrics_file is not None:
                ctx.config.metrics_file.parent.mkdir(parents=True, exist_ok=True)
                metrics.write_textfile(str(ctx.config.metrics_file))
        except Exception as exc:
            event(ctx.log, "metrics.error", logging.ERROR, error=error_text(exc))

    def escalate(self) -> int:
        """Give tasks overdue by ``tasks.escalate_after`` to the next role up, as of the
        schedule clock. The ladder is config/policy.yaml as the policy watch last loaded it:
        an edit applies without a restart, a broken one keeps the last good ladder. Several
        daemons may do it at once: each level of a task has a unique key, so it is written
        once. Returns the escalation tasks this call created."""
        ctx = self.ctx
        if ctx.stopping.is_set():
            return 0
        try:
            current = self.policy.current or self.policy.load()
            created = escalate_overdue(
                ctx.store,
                current.tasks,
                ctx.time.now(),
                tz=ctx.tz,
                calendar=work_calendar(ctx.settings.calendar_dir),
            )
        except Exception as exc:  # a locked store or a broken policy edit: try next time
            event(ctx.log, "escalate.error", logging.ERROR, error=error_text(exc))
            return 0
        if created:
            event(ctx.log, "tasks.escalated", created=created)
        return created

    def retain(self) -> None:
        """Blank personal content past config/retention.yaml's periods (hourly; several
        daemons may do it at once: a blanked row no longer matches). A broken file is
        logged and retried, and nothing is purged meanwhile."""
        ctx = self.ctx
        if ctx.stopping.is_set():
            return
        try:
            rules = load_retention(ctx.settings.retention_path)
            done = purge(ctx.store, rules, utc_now(), f"daemon:{ctx.owner}")
        except Exception as exc:
            event(ctx.log, "retention.error", logging.ERROR, error=error_text(exc))
            return
        if done.messages or done.tasks or done.events:
            event(ctx.log, "retention.purged", messages=done.messages, tasks=done.tasks,
                  events=done.events)  # fmt: skip

    def dispatch_once(self) -> None:
        """Dispatcher rounds until nothing is due (or the daemon stops); failures are logged
        and counted, and the next interval tries again."""
        if self.dispatch is None:
            return
        ctx = self.ctx
        total: Counter[str] = Counter()
        try:
            while not ctx.stopping.is_set():
                counts = self.dispatch(dt.datetime.now(dt.UTC))
                total.update(counts)
                if not counts.get("claimed"):
                    break
        except Exception as exc:
            ctx.metrics.dispatch_errors.inc()
            event(ctx.log, "dispatch.error", logging.ERROR, error=error_text(exc))
        if total.get("claimed"):
            event(ctx.log, "dispatch.round", **{k: v for k, v in sorted(total.items()) if v})
