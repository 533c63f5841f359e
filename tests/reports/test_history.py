"""`history CUSTOMER_ID` after real runs of the pack: every action, task, suppression and
holdout of the customer, with the version that decided it, local times, masked; showing
personal data is recorded in the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from support import AS_OF_DATE, cli

from engine.store import audit
from engine.store.db import open_store
from engine.store.models import (
    action_ledger,
    customers,
    outbox,
    run_holds,
    suppressions,
    tasks,
)

pytestmark = pytest.mark.parametrize("demo_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def ran(demo_url: str) -> Iterator[Engine]:
    """Three days of real runs of the whole pack on the module's demo store."""
    for day in range(3):
        result = cli("run", "--db", demo_url, "--as-of", f"{AS_OF_DATE.replace(day=23 + day)}")
        assert result.returncode in (0, 1), result.stderr
    store = open_store(demo_url)
    try:
        yield store
    finally:
        store.dispose()


def busiest(store: Engine) -> str:
    """The customer with the most recorded decisions: messages, tasks and suppressions."""
    counts: dict[str, int] = {}
    with store.connect() as conn:
        for table in (outbox, tasks, suppressions):
            rows = conn.execute(
                select(table.c.customer_id, func.count()).group_by(table.c.customer_id)
            )
            for customer_id, n in rows:
                counts[customer_id] = counts.get(customer_id, 0) + n * (3 if table is tasks else 1)
        for text in conn.execute(select(run_holds.c.customers)).scalars():
            for customer_id in text.split():
                counts[customer_id] = counts.get(customer_id, 0) + 1
    return max(sorted(counts), key=lambda c: counts[c])


def test_history_lists_every_decision_with_its_version_masked(ran: Engine, demo_url: str) -> None:
    customer_id = busiest(ran)
    result = cli("history", customer_id, "--db", demo_url, "--format", "json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    with ran.connect() as conn:
        ledger = (
            conn.execute(select(action_ledger).where(action_ledger.c.customer_id == customer_id))
            .mappings()
            .all()
        )
        n_messages = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.customer_id == customer_id)
        ).scalar_one()
        n_tasks = conn.execute(
            select(func.count()).select_from(tasks).where(tasks.c.customer_id == customer_id)
        ).scalar_one()
        n_held = conn.execute(
            select(func.count())
            .select_from(suppressions)
            .where(suppressions.c.customer_id == customer_id)
        ).scalar_one()
        # and every compact list naming the customer, read whole (not by bucket)
        n_held += sum(
            customer_id in text.split("\n")
            for text in conn.execute(select(run_holds.c.customers)).scalars()
        )
        person = conn.execute(select(customers).where(customers.c.id == customer_id)).one()
    kinds = [e["kind"] for e in found["entries"]]
    assert n_messages + n_tasks > 0 and len(kinds) >= 3, kinds
    assert kinds.count("task") == n_tasks
    assert sum(k in ("sms", "email", "webhook") for k in kinds) == n_messages
    assert kinds.count("suppressed") == n_held
    assert kinds.count("held_out") == sum(1 for r in ledger if r["held_out"])
    versions = {r["content_hash"][:12] for r in ledger}
    assert {e["version"] for e in found["entries"] if "version" in e} <= versions
    assert all(e["at"].endswith("+08:00") for e in found["entries"])
    assert [e["at"] for e in found["entries"]] == sorted(e["at"] for e in found["entries"])
    assert person.phone not in result.stdout and person.name not in result.stdout
    assert found["masked"] is True


def test_showing_personal_data_is_recorded(ran: Engine, demo_url: str) -> None:
    customer_id = busiest(ran)
    shown = cli("history", customer_id, "--db", demo_url, "--show-personal-data")
    assert shown.returncode == 0 and "PERSONAL DATA SHOWN" in shown.stdout
    [entry] = audit.entries(ran, customer_id=customer_id, action="personal_data.show")
    assert entry["actor"].startswith("cli:") and entry["subject"] == "history"
    assert audit.verify(ran).intact


def test_an_unknown_customer_has_no_history(ran: Engine, demo_url: str) -> None:
    result = cli("history", "C404", "--db", demo_url)
    assert result.returncode == 0
    assert "not in the customer tables" in result.stdout
    assert "no decisions recorded" in result.stdout
