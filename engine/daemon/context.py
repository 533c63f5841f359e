"""What the parts of one daemon share: its configuration, and the things every part uses.

The parts (:mod:`~engine.daemon.slots`, :mod:`~engine.daemon.reloader`,
:mod:`~engine.daemon.housekeeping`) get a :class:`Context` from the
:class:`~engine.daemon.scheduler.Daemon` that owns them, and never import that module back.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from engine.core.dictionary import DataDictionary
from engine.core.observability import Metrics
from engine.core.settings import Settings
from engine.daemon.timesource import TimeSource
from engine.store.partitions import Partition

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
    # --partition k/K: this daemon's share of the customers (docs/scaling.md); None: all
    partition: Partition | None = None

    @property
    def heartbeat_every(self) -> float:
        """Seconds between renewals of this daemon's leases: three per lease."""
        return max(0.2, self.lease.total_seconds() / 3)


@dataclass(frozen=True)
class Context:
    """One daemon's store, settings, configuration, clock, identity, log, metrics and stop
    flag: the same objects for every part, so a stop or a metric is seen by all of them."""

    store: Engine
    settings: Settings
    dictionary: DataDictionary
    tz: ZoneInfo  # the schedule's time zone (settings.timezone)
    config: DaemonConfig
    time: TimeSource
    owner: str  # host:pid:random, the owner of this daemon's claims and its ``daemons`` row
    log: logging.Logger
    metrics: Metrics
    stopping: threading.Event  # set by Daemon.stop: finish the batch in hand, start no other
