"""Replica reads against a real streaming replica: audiences read from the standby, the
policy and every write on the primary, consent re-checked on the primary, and the lag rule.

The module starts its own primary and a ``pg_basebackup -R`` standby of it on loopback (not
the session's shared cluster: tests here pause replay and turn on statement logging, which
must not reach other modules). The standby logs every statement it is asked
(``log_statement = all``), so "the audience ran on the replica" is read from its own log;
the primary logs statements too, from after the demo store was generated, so the same
audience is shown *not* to have run there.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import (
    Processes,
    claims_by_slot,
    daemon_args,
    deployment,
    enabled_since_yesterday,
    playbook_yaml,
    wait_for,
)
from sqlalchemy import select
from support import AS_OF_DATE, DEMO_CUSTOMERS, REPO, SETTINGS, TZ, cli, dictionary, validator

from engine.bench.pgcluster import SERVER_USER, ClusterError, PgCluster, find_bindir, free_port
from engine.console.workbench import Workbench
from engine.core.clock import Clock
from engine.core.errors import EngineError
from engine.demo.generator import generate
from engine.execution.executor import Executor
from engine.execution.sinks import RecordingSink, StoreSink
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator
from engine.store import claims
from engine.store.db import open_store
from engine.store.models import action_ledger, outbox, runs
from engine.store.replica import ReplicaConfig, ReplicaError, ReplicaReads, replica_config

pytestmark = pytest.mark.postgres

RUN_AT = f"{AS_OF_DATE.isoformat()}T09:00"
BIRTHDAY = "birthday-greeting"  # a marketing SMS: consent decides who gets it
LONG = dt.timedelta(hours=1)  # a bound a paused replica stays within for a test's length


@dataclass(frozen=True)
class Pair:
    primary: PgCluster
    replica: PgCluster
    database: str

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def replica_url(self) -> str:
        return self.replica.url(self.database)

    def sql(self, on: PgCluster, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        dsn = f"host=127.0.0.1 port={on.port} user={SERVER_USER} dbname={self.database}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []

    def caught_up(self, timeout: float = 30.0) -> None:
        """Resume replay and wait until the replica has replayed all the primary wrote (the
        insert position: with synchronous_commit off, a commit may not be flushed yet)."""
        self.sql(self.replica, "SELECT pg_wal_replay_resume()")
        target = self.sql(self.primary, "SELECT pg_current_wal_insert_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (behind,) = self.sql(
                self.replica,
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())",
                (target,),
            )[0]
            if behind <= 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"the replica did not replay up to {target} in {timeout}s")

    def pause(self) -> None:
        self.sql(self.replica, "SELECT pg_wal_replay_pause()")
        # pausing is asynchronous: wait until replay has really stopped
        while self.sql(self.replica, "SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            time.sleep(0.02)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries not found; the replica tests need them"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    primary = PgCluster(bindir, prefix="care-pg-primary-")
    replica: PgCluster | None = None
    try:
        try:
            primary.start()
            replica = primary.start_standby(settings={"log_statement": "'all'"})
        except ClusterError as exc:
            pytest.fail(f"could not start the primary and its replica: {exc}", pytrace=False)
        name = primary.create_database()
        store = open_store(primary.url(name))
        try:
            generate(store, customers=DEMO_CUSTOMERS, seed=11, as_of=AS_OF_DATE)
        finally:
            store.dispose()
        # from now on the primary logs what it is asked, too (ALTER SYSTEM is a file on the
        # primary, not WAL: the replica's settings are its own)
        admin = f"host=127.0.0.1 port={primary.port} user={SERVER_USER} dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("SELECT pg_reload_conf()")
        found = Pair(primary, replica, name)
        found.caught_up()
        yield found
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()


@pytest.fixture
def synced(pair: Pair) -> Iterator[Pair]:
    """The pair with the replica replaying and current; replay resumed after the test too."""
    pair.caught_up()
    try:
        yield pair
    finally:
        pair.caught_up()


def _playbook(playbook_id: str) -> Playbook:
    found = validator().validate_paths([REPO / "playbooks"])
    return next(p for p in found.playbooks if p.id == playbook_id)


def _log_mark(cluster: PgCluster) -> int:
    return cluster.logfile.stat().st_size


def _log_since(cluster: PgCluster, mark: int) -> str:
    with cluster.logfile.open("rb") as fh:
        fh.seek(mark)
        return fh.read().decode("utf-8", errors="replace")


def _audience_marker(sql: str) -> str:
    """A piece of the audience query's text that the server log shows verbatim: its select
    list up to the first bound parameter (the log shows $1 where SQLAlchemy shows %(…)s)."""
    flat = " ".join(sql.split())
    return flat.split("%(")[0][:160]


def _in_log(log: str, marker: str) -> bool:
    return marker in " ".join(log.split())


# --- (a) audiences on the replica, writes on the primary --------------------------------------


def test_the_audience_runs_on_the_replica_and_the_writes_land_on_the_primary(
    synced: Pair,
) -> None:
    primary = open_store(synced.primary_url)
    reads = ReplicaReads(primary, ReplicaConfig(synced.replica_url))
    try:
        executor = Executor(primary, SETTINGS, dictionary(), validator().renderer, replica=reads)
        playbook = _playbook(BIRTHDAY)
        on_replica, on_primary = _log_mark(synced.replica), _log_mark(synced.primary)
        outcome = executor.execute(
            playbook, Clock.at(dt.datetime.fromisoformat(RUN_AT), TZ), StoreSink(primary)
        )
        replica_log = _log_since(synced.replica, on_replica)
        primary_log = _log_since(synced.primary, on_primary)
        with primary.connect() as conn:
            ran = conn.execute(select(runs.c.id).where(runs.c.playbook_id == BIRTHDAY)).all()
            ledger = conn.execute(
                select(action_ledger.c.customer_id).where(action_ledger.c.playbook_id == BIRTHDAY)
            ).all()
            queued = conn.execute(
                select(outbox.c.customer_id).where(outbox.c.playbook_id == BIRTHDAY)
            ).all()
    finally:
        reads.dispose()
        primary.dispose()
    assert outcome.read_from == "replica"
    assert outcome.acted > 0, "the birthday playbook must act on someone for this test to mean"
    marker = _audience_marker(outcome.sql)
    assert _in_log(replica_log, marker), "the audience query is not in the replica's log"
    # and it is the streamed audience itself (the executor's server-side cursor)
    declared = r'DECLARE "[^"]+" [A-Z ]{0,60}CURSOR [A-Z ]{0,40}FOR ' + re.escape(marker)
    assert re.search(declared, " ".join(replica_log.split())), "no DECLARE … CURSOR on the replica"
    assert "FETCH FORWARD" in replica_log
    assert not _in_log(primary_log, marker), "the audience query ran on the primary"
    # the policy's reads and the writes are the primary's
    assert "action_ledger" in primary_log and "INSERT INTO outbox" in primary_log
    assert "INSERT" not in replica_log
    assert len(ran) == 1 and len(ledger) == outcome.acted and len(queued) == outcome.acted
    # and the replica shows them only by replaying the primary's WAL
    synced.caught_up()
    assert len(synced.sql(synced.replica, "SELECT id FROM outbox")) == len(queued)


# --- (b) consent withdrawn on the primary, replica paused --------------------------------------


def test_a_consent_withdrawn_on_the_primary_is_honoured_while_the_replica_is_paused(
    synced: Pair,
) -> None:
    primary = open_store(synced.primary_url)
    try:
        # who would get the birthday SMS, previewed on the primary alone
        executor = Executor(primary, SETTINGS, dictionary(), validator().renderer)
        preview = executor.execute(
            _playbook(BIRTHDAY),
            Clock.at(dt.datetime.fromisoformat("2026-11-24T09:00"), TZ),
            RecordingSink(mask=False),
            keep_details=True,
        )
    finally:
        primary.dispose()
    acted = sorted(d.customer_id for d in preview.decisions if d.effects)
    assert len(acted) >= 2, "need two customers with a birthday SMS on 2026-11-24"
    withdrawn, kept = acted[0], acted[1]
    synced.pause()
    synced.sql(
        synced.primary,
        "UPDATE consents SET withdrawn_at = given_at + interval '1 second' "
        "WHERE customer_id = %s AND channel = 'sms' AND purpose = 'marketing'",
        (withdrawn,),
    )
    consent = "SELECT withdrawn_at FROM consents WHERE customer_id = %s AND channel = 'sms' "
    consent += "AND purpose = 'marketing'"
    assert synced.sql(synced.replica, consent, (withdrawn,)) == [(None,)], "replica not stale"
    assert synced.sql(synced.primary, consent, (withdrawn,))[0][0] is not None

    # a preview reads consent with the rest of the bank's data, on the replica: still stale
    primary = open_store(synced.primary_url)
    reads = ReplicaReads(primary, ReplicaConfig(synced.replica_url, max_lag=LONG))
    try:
        executor = Executor(primary, SETTINGS, dictionary(), validator().renderer, replica=reads)
        stale = executor.execute(
            _playbook(BIRTHDAY),
            Clock.at(dt.datetime.fromisoformat("2026-11-24T09:00"), TZ),
            RecordingSink(mask=False),
            keep_details=True,
            customer_ids=[withdrawn],
        )
    finally:
        reads.dispose()
        primary.dispose()
    assert stale.read_from == "replica"
    assert [bool(d.effects) for d in stale.decisions] == [True]

    # the run queues messages, so its gate asks the primary: the withdrawal holds
    result = cli(
        "run",
        "--db",
        synced.primary_url,
        "--replica-db",
        synced.replica_url,
        "--replica-max-lag",
        "1h",
        "--playbook",
        BIRTHDAY,
        "--slot",
        "2026-11-24T09:00",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[read from the replica]" in result.stdout, result.stdout + result.stderr
    assert "no_consent_sms 1" in result.stdout
    sent_to = {
        row[0]
        for row in synced.sql(
            synced.primary,
            "SELECT customer_id FROM outbox WHERE playbook_id = %s AND created_at >= %s",
            (BIRTHDAY, dt.datetime(2026, 11, 24)),
        )
    }
    assert withdrawn not in sent_to
    assert kept in sent_to


# --- (c) lag beyond the bound ------------------------------------------------------------------


def _lagging(pair: Pair) -> None:
    """Replay paused, then a write on the primary the replica has not replayed, and time for
    its last replayed transaction to age past a one-second bound."""
    pair.pause()
    pair.sql(
        pair.primary, "UPDATE customers SET name = name WHERE id = (SELECT min(id) FROM customers)"
    )
    time.sleep(1.5)


def test_lag_beyond_the_bound_falls_back_to_the_primary_and_says_so(synced: Pair) -> None:
    _lagging(synced)
    result = cli(
        "dry-run",
        "--db",
        synced.primary_url,
        "--replica-db",
        synced.replica_url,
        "--replica-max-lag",
        "1s",
        "--as-of",
        RUN_AT,
        "--playbook",
        BIRTHDAY,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "beyond --replica-max-lag 1s" in result.stderr
    assert "replay paused" in result.stderr
    assert "reading the bank's data from the primary instead" in result.stderr


def test_lag_beyond_the_bound_with_fallback_stop_refuses_and_writes_nothing(synced: Pair) -> None:
    _lagging(synced)
    before = synced.sql(synced.primary, "SELECT count(*) FROM runs")[0][0]
    result = cli(
        "run",
        "--db",
        synced.primary_url,
        "--replica-db",
        synced.replica_url,
        "--replica-max-lag",
        "1s",
        "--replica-fallback",
        "stop",
        "--playbook",
        BIRTHDAY,
        "--slot",
        RUN_AT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[E1033]" in result.stderr and "replay paused" in result.stderr
    assert "Traceback" not in result.stderr
    assert synced.sql(synced.primary, "SELECT count(*) FROM runs")[0][0] == before


def test_a_replica_within_the_bound_is_used_though_its_last_transaction_is_old(
    synced: Pair,
) -> None:
    """Idle primary: the last replayed transaction ages, but nothing is missing (WAL
    positions agree), so a tight bound still reads from the replica."""
    time.sleep(1.2)
    primary = open_store(synced.primary_url)
    said: list[str] = []
    # a generous settle: a read on the primary may write WAL (page pruning) that a busy test
    # machine takes a while to stream; the point here is the old timestamp, not the settle
    reads = ReplicaReads(
        primary,
        ReplicaConfig(synced.replica_url, max_lag=dt.timedelta(seconds=1)),
        on_fallback=said.append,
        settle=10.0,
    )
    try:
        assert reads.source() is reads.engine
    finally:
        reads.dispose()
        primary.dispose()
    assert said == []


# --- (d) unreachable replica -------------------------------------------------------------------


def _nowhere(pair: Pair) -> str:
    # a loopback port nothing listens on (free_port binds it once, then lets it go)
    return f"postgresql://{SERVER_USER}@127.0.0.1:{free_port()}/{pair.database}"


def test_an_unreachable_replica_falls_back_to_the_primary_and_says_so(synced: Pair) -> None:
    primary = open_store(synced.primary_url)
    said: list[str] = []
    reads = ReplicaReads(primary, ReplicaConfig(_nowhere(synced)), on_fallback=said.append)
    try:
        executor = Executor(primary, SETTINGS, dictionary(), validator().renderer, replica=reads)
        outcome = executor.execute(
            _playbook(BIRTHDAY),
            Clock.at(dt.datetime.fromisoformat(RUN_AT), TZ),
            RecordingSink(),
        )
    finally:
        reads.dispose()
        primary.dispose()
    assert outcome.read_from == "primary" and outcome.matched_count > 0
    assert len(said) == 1 and "cannot be reached" in said[0] and "from the primary" in said[0]


def test_an_unreachable_replica_with_fallback_stop_is_refused_with_its_code(synced: Pair) -> None:
    result = cli(
        "dry-run",
        "--db",
        synced.primary_url,
        "--replica-db",
        _nowhere(synced),
        "--replica-fallback",
        "stop",
        "--as-of",
        RUN_AT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[E1031]" in result.stderr and "cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr


# --- (e) replica URLs that are mistakes --------------------------------------------------------


def test_a_replica_url_with_sqlite_is_refused(tmp_path: Path, synced: Pair) -> None:
    sqlite = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(ReplicaError) as caught:
            ReplicaReads(sqlite, ReplicaConfig(synced.replica_url))
        assert caught.value.code == "E1030"
    finally:
        sqlite.dispose()
    primary = open_store(synced.primary_url)
    try:
        with pytest.raises(ReplicaError) as caught:
            ReplicaReads(primary, ReplicaConfig(f"sqlite:///{tmp_path / 'replica.db'}"))
        assert caught.value.code == "E1030"
    finally:
        primary.dispose()


def test_a_replica_url_pointing_at_the_primary_is_refused_whatever_the_fallback(
    synced: Pair,
) -> None:
    # `fallback primary` does not excuse it: a primary given as a replica is a mistake
    for command in ("dry-run", "explain C0000000001"):
        result = cli(
            *command.split(),
            "--db",
            synced.primary_url,
            "--replica-db",
            synced.primary_url,
            "--as-of",
            RUN_AT,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "error[E1032]" in result.stderr and "not in recovery" in result.stderr


def test_the_daemon_refuses_a_primary_given_as_its_replica_before_it_starts(
    synced: Pair,
) -> None:
    env = {**os.environ, "CARE_REPLICA_DB": synced.primary_url}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "runner.py"),
            "daemon",
            "--db",
            synced.primary_url,
            "--no-dispatch",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={k: v for k, v in env.items() if k != "CARE_DB"},
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[E1032]" in result.stderr


def test_bad_lag_and_fallback_values_are_usage_errors() -> None:
    for lag in ("0s", "soon", "-5"):
        with pytest.raises(EngineError) as caught:
            replica_config("postgresql://x@127.0.0.1/db", lag, "primary")
        assert caught.value.code == "E1034"
    assert replica_config(None, "30s", "stop") is None
    config = replica_config("postgresql://x@127.0.0.1/db", "2min", "stop")
    assert config is not None and config.max_lag == dt.timedelta(minutes=2)


# --- the daemon --------------------------------------------------------------------------------


def test_the_daemon_reads_its_audiences_from_the_replica(synced: Pair, tmp_path: Path) -> None:
    """A rehearsal daemon (an hour of schedule per second) given the replica runs a slot: its
    audience cursor is in the replica's log and not the primary's, its ledger on the primary."""
    pid = "replica-daemon"
    cron = "0 9 * * *"
    settings = deployment(tmp_path, {"replica_daemon.yaml": playbook_yaml(pid, cron)})
    primary = open_store(synced.primary_url)
    procs = Processes()
    try:
        enabled_since_yesterday(primary, pid, cron)
        checker = Validator(settings, dictionary())
        playbook = checker.validate_paths([settings.playbooks_dir]).playbooks[0]
        audience = Executor(primary, settings, dictionary(), checker.renderer).audience_query(
            playbook, Clock.at(dt.datetime(2026, 11, 20, 9, 0, tzinfo=TZ), TZ)
        )
        marker = _audience_marker(str(audience.compile(primary)))
        on_replica, on_primary = _log_mark(synced.replica), _log_mark(synced.primary)
        log = tmp_path / "daemon.log"
        args = daemon_args(synced.primary_url, time.time(), "--no-events")
        procs.spawn(tmp_path, log, *args, "--replica-db", synced.replica_url)

        def done() -> bool:
            return any(c.status == claims.DONE for c in claims_by_slot(primary, pid).values())

        wait_for("a slot run by the daemon", done, timeout=90)
        replica_log = _log_since(synced.replica, on_replica)
        primary_log = _log_since(synced.primary, on_primary)
        with primary.connect() as conn:
            acted = conn.execute(
                select(action_ledger.c.id).where(action_ledger.c.playbook_id == pid)
            ).all()
    finally:
        procs.kill_all()
        primary.dispose()
    assert "replica.fallback" not in log.read_text(errors="replace")
    assert _in_log(replica_log, marker), "the daemon's audience is not in the replica's log"
    assert not _in_log(primary_log, marker), "the daemon ran its audience on the primary"
    assert acted, "the slot acted on no one: nothing shows where its writes went"


# --- the console's previews -----------------------------------------------------------------


def test_the_consoles_estimate_reads_the_audience_from_the_replica(synced: Pair) -> None:
    """``console --replica-db``: the editor's audience estimate (the same pass as dry-run) and
    its tier and branch facets run on the replica; nothing of it on the primary."""
    primary = open_store(synced.primary_url)
    reads = ReplicaReads(primary, ReplicaConfig(synced.replica_url))
    try:
        bench = Workbench(SETTINGS, primary, reads)
        on_replica, on_primary = _log_mark(synced.replica), _log_mark(synced.primary)
        found = bench.estimate(_playbook(BIRTHDAY), AS_OF_DATE)
        replica_log = _log_since(synced.replica, on_replica)
        primary_log = _log_since(synced.primary, on_primary)
        sql = bench.executor().audience_query(
            _playbook(BIRTHDAY), Clock.at(dt.datetime.fromisoformat(RUN_AT), TZ)
        )
    finally:
        reads.dispose()
        primary.dispose()
    assert found["scheduled"] and found["counts"]["matched"] > 0
    assert found["facets"], "the estimate's facets were not read"
    marker = _audience_marker(str(sql.compile(primary)))
    assert _in_log(replica_log, marker), "the estimate's audience is not in the replica's log"
    assert not _in_log(primary_log, marker), "the estimate's audience ran on the primary"


def test_the_console_refuses_a_primary_given_as_its_replica_before_it_serves(
    synced: Pair,
) -> None:
    result = cli(
        "console", "--db", synced.primary_url, "--replica-db", synced.primary_url, "--port", "0"
    )
    assert result.returncode == 1 and "E1032" in result.stderr, result.stderr
    assert "console on" not in result.stdout and "Traceback" not in result.stderr
