"""Four partitioned daemons on one PostgreSQL, one killed with SIGKILL mid-slot and never
restarted: every customer is acted on exactly once, and the union of the partitions'
decisions is one unpartitioned run of the same slots on a copy of the store.

Real processes on a rehearsal clock (:mod:`daemon_support`); the copy is a ``CREATE DATABASE
… TEMPLATE`` of the store taken before the daemons start.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (
    Processes,
    daemon_args,
    deployment,
    enabled_since_yesterday,
    kill,
    logged,
    playbook_yaml,
    stop,
    wait_for,
)
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from support import TZ, cli, dictionary

from engine.bench.pgcluster import PgCluster
from engine.core.clock import Clock
from engine.demo.generator import generate
from engine.execution.executor import Executor
from engine.execution.sinks import StoreSink
from engine.playbook.validation import Validator
from engine.rendering.renderer import Renderer
from engine.store.db import open_store
from engine.store.models import action_ledger, outbox, partition_scheme, run_claims, tasks

pytestmark = pytest.mark.slow

K = 4
CUSTOMERS = 3000
EVERY_FOUR_HOURS = "0 */4 20 11 *"  # 6 slots on 20 Nov 2026
SLOTS = [f"2026-11-20T{h:02d}:00" for h in range(0, 24, 4)]
CAP = 50
CAPPED = "    - tier: {in: [mass, gold]}\n"  # far more than 50 customers: the cap binds


@pytest.fixture
def procs() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


def _copy_database(cluster: PgCluster, url: str) -> tuple[str, str]:
    """A copy of the store at ``url`` (no connection may be open to it): (name, url)."""
    source = make_url(url).database
    name = f"{source}_reference"
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
    finally:
        admin.dispose()
    return name, cluster.url(name)


def _ledger(store: Engine) -> Counter[tuple[str, str, str]]:
    c = action_ledger.c
    with store.connect() as conn:
        rows = conn.execute(select(c.playbook_id, c.customer_id, c.window)).all()
    return Counter((str(p), str(cid), str(w)) for p, cid, w in rows)


def _counts(store: Engine, playbook_id: str) -> tuple[int, int]:
    """Messages and tasks of one playbook (a capped one may pick other customers, with other
    consents, when partitioned: only its numbers per slot must agree)."""
    mine = action_ledger.c.playbook_id == playbook_id
    with store.connect() as conn:
        return (
            len(conn.execute(select(outbox.c.id).join(action_ledger).where(mine)).all()),
            len(conn.execute(select(tasks.c.id).join(action_ledger).where(mine)).all()),
        )


def _claims(store: Engine) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(run_claims)).all())


def test_four_partitioned_daemons_one_killed_mid_slot_act_on_every_customer_once(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, procs: Processes
) -> None:
    live = open_store(pg_url)
    generate(live, customers=CUSTOMERS, seed=11, as_of=dt.date(2026, 11, 20))
    pbs = {
        "broad.yaml": playbook_yaml("part-broad", EVERY_FOUR_HOURS),
        "capped.yaml": playbook_yaml("part-capped", EVERY_FOUR_HOURS, audience=CAPPED)
        + f"limits:\n  max_per_run: {CAP}\n",
    }
    settings = deployment(tmp_path / "deploy", pbs)
    for p in ("part-broad", "part-capped"):
        enabled_since_yesterday(live, p, EVERY_FOUR_HOURS)
    live.dispose()  # a TEMPLATE copy needs the source without connections
    ref_name, ref_url = _copy_database(pg_cluster, pg_url)
    live = open_store(pg_url)
    try:
        # the clock reaches the first slot 10 s from now: the four daemons start meanwhile,
        # then four schedule hours pass every 2 s
        epoch = time.time() + 10
        args = daemon_args(pg_url, epoch, "--lease", "3", "--tick", "0.3", speed=7200)
        logs = [tmp_path / f"daemon{k}.log" for k in range(1, K + 1)]
        daemons = [
            procs.spawn(settings.root, log, *args, "--partition", f"{k}/{K}")
            for k, log in enumerate(logs, start=1)
        ]
        victim = daemons[1]  # partition 2/4
        me = f":{victim.pid}:"

        def victim_running() -> bool:
            return any(
                c.status == "running" and me in (c.owner or "") and c.partition_no == 2
                for c in _claims(live)
            )

        wait_for("partition 2's daemon running a slot", victim_running, timeout=90, every=0.005)
        kill(victim)  # SIGKILL mid-slot; it never comes back
        left = [c for c in _claims(live) if me in (c.owner or "") and c.status == "running"]
        assert left, "the daemon finished its slot before the kill landed"

        def all_done() -> bool:
            done = {
                (c.playbook_id, c.slot, c.partition_no) for c in _claims(live) if c.status == "done"
            }
            return all(
                (p, s, k) in done
                for p in ("part-broad", "part-capped")
                for s in SLOTS
                for k in range(1, K + 1)
            )

        wait_for("every slot of every partition done", all_done, timeout=180, every=0.3)

        # status shows the scheme and each partition's owner: none for the killed one
        shown: dict[str, Any] = {}

        def orphan_shown() -> bool:
            result = cli("status", "--db", pg_url, "--format", "json")
            shown.update(json.loads(result.stdout)["partitions"] or {})
            return shown.get("parts", [{}] * 2)[1].get("daemons") == []

        wait_for("status to show partition 2 without a daemon", orphan_shown, timeout=60, every=1)
        assert shown["count"] == K
        assert [len(part["daemons"]) for part in shown["parts"]] == [1, 0, 1, 1]
        assert all(part["claims"].get("done", 0) > 0 for part in shown["parts"])
        words = cli("status", "--db", pg_url).stdout
        assert f"Partitions: customers split {K} ways" in words
        assert "2/4    NO LIVE DAEMON" in words, words
        assert [stop(d) for i, d in enumerate(daemons) if i != 1] == [0, 0, 0]
        claims = _claims(live)
        assert {c.status for c in claims} == {"done"}
        assert len(claims) == 2 * len(SLOTS) * K  # per (playbook, slot, partition), once
        resumed = [c for c in claims if c.id in {x.id for x in left}]
        assert resumed and all(c.attempts >= 2 and me not in c.owner for c in resumed)
        with live.connect() as conn:
            assert conn.execute(select(partition_scheme.c.partitions)).scalar() == K
        actual, actual_counts = _ledger(live), _counts(live, "part-broad")

        # another K, or no partition, on this database: refused before anything runs
        other = cli("daemon", "--db", pg_url, "--partition", "1/3", "--no-dispatch")
        assert other.returncode == 1 and "E1041" in other.stderr, other.stderr
        none = cli("daemon", "--db", pg_url, "--no-dispatch")
        assert none.returncode == 1 and "E1042" in none.stderr, none.stderr
    finally:
        live.dispose()
    text_logs = "".join(log.read_text(errors="replace") for log in logs)
    assert "Traceback" not in text_logs
    assert logged(logs[0], "daemon.started") and "claim.resumed" in text_logs

    # the same slots, in order, unpartitioned, on the copy taken before the daemons started
    reference = open_store(ref_url)
    try:
        validator = Validator(settings, dictionary())
        playbooks = validator.validate_paths([settings.playbooks_dir]).playbooks
        renderer = Renderer(settings.templates_dir, dictionary())
        executor = Executor(reference, settings, dictionary(), renderer)
        for slot in SLOTS:
            at = dt.datetime.fromisoformat(slot).replace(tzinfo=TZ)
            for playbook in sorted(playbooks, key=lambda p: p.id):
                executor.execute(playbook, Clock.at(at, TZ), StoreSink(reference))
        wanted, wanted_counts = _ledger(reference), _counts(reference, "part-broad")
    finally:
        reference.dispose()
        pg_cluster.drop_database(ref_name)
    assert max(actual.values()) == 1  # every customer once per (playbook, window)
    broad = {k for k in actual if k[0] == "part-broad"}
    assert broad == {k for k in wanted if k[0] == "part-broad"}  # the very same customers
    assert len(broad) > 300
    # the capped playbook: its partitions' shares add up to the cap in every slot
    per_slot = Counter(w for p, _, w in actual if p == "part-capped")
    assert per_slot == Counter(w for p, _, w in wanted if p == "part-capped")
    assert set(per_slot.values()) == {CAP}
    assert sum(actual.values()) == sum(wanted.values())
    assert actual_counts == wanted_counts
