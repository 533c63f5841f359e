"""Compact holds: the customers a real run holds back by its own ``max_per_run`` are listed per
run and bucket in ``run_holds`` instead of a ``suppressions`` row each. Nothing of what the run
could say per customer is lost: ``held RUN`` lists them, the contact history finds each one,
and lists that fill up mid-run are written in their batch's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from support import AS_OF, SETTINGS, TZ, cli, dictionary, playbook_from_text, validator

from engine.bench.partitioned import Work
from engine.core.clock import Clock
from engine.execution.executor import Executor, Outcome
from engine.execution.sinks import RecordingSink, StoreSink
from engine.reports.history import history, run_holds_of, run_holds_text
from engine.store import holds
from engine.store.models import run_holds, suppressions

CAPPED = """\
id: capped-holds
title: 测试 compact holds
trigger: {schedule: "0 9 * * *"}
audience:
  customer_id: {is_null: false}
actions:
  - tag: {add: holds}
limits: {max_per_run: 7}
"""


@pytest.fixture
def capped(demo_store: Engine, tmp_path: Path) -> Iterator[tuple[Engine, Outcome, Outcome]]:
    """One dry-run and one real run of a playbook capped at 7 over every customer."""
    ex = Executor(demo_store, SETTINGS, dictionary(), validator().renderer)
    p = playbook_from_text(tmp_path, CAPPED)
    preview = ex.execute(p, Clock.at(AS_OF, TZ), RecordingSink(), keep_details=True)
    real = ex.execute(p, Clock.at(AS_OF, TZ), StoreSink(demo_store), keep_details=True)
    yield demo_store, preview, real


def capped_ids(o: Outcome) -> list[str]:
    return sorted(d.customer_id for d in o.decisions if (None, "max_per_run") in d.suppressed)


def test_a_capped_run_lists_its_holds_compactly_and_loses_none(
    capped: tuple[Engine, Outcome, Outcome],
) -> None:
    store, preview, real = capped
    held = capped_ids(real)
    assert held == capped_ids(preview) and len(held) == real.held_back_by["max_per_run"] > 1000
    with store.connect() as conn:
        per_customer = conn.execute(
            select(func.count())
            .select_from(suppressions)
            .where(suppressions.c.run_id == real.run_id)
        ).scalar_one()
        rows = conn.execute(select(run_holds).where(run_holds.c.run_id == real.run_id)).mappings()
        rows = [dict(r) for r in rows]
    assert per_customer == 0
    # a row per bucket that holds anyone (the store is small: no list reached a full chunk)
    assert 0 < len(rows) <= holds.HOLD_BUCKETS
    listed = [c for r in rows for c in holds.decode(r["customers"])]
    assert sorted(listed) == held  # each customer once, in the bucket of its id
    assert all(holds.bucket(c) == r["bucket"] for r in rows for c in holds.decode(r["customers"]))
    assert sum(r["held"] for r in rows) == len(held)
    found = run_holds_of(store, real.run_id or 0)
    assert found is not None and found.listed == {"max_per_run": held}
    assert found.counted["max_per_run"] == len(held)
    # the partition benchmark's check of equal work reads the cap from the compact lists
    assert Work.read(store).capped == {"capped-holds"}


def test_the_history_of_a_held_customer_says_so_and_no_one_else_is_named(
    capped: tuple[Engine, Outcome, Outcome],
) -> None:
    store, _, real = capped
    held = capped_ids(real)
    acted = [d.customer_id for d in real.decisions if d.effects]
    one = held[len(held) // 2]
    entries = history(store, one, TZ).entries
    assert [(e["kind"], e["playbook"], e["reason"]) for e in entries] == [
        ("suppressed", "capped-holds", "max_per_run")
    ]
    assert not [e for e in history(store, acted[0], TZ).entries if e["kind"] == "suppressed"]
    # an id that differs only in case is another customer (SQLite's LIKE ignores case)
    assert not history(store, one.lower(), TZ).entries


def test_full_lists_are_written_in_their_batch_and_the_rest_at_the_end(
    demo_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(holds, "HOLD_CHUNK", 5)
    ex = Executor(demo_store, SETTINGS, dictionary(), validator().renderer)
    p = playbook_from_text(tmp_path, CAPPED)
    written_before_the_end: list[int] = []

    class Watching(StoreSink):
        def finish(self, info, totals, *, error):  # type: ignore[no-untyped-def]
            with self.engine.connect() as conn:
                written_before_the_end.append(
                    conn.execute(
                        select(func.count()).where(run_holds.c.run_id == info.run_id)
                    ).scalar_one()
                )
            super().finish(info, totals, error=error)

    real = ex.execute(
        p, Clock.at(AS_OF, TZ), Watching(demo_store), keep_details=True, batch_size=100
    )
    with demo_store.connect() as conn:
        rows = conn.execute(
            select(run_holds.c.held, run_holds.c.customers).where(run_holds.c.run_id == real.run_id)
        ).all()
    assert written_before_the_end[0] > 0  # full lists went with their batches
    assert len(rows) > written_before_the_end[0]  # the rest with the run's end
    assert all(0 < held <= 5 for held, _ in rows)
    assert sorted(c for _, text in rows for c in holds.decode(text)) == capped_ids(real)


def test_held_lists_a_run_on_demand_and_refuses_an_unknown_run(
    capped: tuple[Engine, Outcome, Outcome], demo_url: str
) -> None:
    _, _, real = capped
    result = cli("held", str(real.run_id), "--db", demo_url, "--format", "json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["playbook_id"] == "capped-holds"
    assert found["listed"]["max_per_run"] == capped_ids(real)
    text = cli("held", str(real.run_id), "--db", demo_url, "--reason", "max_per_run")
    assert text.returncode == 0, text.stderr
    assert f"max_per_run: {len(capped_ids(real)):,} customers" in text.stdout
    missing = cli("held", "987654", "--db", demo_url)
    assert missing.returncode == 1 and "E0314" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_held_says_why_a_counted_reason_is_not_listed(
    capped: tuple[Engine, Outcome, Outcome], tmp_path: Path
) -> None:
    """A rerun in the same window counts the customers already done without listing them
    (they repeat on every rerun); ``held`` says so instead of an empty list."""
    store, _, first = capped
    ex = Executor(store, SETTINGS, dictionary(), validator().renderer)
    again = ex.execute(playbook_from_text(tmp_path, CAPPED), Clock.at(AS_OF, TZ), StoreSink(store))
    assert again.held_back_by["already_done"] == first.acted == 7
    found = run_holds_of(store, again.run_id or 0)
    assert found is not None and "already_done" not in found.listed
    text = run_holds_text(found)
    assert "already_done: 7 customers, counted, not listed: acted on by an earlier run" in text
    assert f"max_per_run: {again.held_back_by['max_per_run']:,} customers" in text
