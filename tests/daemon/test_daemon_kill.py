"""Reliability with real processes: the daemon and ``run`` killed with SIGKILL at random
moments, three daemons sharing one PostgreSQL, and a playbook edited while the daemon runs.

The daemons run on a rehearsal clock (20 Nov 2026 from midnight, an hour of schedule per
wall second or faster, see :class:`engine.daemon.timesource.TimeSource`), so dozens of schedule
slots pass
in seconds through the real daemon, its real APScheduler and real database locks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (
    Processes,
    claims_by_slot,
    daemon_args,
    deployment,
    enabled_since_yesterday,
    kill,
    logged,
    playbook_yaml,
    status_json,
    stop,
    wait_for,
)
from gateways import HttpGateway
from sqlalchemy import Engine, func, select
from support import REPO, TZ, dictionary

from engine.core.clock import Clock, utc_to_local
from engine.demo.generator import generate
from engine.execution.executor import Executor
from engine.execution.sinks import StoreSink
from engine.playbook.validation import Validator
from engine.rendering.renderer import Renderer
from engine.store.db import open_store
from engine.store.models import action_ledger, outbox, run_claims, runs, schedule_state, tasks
from engine.triggers.schedule import slots_between

pytestmark = pytest.mark.slow

KILL_CUSTOMERS = 20_000  # "tens of thousands": each slot writes a few hundred customers
EVERY_TWO_HOURS = "0 */2 20 11 *"  # 12 slots on 20 Nov 2026


def _slots(cron: str, since: dt.datetime, until: dt.datetime) -> list[str]:
    """Slot keys after ``since`` (naive UTC, as schedule_state keeps it) up to ``until``."""
    start = utc_to_local(since, TZ)
    return [s.isoformat(timespec="minutes") for s in slots_between(cron, start, until)]


def _enabled_since(store: Engine, playbook_id: str) -> dt.datetime:
    with store.connect() as conn:
        value = conn.execute(
            select(schedule_state.c.enabled_since).where(
                schedule_state.c.playbook_id == playbook_id
            )
        ).scalar()
    assert isinstance(value, dt.datetime)
    return value


@pytest.fixture
def procs() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


def _wait_logged(log: Path, timeout: float, needles: tuple[str, ...]) -> bool:
    """Wait until a log line holds every needle; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if logged(log, *needles):
            return True
        time.sleep(0.05)
    return False


# --- kill -9 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: Any) -> Iterator[Path]:
    """A demo store of tens of thousands of customers, generated once: a pristine copy."""
    path = tmp_path_factory.mktemp("big") / "pristine.db"
    engine = open_store(f"sqlite:///{path}")
    try:
        generate(engine, customers=KILL_CUSTOMERS, seed=5, as_of=dt.date(2026, 11, 20))
    finally:
        engine.dispose()
    yield path


def _effects(store: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Everything the engine wrote, keyed by what must not depend on who wrote it or when."""
    lk = (action_ledger.c.playbook_id, action_ledger.c.customer_id, action_ledger.c.window)
    with store.connect() as conn:
        ledger = Counter(tuple(r) for r in conn.execute(select(*lk)))
        messages = Counter(
            tuple(r)
            for r in conn.execute(
                select(*lk, outbox.c.action_index, outbox.c.channel, outbox.c.recipient)
                .add_columns(outbox.c.body)
                .join_from(outbox, action_ledger, outbox.c.ledger_id == action_ledger.c.id)
            )
        )
        todo = Counter(
            tuple(r)
            for r in conn.execute(
                select(*lk, tasks.c.action_index, tasks.c.kind, tasks.c.title)
                .add_columns(tasks.c.assignee_id, tasks.c.due_at)
                .join_from(tasks, action_ledger, tasks.c.ledger_id == action_ledger.c.id)
            )
        )
    return {"ledger": ledger, "outbox": messages, "tasks": todo}


def test_kill_9_daemon_and_run_at_random_moments_every_action_exactly_once(
    big_store: Path, tmp_path: Path, procs: Processes
) -> None:
    pid = "kill-test"
    audience = "    - tier: vip\n    - lifecycle_stage: {in: [growth, dormant, new, churned]}\n"
    pb = playbook_yaml(pid, EVERY_TWO_HOURS, audience=audience)
    settings = deployment(tmp_path / "deploy", {"k.yaml": pb})
    root = settings.root
    db = tmp_path / "live.db"
    shutil.copy(big_store, db)
    url = f"sqlite:///{db}"
    store = open_store(url)
    enabled_since_yesterday(store, pid, EVERY_TWO_HOURS)
    log = tmp_path / "daemon.log"
    rng = random.Random(20261120)
    # two schedule hours per wall second: the day's slots fall due within seconds, so the
    # daemons work through a backlog across the kills; a killed daemon's lease lapses in 1.5 s
    args = daemon_args(url, time.time(), "--lease", "1.5", "--tick", "0.5", speed=7200)
    kills = runs_killed = mid_run = 0
    try:
        for cycle in range(21):
            daemon = procs.spawn(root, log, *args)
            me = f":{daemon.pid}:"
            runner = None
            if cycle % 2:
                with store.connect() as conn:
                    latest = conn.execute(select(func.max(run_claims.c.slot))).scalar()
                if latest:  # `run` on the window the daemons are on (or have just done)
                    as_of = f"{latest}:00+08:00"
                    runner = procs.spawn(root, log, "run", "--db", url, "--as-of", as_of)
            if cycle == 9:  # once, SIGTERM mid-run: the batch in hand is finished, exit 0
                _wait_logged(log, timeout=20, needles=("daemon.started", me))
                _wait_logged(log, timeout=6, needles=("run.start", me))
                assert stop(daemon) == 0
                with store.connect() as conn:
                    left = conn.execute(
                        select(run_claims.c.status).where(run_claims.c.owner.contains(me))
                    ).scalars()
                    assert "running" not in set(left)
            elif cycle % 3 == 0:  # in the middle of a slot: a random moment after it starts
                if _wait_logged(log, timeout=6, needles=("run.start", me)):
                    mid_run += 1
                time.sleep(rng.uniform(0.0, 0.5))
            elif cycle % 3 == 1:  # any moment of a started daemon's life
                _wait_logged(log, timeout=10, needles=("daemon.started", me))
                time.sleep(rng.uniform(0.0, 1.5))
            else:  # any moment at all, starting up included
                time.sleep(rng.uniform(0.1, 3.0))
            kill(daemon)
            kills += 1
            if runner is not None:
                kill(runner)
                runs_killed += 1
        assert kills >= 20 and runs_killed >= 8 and mid_run >= 1

        final = procs.spawn(root, log, *args)
        since = _enabled_since(store, pid)
        expected = _slots(EVERY_TWO_HOURS, since, dt.datetime(2026, 11, 21))
        assert len(expected) == 12

        def all_done() -> bool:
            got = claims_by_slot(store, pid)
            return all(s in got and got[s].status == "done" for s in expected)

        wait_for("every slot done", all_done, timeout=120, every=0.3)
        # the killed daemons may have finished every slot already: a SIGTERM while the final
        # one is still importing would end it before its handler exists
        _wait_logged(log, timeout=30, needles=("daemon.started", f":{final.pid}:"))
        assert stop(final) == 0  # SIGTERM: a graceful stop exits 0
        claims = claims_by_slot(store, pid)
        assert sorted(claims) == expected  # no slot before enabling, none missed, none twice
        assert {c.status for c in claims.values()} == {"done"}
        assert max(c.attempts for c in claims.values()) >= 2  # kills did land mid-slot
        actual = _effects(store)
    finally:
        store.dispose()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "claim.resumed" in text

    # the same slots, in order, uninterrupted, on the pristine copy
    reference_db = tmp_path / "reference.db"
    shutil.copy(big_store, reference_db)
    reference = open_store(f"sqlite:///{reference_db}")
    try:
        validator = Validator(settings, dictionary())
        [playbook] = validator.validate_paths([settings.playbooks_dir]).playbooks
        renderer = Renderer(settings.templates_dir, dictionary())
        executor = Executor(reference, settings, dictionary(), renderer)
        for slot in expected:
            at = dt.datetime.fromisoformat(slot).replace(tzinfo=TZ)
            executor.execute(playbook, Clock.at(at, TZ), StoreSink(reference))
        wanted = _effects(reference)
    finally:
        reference.dispose()
    assert sum(wanted["ledger"].values()) > 2000
    for kind in ("ledger", "outbox", "tasks"):
        assert max(actual[kind].values()) == 1, f"a duplicate in {kind}"
        assert actual[kind] == wanted[kind], f"{kind} differs from an uninterrupted run"


# --- three daemons, one PostgreSQL ---------------------------------------------------------


def test_three_daemons_on_one_postgresql_run_each_slot_exactly_once(
    pg_url: str, tmp_path: Path, procs: Processes
) -> None:
    engine = open_store(pg_url)
    try:
        generate(engine, customers=1500, seed=11, as_of=dt.date(2026, 11, 20))
        pbs = {
            "one.yaml": playbook_yaml("three-one", EVERY_TWO_HOURS),
            "two.yaml": playbook_yaml("three-two", EVERY_TWO_HOURS, audience="    - tier: gold\n"),
        }
        settings = deployment(tmp_path / "deploy", pbs)
        expected = {}
        for p in ("three-one", "three-two"):
            enabled_since_yesterday(engine, p, EVERY_TWO_HOURS)
            expected[p] = _slots(
                EVERY_TWO_HOURS, dt.datetime(2026, 11, 19), dt.datetime(2026, 11, 21)
            )
        # two hours per second: the day's 12 slots of each playbook fall due within 12 s,
        # and the three daemons race for every one of them
        args = daemon_args(pg_url, time.time(), "--lease", "5", "--tick", "0.3", speed=7200)
        logs = [tmp_path / f"daemon{i}.log" for i in range(3)]
        daemons = [procs.spawn(settings.root, log, *args) for log in logs]

        def all_done() -> bool:
            for p, slots in expected.items():
                got = claims_by_slot(engine, p)
                if not all(s in got and got[s].status == "done" for s in slots):
                    return False
            return True

        wait_for("every slot of both playbooks done", all_done, timeout=120, every=0.3)
        assert [stop(d) for d in daemons] == [0, 0, 0]
        with engine.connect() as conn:
            per_window = Counter(
                tuple(r) for r in conn.execute(select(runs.c.playbook_id, runs.c.window))
            )
        for p, slots in expected.items():
            assert len(slots) == 12
            claims = claims_by_slot(engine, p)
            assert sorted(claims) == slots and {c.status for c in claims.values()} == {"done"}
            for s in slots:
                assert per_window[(p, s)] == 1, f"{p} {s} executed {per_window[(p, s)]} times"
    finally:
        engine.dispose()
    started = [line for log in logs for line in log.read_text().splitlines() if "started" in line]
    assert len({line.split("owner=")[1].split()[0] for line in started}) == 3
    assert not any("Traceback" in log.read_text() for log in logs)


# --- editing a playbook while the daemon runs ----------------------------------------------


@pytest.fixture
def small_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    engine = open_store(url)
    try:
        generate(engine, customers=1500, seed=11, as_of=dt.date(2026, 11, 20))
    finally:
        engine.dispose()
    return url


def test_invalid_edit_keeps_old_version_firing_and_fix_applies_without_restart(
    small_store: str, tmp_path: Path, procs: Processes
) -> None:
    pid = "live-edit"
    cron = "0 * 20,21 11 *"
    settings = deployment(tmp_path / "deploy", {"live.yaml": playbook_yaml(pid, cron)})
    path = settings.playbooks_dir / "live.yaml"
    log = tmp_path / "daemon.log"
    store = open_store(small_store)
    args = daemon_args(small_store, time.time(), "--tick", "0.5", "--reload-every", "0.2")
    proc = procs.spawn(settings.root, log, *args)

    def done() -> list[Any]:
        rows = claims_by_slot(store, pid).values()
        return sorted((r for r in rows if r.status == "done"), key=lambda r: r.slot)

    try:
        first = wait_for("two runs", lambda: len(done()) >= 2 and done(), timeout=30)
        good_hash = first[0].content_hash

        path.write_text(playbook_yaml(pid, cron).replace("tier: vip", "tire: vip"), "utf-8")
        wait_for("the reload to reject it", lambda: logged(log, "reload.kept_last_good"), 15)
        seen = len(done())
        after = wait_for("two more runs", lambda: len(done()) >= seen + 2 and done(), timeout=30)
        assert {r.content_hash for r in after} == {good_hash}  # the old version keeps firing
        assert "reload.invalid" in log.read_text() and "line=" in log.read_text()

        status = status_json(settings.root, small_store)
        [error] = status["reload_errors"]
        assert error["running_last_good"] == pid and error["code"].startswith("PB")
        assert [p["kept_last_good"] for p in status["playbooks"] if p["id"] == pid] == [True]

        path.write_text(playbook_yaml(pid, cron, title="修正后的版本"), "utf-8")

        def new_version_ran() -> bool:
            return any(r.content_hash != good_hash for r in done())

        wait_for("the fixed version to run", new_version_ran, timeout=30)
        assert proc.poll() is None  # no restart

        # disabled: it stops; re-enabled hours (of schedule) later: no backlog replayed
        path.write_text(playbook_yaml(pid, cron, enabled=False), "utf-8")
        wait_for("the stop", lambda: logged(log, "playbook.stopped"), 15)
        stopped_at = max(r.slot for r in done())
        time.sleep(4)  # four schedule hours pass
        path.write_text(playbook_yaml(pid, cron, title="修正后的版本"), "utf-8")
        wait_for("the restart of the schedule", lambda: logged(log, "playbook.scheduled") >= 2, 15)
        wait_for("a run after re-enabling", lambda: max(r.slot for r in done()) > stopped_at, 30)
    finally:
        code = stop(proc)
    assert code == 0
    slots = sorted(dt.datetime.fromisoformat(s) for s in claims_by_slot(store, pid))
    store.dispose()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert max(gaps) >= dt.timedelta(hours=3)  # the disabled hours: not run, not "missed"
    assert "run.missed" not in log.read_text() and "Traceback" not in log.read_text()


# --- kill -9 while the daemon's dispatcher (and a `dispatch` process) deliver -----------------

CHANNELS = """version: 1
retry: {{max_attempts: 8, first_delay_seconds: 1, max_delay_seconds: 2}}
dispatch: {{batch_size: 40, lease_seconds: 2, poll_seconds: 1}}
sms: {{url: "{url}", timeout_seconds: 5, concurrency: 4, rate_per_second: 150}}
"""


def test_kill_9_while_dispatching_the_gateway_gets_each_message_once(
    small_store: str, tmp_path: Path, procs: Processes
) -> None:
    root = tmp_path / "deploy"
    (root / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "policy.yaml", root / "config" / "policy.yaml")
    audience = "    - tier: {in: [gold, vip, private]}\n"
    pb = playbook_yaml("send-test", "0 1 20 11 *", audience=audience)  # one slot, 01:00
    deployment(root, {"s.yaml": pb})
    store = open_store(small_store)
    enabled_since_yesterday(store, "send-test", "0 1 20 11 *")
    log = tmp_path / "daemon.log"
    rng = random.Random(7)
    with HttpGateway() as gateway:
        (root / "config" / "channels.yaml").write_text(CHANNELS.format(url=gateway.url("/sms")))
        args = [
            a
            for a in daemon_args(small_store, time.time(), "--lease", "1.5")
            if a != "--no-dispatch"
        ]
        args += ["--dispatch-every", "0.2", "--tick", "0.5"]
        try:
            first = procs.spawn(root, log, *args)
            wait_for("the slot to be written", lambda: logged(log, "run.finished"), timeout=30)
            kill(first)
            kills = 1
            for cycle in range(6):
                daemon = procs.spawn(root, log, *args)
                other = (
                    procs.spawn(root, log, "dispatch", "--db", small_store) if cycle % 2 else None
                )
                _wait_logged(log, timeout=10, needles=("daemon.started", f":{daemon.pid}:"))
                time.sleep(rng.uniform(0.0, 1.5))
                kill(daemon)
                kills += 1
                if other is not None:
                    kill(other)
            assert kills >= 7

            final = procs.spawn(root, log, *args)
            # the killed ones may have sent everything: a SIGTERM before the final daemon
            # has started would stop the interpreter, not the daemon
            assert _wait_logged(log, timeout=30, needles=("daemon.started", f":{final.pid}:"))

            def all_sent() -> bool:
                with store.connect() as conn:
                    left = conn.execute(
                        select(func.count()).where(outbox.c.status != "sent")
                    ).scalar_one()
                return left == 0

            wait_for("every message sent", all_sent, timeout=90, every=0.3)
            assert stop(final) == 0
        finally:
            with store.connect() as conn:
                keys = set(conn.execute(select(outbox.c.idempotency_key)).scalars())
            store.dispose()
        delivered = gateway.ledger.delivered
    assert len(keys) > 200
    assert set(delivered) == keys and set(delivered.values()) == {1}
    assert "Traceback" not in log.read_text(errors="replace")
