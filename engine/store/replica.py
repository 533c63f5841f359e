"""Reads of the bank's data from a streaming replica, within a lag bound.

Why: an audience scans the customer table; on a large store that is most of a run's database
time, and it only needs the bank's data as its last load left it. A PostgreSQL hot standby
serves it without loading the primary. What must see the latest writes (the ledger, frequency
caps, open tasks, claims, consent before a message is queued) stays on the primary: the
executor keeps its gate connection there whatever this module says.

A replica that has fallen behind, cannot be reached, or is not a replica at all is decided
here, once per run of a playbook (cached for a few seconds), by one rule the operator chose:
``fallback="primary"`` reads from the primary and says so, ``"stop"`` refuses with a located
error. A SQLite store, or a URL that turns out to be a primary, is always refused: that is a
mistake in the configuration, not a passing condition.

Lag is measured by WAL position first: a replica that has replayed up to the primary's WAL
insert position is current, however old its last replayed transaction (on an idle primary that
timestamp ages while nothing is missing). The insert position, not the flush position: with
``synchronous_commit = off`` a commit is in the WAL before it is flushed, and it is missing on
the replica all the same. Only a replica still behind after a short settle is given an age:
``now() - pg_last_xact_replay_timestamp()`` on the replica, an upper bound of how old the data
it serves is.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from engine.core.durations import DurationError, parse_duration
from engine.core.errors import StoreError, UsageError, first_line
from engine.core.observability import LOGGER, event
from engine.store.db import normalise_url

DEFAULT_MAX_LAG = dt.timedelta(seconds=60)
FALLBACKS = ("primary", "stop")
SETTLE_SECONDS = 2.0  # how long a replica a little behind may take to catch up before it counts
RECHECK_SECONDS = 10.0  # a decision is reused this long: a pass over the pack checks once or so
CONNECT_TIMEOUT = 5  # seconds: an unreachable replica must not hold a run for minutes

_SECONDS = re.compile(r"^\s*(\d+)\s*s?\s*$")


class ReplicaError(StoreError):
    """The replica cannot serve the bank-data reads and the configuration says stop, or the
    replica URL is a mistake (SQLite, or a server that is not a standby)."""


@dataclass(frozen=True)
class ReplicaConfig:
    """Where bank-data reads go and what to do when that replica is unfit."""

    url: str
    max_lag: dt.timedelta = DEFAULT_MAX_LAG
    fallback: str = "primary"  # one of FALLBACKS


@dataclass(frozen=True)
class Lag:
    """How far the replica is behind the primary when it was asked."""

    behind_bytes: int  # WAL the primary has written and the replica has not replayed
    seconds: float | None  # 0 when caught up; None when behind and nothing was replayed yet
    paused: bool  # replay paused on the replica (pg_wal_replay_pause)

    def describe(self) -> str:
        age = "unknown" if self.seconds is None else f"{self.seconds:.0f}s"
        return f"{age} behind ({self.behind_bytes} bytes of WAL)" + (
            ", replay paused" if self.paused else ""
        )


def parse_lag(value: str) -> dt.timedelta:
    """``--replica-max-lag``: seconds (``30s`` or ``30``) or a duration (``2min``, ``1h``)."""
    match = _SECONDS.match(value)
    try:
        lag = dt.timedelta(seconds=int(match.group(1))) if match else parse_duration(value)
    except DurationError as exc:
        raise UsageError(
            f"--replica-max-lag {value!r}: {exc.message}",
            code="E1034",
            hint="e.g. 30s, 90 (seconds), 5min or 1h",
        ) from exc
    if lag <= dt.timedelta(0):
        raise UsageError(
            f"--replica-max-lag {value!r} must be more than zero",
            code="E1034",
            hint="e.g. 30s; a replica is never exactly current",
        )
    return lag


def replica_config(url: str | None, max_lag: str, fallback: str) -> ReplicaConfig | None:
    """The validated options of a command, or None when no replica was given."""
    if fallback not in FALLBACKS:
        raise UsageError(
            f"--replica-fallback {fallback!r} is not one of {', '.join(FALLBACKS)}",
            code="E1034",
        )
    lag = parse_lag(max_lag)
    if not url:
        return None
    return ReplicaConfig(url=url, max_lag=lag, fallback=fallback)


class ReplicaReads:
    """The engine bank-data reads use, chosen per run: the replica, or the primary as the
    fallback rule says. One per process; thread-safe (daemon workers share it).

    ``on_fallback`` is told, once per change, why reads went to the primary (a command prints
    it; by default it is logged as ``replica.fallback``)."""

    def __init__(
        self,
        primary: Engine,
        config: ReplicaConfig,
        *,
        on_fallback: Callable[[str], None] | None = None,
        settle: float = SETTLE_SECONDS,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        url = normalise_url(config.url)
        parsed = make_url(url)
        self.shown = parsed.render_as_string(hide_password=True)
        if primary.dialect.name != "postgresql" or parsed.get_backend_name() != "postgresql":
            raise ReplicaError(
                f"--replica-db needs PostgreSQL on both sides (store: {primary.dialect.name}, "
                f"replica: {parsed.get_backend_name()})",
                code="E1030",
                hint="SQLite has no streaming replicas; drop --replica-db (and CARE_REPLICA_DB)",
            )
        self.primary = primary
        self.config = config
        self.engine = create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
        self.on_fallback = on_fallback or _log_fallback
        self.settle = settle
        self.recheck = recheck
        self._lock = threading.Lock()
        self._decided: tuple[float, Engine] | None = None
        self._said: str | None = None
        self._identity: int | None = None

    def source(self) -> Engine:
        """Where this run's bank-data reads go: the replica when it is a standby of the
        primary within the lag bound; else the primary (said through ``on_fallback``) or a
        :class:`ReplicaError`, as configured."""
        with self._lock:
            now = time.monotonic()
            if self._decided is not None and now - self._decided[0] < self.recheck:
                return self._decided[1]
            chosen = self._choose()
            self._decided = (time.monotonic(), chosen)
            return chosen

    def dispose(self) -> None:
        self.engine.dispose()

    # --- deciding --------------------------------------------------------------------------

    def _choose(self) -> Engine:
        try:
            lag = self._measure()
        except SQLAlchemyError as exc:
            return self._unfit(
                f"replica {self.shown} cannot be reached: {first_line(exc)}",
                code="E1031",
                hint="check the replica's host, port and credentials, or run with "
                "--replica-fallback primary",
            )
        limit = self.config.max_lag.total_seconds()
        if lag.seconds is None or lag.seconds > limit:
            return self._unfit(
                f"replica {self.shown} is {lag.describe()}, beyond --replica-max-lag {limit:.0f}s",
                code="E1033",
                hint="wait for the replica to catch up (is replay paused?), raise "
                "--replica-max-lag, or run with --replica-fallback primary",
            )
        self._said = None
        return self.engine

    def _unfit(self, problem: str, *, code: str, hint: str) -> Engine:
        if self.config.fallback == "stop":
            raise ReplicaError(problem, code=code, hint=hint)
        if problem != self._said:  # say it once per change, not once per playbook
            self._said = problem
            self.on_fallback(f"{problem}; reading the bank's data from the primary instead")
        return self.primary

    def _measure(self) -> Lag:
        """The replica's lag, after refusing a replica that is not a standby of the primary."""
        with self.primary.connect() as primary, self.engine.connect() as replica:
            in_recovery, identity = replica.execute(
                text("SELECT pg_is_in_recovery(), system_identifier FROM pg_control_system()")
            ).one()
            if not in_recovery:
                raise ReplicaError(
                    f"--replica-db {self.shown} is not a replica: the server is not in "
                    "recovery (pg_is_in_recovery() is false), so it may be the primary itself",
                    code="E1032",
                    hint="point --replica-db at a streaming standby of the store, or drop it",
                )
            if self._identity is None:
                mine = primary.execute(
                    text("SELECT system_identifier FROM pg_control_system()")
                ).scalar_one()
                if mine != identity:
                    raise ReplicaError(
                        f"--replica-db {self.shown} is a standby of another cluster, not of "
                        "the store (their system identifiers differ)",
                        code="E1032",
                        hint="point --replica-db at a standby of the --db server",
                    )
                self._identity = int(identity)
            target = primary.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one()
            primary.rollback()
            deadline = time.monotonic() + self.settle
            while True:
                behind, seconds, paused = replica.execute(
                    text(
                        "SELECT pg_wal_lsn_diff(CAST(:target AS pg_lsn), "
                        "pg_last_wal_replay_lsn()), "
                        "extract(epoch FROM now() - pg_last_xact_replay_timestamp()), "
                        "pg_is_wal_replay_paused()"
                    ),
                    {"target": target},
                ).one()
                replica.rollback()  # a new snapshot, and now() moves on
                behind = int(behind or 0)
                if behind <= 0:
                    return Lag(0, 0.0, bool(paused))
                if paused or time.monotonic() >= deadline:
                    return Lag(behind, None if seconds is None else float(seconds), bool(paused))
                time.sleep(0.05)


def _log_fallback(message: str) -> None:
    event(logging.getLogger(LOGGER), "replica.fallback", logging.WARNING, problem=message)
