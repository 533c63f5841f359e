"""Event playbooks in the real daemon, as real processes: killed with SIGKILL at random
moments while events keep arriving (``events ingest --store-only``), restarted, and on
PostgreSQL two daemons at once with the lease holder killed. Every expected match is acted
on exactly once, the absence windows close by the (rehearsal) clock with no further event,
and the reinvested redemptions never fire.

The daemons run on a rehearsal clock fast enough (30,000×) that the 7-day window of
``redemption_not_reinvested`` closes about 20 wall seconds after its redemption.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (
    ORIGIN,
    Processes,
    cli_env,
    daemon_args,
    deployment,
    kill,
    logged,
    stop,
    wait_for,
)
from sqlalchemy import Engine, func, select, text
from support import REPO

from engine.demo.generator import generate
from engine.events.processor import ledger_window
from engine.store.db import open_store
from engine.store.models import action_ledger, event_matches, events, outbox, tasks

pytestmark = pytest.mark.slow

SPEED = 30_000  # schedule seconds per wall second: a week in about 20 s
WEEK = dt.timedelta(days=7)
SHIPPED = ("large_withdrawal_alert.yaml", "redemption_not_reinvested.yaml")


@pytest.fixture
def procs() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


class Scenario:
    """Rounds of events for distinct gold-or-better customers, and what must come of them."""

    def __init__(
        self, store: Engine, root: Path, url: str, epoch: float, seed: int, speed: float = SPEED
    ) -> None:
        self.store, self.root, self.url, self.epoch, self.speed = store, root, url, epoch, speed
        self.rng = random.Random(seed)
        with store.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id FROM customers WHERE tier IN ('gold', 'vip', 'private') "
                    "AND manager_id IS NOT NULL ORDER BY id"
                )
            )
            self.customers = [r[0] for r in rows]
        self.next = 0
        self.expected: dict[str, str] = {}  # match key -> playbook
        self.reinvested: list[str] = []  # redemption ids that must never fire
        self.last_redemption: dt.datetime | None = None
        self.n = 0

    def now(self) -> dt.datetime:
        """The daemons' rehearsal clock."""
        origin = dt.datetime.fromisoformat(ORIGIN)
        return origin + dt.timedelta(seconds=(time.time() - self.epoch) * self.speed)

    def _customer(self) -> str:
        cid = self.customers[self.next]
        self.next += 1
        return cid

    def _event(self, kind: str, cid: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "id": f"K-{self.n}",
            "type": kind,
            "customer_id": cid,
            "occurred_at": at.isoformat(),
            **fields,
        }

    def ingest_round(self, tmp: Path) -> None:
        """A file of events written and stored now, through the real CLI."""
        now = self.now()
        at = now - dt.timedelta(hours=2)
        lines = []
        for _ in range(self.rng.randint(2, 5)):  # large withdrawals: act at once
            e = self._event("withdrawal", self._customer(), at, amount=600000.0)
            self.expected[e["id"]] = "large-withdrawal-alert"
            lines.append(e)
        for _ in range(self.rng.randint(1, 3)):  # redemptions: act when the week ends
            cid = self._customer()
            e = self._event("redemption", cid, at, amount=200000.0, product_type="wealth")
            lines.append(e)
            if self.rng.random() < 0.5:
                self.reinvested.append(e["id"])
                later = at + dt.timedelta(hours=1)
                lines.append(self._event("deposit", cid, later, amount=190000.0))
            else:
                self.expected[e["id"]] = "redemption-not-reinvested"
            self.last_redemption = at
        for _ in range(20):  # traffic that matches nothing
            lines.append(self._event("withdrawal", self._customer(), at, amount=3000.0))
        path = tmp / f"round-{self.n}.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        result = subprocess.run(
            [
                *(sys.executable, str(REPO / "runner.py"), "events", "ingest", str(path)),
                *("--db", self.url, "--store-only", "--as-of", now.isoformat()),
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "matches: none" in result.stdout  # store only: the daemon acts

    def done(self) -> bool:
        with self.store.connect() as conn:
            keys = set(conn.execute(select(event_matches.c.match_key)).scalars())
        return (
            keys >= set(self.expected)
            and self.last_redemption is not None
            and (self.now() > self.last_redemption + WEEK + dt.timedelta(hours=12))
        )

    def check(self) -> None:
        with self.store.connect() as conn:
            ledger = Counter(
                tuple(r)
                for r in conn.execute(select(action_ledger.c.playbook_id, action_ledger.c.window))
            )
            held_out = set(
                conn.execute(
                    select(action_ledger.c.id).where(action_ledger.c.held_out.is_(True))
                ).scalars()
            )
            matches = dict(
                conn.execute(select(event_matches.c.match_key, event_matches.c.outcome)).all()
            )
            per_ledger = Counter(
                r[0]
                for r in conn.execute(
                    select(tasks.c.ledger_id).where(tasks.c.playbook_id.is_not(None))
                )
            )
            messaged = set(conn.execute(select(outbox.c.ledger_id)).scalars())
            stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
        assert stored == self.n
        wanted = Counter((pid, ledger_window(key)) for key, pid in self.expected.items())
        assert ledger == wanted  # each expected match once, nothing else
        # acted, or found acted on by a process killed before it recorded the match
        # held out: the playbook's holdout group (redemption-not-reinvested holds out 10%)
        assert {matches[k] for k in self.expected} <= {"acted", "already_done", "held_out"}
        assert not set(self.reinvested) & set(matches)
        # every acted ledger row has its task or its SMS (a marketing call task is held back
        # without phone consent, the SMS still goes), a held-out one neither; never two tasks
        assert not held_out & (set(per_ledger) | messaged)
        assert len(set(per_ledger) | messaged) == len(self.expected) - len(held_out)
        assert max(per_ledger.values()) == 1


def _setup(url: str, tmp_path: Path) -> tuple[Engine, Path]:
    store = open_store(url)
    generate(store, customers=1500, seed=11, as_of=dt.date(2026, 11, 20))
    texts = {n: (REPO / "playbooks" / n).read_text(encoding="utf-8") for n in SHIPPED}
    settings = deployment(tmp_path / "deploy", texts)
    return store, settings.root


def test_kill_9_event_daemon_while_events_arrive_acts_on_each_match_once(
    tmp_path: Path, procs: Processes
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store, root = _setup(url, tmp_path)
    log = tmp_path / "daemon.log"
    epoch = time.time()
    args = daemon_args(url, epoch, "--lease", "1", "--event-every", "0.2", speed=SPEED)
    world = Scenario(store, root, url, epoch, seed=20261120)
    rng = random.Random(7)
    try:
        for round_ in range(8):
            daemon = procs.spawn(root, log, *args)
            world.ingest_round(tmp_path)  # while the daemon starts, or works
            time.sleep(rng.uniform(0.0, 2.5))
            if round_ % 2:
                world.ingest_round(tmp_path)  # and one more, at any moment
            time.sleep(rng.uniform(0.0, 1.0))
            kill(daemon)
            if round_ % 3 == 0:
                world.ingest_round(tmp_path)  # while no daemon runs
        final = procs.spawn(root, log, *args)
        wait_for("every match handled and every week over", world.done, timeout=120, every=0.3)
        time.sleep(1.0)  # a few more cycles: nothing else may fire
        assert stop(final) == 0
        world.check()
    finally:
        store.dispose()
    text_log = log.read_text(errors="replace")
    assert "Traceback" not in text_log
    assert logged(log, "events.hosting") >= 5  # the restarts did take over, and rebuild


def test_two_event_daemons_on_one_postgresql_and_the_holder_killed(
    pg_url: str, tmp_path: Path, procs: Processes
) -> None:
    store, root = _setup(pg_url, tmp_path)
    epoch = time.time()
    args = daemon_args(pg_url, epoch, "--lease", "1.5", "--event-every", "0.2", speed=SPEED)
    logs = [tmp_path / f"daemon{i}.log" for i in range(3)]
    world = Scenario(store, root, pg_url, epoch, seed=7)
    try:
        daemons = [procs.spawn(root, logs[i], *args) for i in range(2)]
        wait_for("a daemon hosting", lambda: any(logged(g, "events.hosting") for g in logs), 90)
        for _ in range(3):
            world.ingest_round(tmp_path)
            time.sleep(0.5)
        holder = next(i for i in range(2) if logged(logs[i], "events.hosting"))
        kill(daemons[holder])  # the standby takes over once the lease lapses
        daemons[holder] = procs.spawn(root, logs[2], *args)
        for _ in range(3):
            world.ingest_round(tmp_path)
            time.sleep(0.5)
        wait_for("every match handled and every week over", world.done, timeout=120, every=0.3)
        time.sleep(1.0)
        assert [stop(d) for d in daemons] == [0, 0]
        world.check()
    finally:
        store.dispose()
    # the standby, or the restarted daemon, whichever got the lapsed lease first, took over
    assert logged(logs[1 - holder], "events.hosting") + logged(logs[2], "events.hosting") >= 1
    assert not any("Traceback" in g.read_text(errors="replace") for g in logs)


def test_event_daemon_serves_http_events_with_option(tmp_path: Path, procs: Processes) -> None:
    """``daemon --events-port``: events posted to the daemon itself are acted on."""
    import http.client
    import os

    url = f"sqlite:///{tmp_path / 'live.db'}"
    store, root = _setup(url, tmp_path)
    log = tmp_path / "daemon.log"
    epoch = time.time()
    token = "t" * 24
    os.environ["CARE_EVENTS_TOKEN"] = token
    try:
        args = daemon_args(url, epoch, "--events-port", "0", "--event-every", "0.2", speed=1)
        daemon = procs.spawn(root, log, *args)
    finally:
        del os.environ["CARE_EVENTS_TOKEN"]
    world = Scenario(store, root, url, epoch, seed=1, speed=1)
    try:
        wait_for("the endpoint", lambda: logged(log, "events.serving"), 30)
        line = next(x for x in log.read_text().splitlines() if "events.serving" in x)
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        cid = world.customers[0]
        at = world.now() - dt.timedelta(minutes=5)
        body = json.dumps(
            {
                "id": "H-1",
                "type": "withdrawal",
                "customer_id": cid,
                "occurred_at": at.isoformat(),
                "amount": 700000,
            }
        )
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/events",
            body,
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        answer = json.loads(conn.getresponse().read())
        conn.close()
        assert (answer["accepted"], answer["matches"]) == (1, {"acted": 1}), answer
        assert stop(daemon) == 0
        with store.connect() as c:
            windows = list(c.execute(select(action_ledger.c.window)).scalars())
        assert windows == [ledger_window("H-1")]
    finally:
        store.dispose()


def test_kill_9_event_ingest_restarted_acts_on_each_match_once(
    tmp_path: Path, procs: Processes
) -> None:
    """``events ingest`` killed at random moments and run again on the same file: every
    large withdrawal of a backfill (a month old: older than the replay of two windows) is
    acted on exactly once, whether the kill fell before, while or after its chunk was stored
    or acted on."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store, root = _setup(url, tmp_path)
    world = Scenario(store, root, url, time.time(), seed=3, speed=1)
    as_of = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    at = as_of - dt.timedelta(days=30)
    rng = random.Random(11)
    lines = []
    big: list[str] = []
    for n in range(20000):
        if n % 200 == 0:
            e = world._event("withdrawal", world._customer(), at, amount=700000.0)
            big.append(e["id"])
        else:
            cid = rng.choice(world.customers)
            e = world._event("deposit", cid, at + dt.timedelta(seconds=n), amount=100.0)
        lines.append(e)
    path = tmp_path / "backfill.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    args = ["events", "ingest", str(path), "--db", url, "--as-of", as_of.isoformat()]
    log = tmp_path / "ingest.log"

    def stored() -> int:
        with store.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    try:
        kills = 0
        for _ in range(8):
            before = stored()
            if before >= len(lines) or kills == 3:
                break
            proc = procs.spawn(root, log, *args)

            def started(b: int = before, p: Any = proc) -> bool:
                return stored() > b or p.poll() is not None

            wait_for("a chunk stored", started, 120, every=0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                kill(proc)
                kills += 1
        assert kills >= 2
        final = procs.spawn(root, log, *args)
        assert final.wait(timeout=300) == 0
        with store.connect() as conn:
            ledger = Counter(conn.execute(select(action_ledger.c.window)).scalars())
            opened = conn.execute(select(func.count()).select_from(tasks)).scalar_one()
        assert stored() == len(lines)
        assert ledger == Counter(ledger_window(k) for k in big)
        assert opened == len(big)
    finally:
        store.dispose()
    assert "Traceback" not in log.read_text(errors="replace")
