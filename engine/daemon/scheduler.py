"""The scheduler daemon: every enabled playbook on its schedule, unattended, for months.

APScheduler 3.x (a :class:`BackgroundScheduler`) is the clock: one job per playbook fires at
its slots (:class:`~engine.daemon.timesource.SlotTrigger`), and interval jobs reload playbooks,
renew leases, sweep, publish metrics and run the dispatcher. What a wake-up *does* is decided
from the database, not from APScheduler's memory, so nothing depends on the process surviving:
due slots, claims, misfires and crash safety are described in :mod:`engine.daemon.slots`.

:class:`Daemon` owns the clock and the life cycle, and composes the parts that do the work:

- :class:`~engine.daemon.slots.SlotRunner`: which slots of a playbook are due or missed,
  claiming and running them;
- :class:`~engine.daemon.reloader.Reloader`: hot reload of playbooks, templates and the
  contact policy, and the state ``status`` shows;
- :class:`~engine.daemon.housekeeping.Housekeeping`: the ``daemons`` row and heartbeat,
  metrics, escalation of overdue tasks, dispatcher rounds;
- the event host (:mod:`engine.events.host`), when event playbooks are hosted.

**Graceful stop.** SIGTERM/SIGINT set :attr:`Daemon.stopping`; the batch being written
commits, the next one is not started, the claim is marked ``interrupted`` and resumed at once
by the next daemon.

Callers import :class:`Daemon`, :class:`DaemonConfig`, :data:`Dispatch` and the stop
exception and sink from here.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from engine.actions.compliance import MessageTexts
from engine.core.dictionary import DataDictionary
from engine.core.observability import LOGGER, Metrics, event
from engine.core.settings import Settings
from engine.daemon.context import Context, DaemonConfig, Dispatch
from engine.daemon.folder import Changes, PlaybookFolder
from engine.daemon.housekeeping import Housekeeping
from engine.daemon.reloader import Reloader
from engine.daemon.slots import Interrupted, InterruptibleSink, SlotRunner
from engine.daemon.timesource import TimeSource
from engine.events.host import EventHost
from engine.execution.executor import Executor
from engine.governance.gate import open_gate
from engine.policy.watch import PolicyWatch
from engine.rendering.renderer import Renderer
from engine.store.replica import ReplicaReads

RETENTION_EVERY = 3600  # seconds between retention purges (config/retention.yaml)

__all__ = ["Daemon", "DaemonConfig", "Dispatch", "Interrupted", "InterruptibleSink"]


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
        replica: ReplicaReads | None = None,
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
            # scheduled runs read the bank's data from the replica, if any; event playbooks
            # (EventHost) act on fresh events and read the primary
            return Executor(store, settings, dictionary, renderer, self.policy.current, replica)

        def texts() -> MessageTexts | None:
            return self.policy.current.texts if self.policy.current is not None else None

        self.folder = PlaybookFolder(settings, dictionary, make_executor, texts)
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
        ctx = Context(
            store=store,
            settings=settings,
            dictionary=dictionary,
            tz=self.tz,
            config=self.config,
            time=self.time,
            owner=self.owner,
            log=self.log,
            metrics=self.metrics,
            stopping=self.stopping,
        )
        self.slots = SlotRunner(ctx, self.scheduler)
        self.housekeeping = Housekeeping(ctx, self.policy, dispatch)
        self.reloader = Reloader(
            ctx,
            folder=self.folder,
            policy=self.policy,
            slots=self.slots,
            scheduler=self.scheduler,
            events=self.events,
            dispatcher=dispatch is not None,
        )

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        # a broken deployment file (the contact policy) stops the start with one clear error,
        # instead of every reload failing quietly later
        self.policy.load()
        # and so does a broken config/governance.yaml; with governance on, only live approved
        # versions are loaded (engine/governance/gate.py, the same check as `run`)
        self.folder.gate = open_gate(self.store, self.settings)
        self.folder.make_executor(Renderer(self.settings.templates_dir, self.dictionary))
        self.housekeeping.register()
        self.reload(initial=True)
        cfg = self.config
        jobs = self.housekeeping
        add = self.scheduler.add_job
        add(self.reloader.reload, "interval", seconds=cfg.reload_interval, id="reload")
        add(self.slots.sweep, "interval", seconds=cfg.tick, id="sweep")
        add(jobs.heartbeat, "interval", seconds=cfg.heartbeat_every, id="heartbeat")
        add(jobs.publish_metrics, "interval", seconds=cfg.metrics_interval, id="metrics")
        add(jobs.escalate, "interval", seconds=cfg.escalate_interval, id="escalate")
        add(jobs.retain, "interval", seconds=RETENTION_EVERY, id="retention")
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
                jobs.dispatch_once,
                "interval",
                seconds=cfg.dispatch_interval,
                id="dispatch",
                executor="dispatch",
            )
        if cfg.metrics_port is not None:
            port = self.metrics.serve(cfg.metrics_port)
            event(self.log, "metrics.serving", url=f"http://127.0.0.1:{port}/metrics")
        self.scheduler.start()
        self.slots.sweep()  # catch up (or record as missed) what fell due while no daemon ran
        event(
            self.log,
            "daemon.started",
            owner=self.owner,
            playbooks=sorted(self.slots.active),
            grace_seconds=int(cfg.grace.total_seconds()),
            clock=self.time.label,
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
            self.housekeeping.record_stop()
            self.housekeeping.publish_metrics()
        finally:
            self.metrics.close()
        event(self.log, "daemon.stopped", owner=self.owner)

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (by a signal handler), then stop gracefully."""
        self.start()
        stop.wait()
        self.stop()

    # --- what callers run by hand (the jobs above run them on their own) ---------------------

    def reload(self, initial: bool = False) -> Changes | None:
        """Apply what changed under playbooks/ and templates/ (everything, on start)."""
        return self.reloader.reload(initial)

    def reconcile(self, playbook_id: str) -> None:
        """Run every due slot of one playbook, oldest first, until none is left."""
        self.slots.reconcile(playbook_id)

    def escalate(self) -> int:
        """Escalate overdue tasks now; returns the escalation tasks created
        (:meth:`~engine.daemon.housekeeping.Housekeeping.escalate`)."""
        return self.housekeeping.escalate()
