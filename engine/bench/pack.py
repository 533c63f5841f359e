"""Section 1: the whole shipped pack, dry-run and real run, against one scan of every table
the pack reads, at the database's own speed (the sqlite3 shell; ``COPY … TO`` on
PostgreSQL)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from typing import Any

from sqlalchemy import Engine, inspect

from engine.bench.figures import cpu_ratio, ratio, repeat
from engine.bench.lab import Lab
from engine.bench.stores import wipe_engine_rows
from engine.conditions.facts import used
from engine.execution.executor import Outcome
from engine.execution.sinks import RecordingSink, StoreSink
from engine.store.models import action_ledger, consents, outbox, tasks

_FROM = re.compile(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def tables_read(lab: Lab) -> list[str]:
    """Every table a run of the pack reads: the customer table, the tables behind the fields
    every audience row carries (tags, lookups, SQL expressions), the related records and histories
    the audiences name, and the policy's tables (consent, ledger, outbox, tasks)."""
    d = lab.dictionary
    names = {d.customer_table}
    for f in d:
        if f.tags is not None:
            names.add(f.tags.table)
        if f.sql is not None:
            names.update(_FROM.findall(f.sql))
        if f.lookup is not None:
            names.add(f.lookup.table)
    for p in (*lab.scheduled, *lab.event_driven):
        related, changes = used(p.audience)
        names.update(d.related[r].table for r in related)
        names.update(d.changes[c].table for c in changes)
    names.update(t.name for t in (consents, action_ledger, outbox, tasks))
    present = set(inspect(lab.store).get_table_names())
    return sorted(names & present)


def scan(store: Engine, names: list[str]) -> str:
    """Read every row of every table once, as the database itself does it; the method used."""
    if store.dialect.name == "postgresql":
        raw = store.raw_connection()
        try:
            with raw.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                for name in names:
                    with cur.copy(f'COPY "{name}" TO STDOUT') as copy:
                        for _block in copy:
                            pass
            raw.rollback()
        finally:
            raw.close()
        return "COPY … TO STDOUT (psycopg)"
    path = store.url.database
    shell = shutil.which("sqlite3")
    if shell is None or path is None:
        with store.connect() as conn:
            for name in names:
                cursor = conn.connection.driver_connection.execute(f'SELECT * FROM "{name}"')  # type: ignore[union-attr]
                while cursor.fetchmany(10_000):
                    pass
        return "Python sqlite3 module, fetchmany"
    # every value of every row read inside SQLite, nothing printed: formatting rows as text
    # for output would make the floor twice as slow, and the ratios look better than they are
    with store.connect() as conn:
        sums = {n: " + ".join(f"length({_q(c)})" for c in _columns(conn, n)) for n in names}
    script = "".join(f"SELECT sum({total}) FROM {_q(n)};\n" for n, total in sums.items())
    subprocess.run(
        [shell, "-batch", "-readonly", path],
        input=script,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return "sqlite3 shell, sum(length(every column)) over each table"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(conn: Any, table: str) -> list[str]:
    return [str(r[1]) for r in conn.exec_driver_sql(f"PRAGMA table_info({_q(table)})")]


def _pack(lab: Lab, dry_run: bool, per_playbook: dict[str, float]) -> list[Outcome]:
    executor = lab.executor()
    previewed: Counter[tuple[str, str]] = Counter()
    outcomes = []
    shared = executor.one_pass(lab.scheduled)  # as dry-run and run share work over a pack
    for playbook in lab.scheduled:
        sink = RecordingSink(mask=True, contacts=previewed) if dry_run else StoreSink(lab.store)
        started = time.perf_counter()
        clock = lab.clock(playbook)
        outcomes.append(
            executor.execute(playbook, clock, sink, keep_details=dry_run, shared=shared)
        )
        per_playbook[playbook.id] = round(time.perf_counter() - started, 4)
    return outcomes


def real_run(lab: Lab) -> list[Outcome]:
    """One real run of the whole pack in this process, as this section times it: the
    unpartitioned reference the partitioned runs (section 9) are checked against."""
    return _pack(lab, False, {})


def measure(lab: Lab, repeats: int) -> dict[str, Any]:
    names = tables_read(lab)
    method = [""]

    def baseline() -> None:
        method[0] = scan(lab.store, names)

    base, _ = repeat(baseline, repeats)
    dry_times: dict[str, float] = {}
    run_times: dict[str, float] = {}
    wipe = lambda: wipe_engine_rows(lab.store)  # noqa: E731
    dry, outcomes = repeat(lambda: _pack(lab, True, dry_times), repeats, before=wipe)
    real, ran = repeat(lambda: _pack(lab, False, run_times), repeats, before=wipe)
    return {
        "tables": names,
        "baseline_method": method[0],
        "playbooks": [
            {
                "id": o.playbook.id,
                "matched": o.matched_count,
                "acted": o.acted,
                "dry_run_s": dry_times[o.playbook.id],
                "run_s": run_times[o.playbook.id],
                "run_acted": r.acted,
                "effects": dict(r.effects),
            }
            for o, r in zip(outcomes, ran, strict=True)
        ],
        "scan": base.as_dict(),
        "dry_run": dry.as_dict(),
        "run": real.as_dict(),
        "dry_run_ratio": ratio(dry, base),
        "run_ratio": ratio(real, base),
        "dry_run_cpu_ratio": cpu_ratio(dry, base),
        "run_cpu_ratio": cpu_ratio(real, base),
        "target_ratio": 5.0,
    }
