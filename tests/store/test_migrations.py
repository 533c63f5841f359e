"""The engine tables' migrations, on SQLite and PostgreSQL: a store made by release 2026-11
(its exact DDL, frozen in tests/fixtures) upgrades in place with one `init-db`, keeping its
rows, and ends equal to the models; a second `init-db` changes nothing; an empty store is
created at the newest revision; a store with an upgrade pending, or newer than the engine,
is refused with the command that fixes it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from support import REPO, assert_no_traceback, cli

from engine.core.errors import StoreError
from engine.demo.generator import generate
from engine.store import schema
from engine.store.db import create_all, create_engine_tables, open_store, require_tables
from engine.store.migrations import baseline
from engine.store.models import (
    CONSOLE_TABLES,
    ENGINE_TABLES,
    GOVERNANCE_TABLES,
    action_ledger,
    metadata,
    outbox,
    runs,
    suppressions,
    tasks,
)

OURS = {t.name for t in (*ENGINE_TABLES, *CONSOLE_TABLES, *GOVERNANCE_TABLES)}
NOW = dt.datetime(2026, 11, 30, 1, 0)


@pytest.fixture
def old_store(db_url: str) -> Iterator[Engine]:
    """An empty database given release 2026-11's engine tables, with a run, a ledger row and
    a suppression in them."""
    engine = open_store(db_url)
    ddl = (REPO / f"tests/fixtures/store-2026-11.{engine.dialect.name}.sql").read_text()
    statements = [s for s in _without_comments(ddl).split(";\n") if s.strip()]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.execute(
            text(
                'INSERT INTO runs (playbook_id, "window", as_of, content_hash, started_at,'
                " status, matched, acted, suppressed) VALUES ('p', '2026-11-30T09:00', :t,"
                " 'abc', :t, 'done', 2, 1, '{}')"
            ),
            {"t": NOW},
        )
        conn.execute(
            text(
                'INSERT INTO action_ledger (playbook_id, customer_id, "window", run_id,'
                " content_hash, created_at, held_out) VALUES ('p', 'C1', '2026-11-30T09:00', 1,"
                " 'abc', :t, false)"
            ),
            {"t": NOW},
        )
        conn.execute(
            text(
                'INSERT INTO suppressions (run_id, playbook_id, customer_id, "window", reason,'
                " created_at) VALUES (1, 'p', 'C2', '2026-11-30T09:00', 'cooldown', :t)"
            ),
            {"t": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO outbox (ledger_id, action_index, playbook_id, customer_id, channel,"
                " recipient, body, status, attempts, created_at, not_before, idempotency_key,"
                " purpose, priority) VALUES (1, 0, 'p', 'C1', 'sms', '13800000000', 'hello',"
                " 'sent', 1, :t, :t, 'k1', 'service', 50)"
            ),
            {"t": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO tasks (ledger_id, action_index, playbook_id, customer_id,"
                " assignee_role, kind, reason, title, priority, due_at, status, created_at,"
                " escalation_level) VALUES (1, 1, 'p', 'C1', 'manager', 'call', 'p', 'Call',"
                " 'normal', :t, 'open', :t, 0)"
            ),
            {"t": NOW},
        )
    try:
        yield engine
    finally:
        engine.dispose()


def _without_comments(statement: str) -> str:
    return "\n".join(x for x in statement.splitlines() if not x.lstrip().startswith("--"))


def _differences(engine: Engine) -> list[Any]:
    """What the migrated database lacks or has beyond the models, for the engine's tables."""
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in found if _table_of(d) in OURS]


def _table_of(diff: Any) -> str | None:
    first = diff[0] if isinstance(diff, list) else diff
    for part in first[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if hasattr(part, "columns") and name is not None and hasattr(part, "c"):
            return str(name)
        if isinstance(part, str):
            return part
    return None


def test_a_release_2026_11_store_upgrades_in_place(old_store: Engine, db_url: str) -> None:
    assert schema.revision(old_store) is None
    refused = cli("stats", "--db", db_url)  # not yet upgraded: told the one command
    assert refused.returncode == 1 and "E0511" in refused.stderr and "init-db" in refused.stderr
    upgraded = cli("init-db", "--engine-only", "--db", db_url)
    assert_no_traceback(upgraded)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"from release 2026-11 to {schema.head()}" in upgraded.stdout
    assert schema.revision(old_store) == schema.head()
    with old_store.connect() as conn:
        assert conn.execute(select(runs.c.version_hash, runs.c.matched)).all() == [(None, 2)]
        assert conn.execute(select(action_ledger.c.customer_id)).scalars().all() == ["C1"]
        assert conn.execute(select(suppressions.c.customer_id)).scalars().all() == ["C2"]
        assert conn.execute(select(outbox.c.body, outbox.c.status)).all() == [("hello", "sent")]
        assert conn.execute(select(tasks.c.title, tasks.c.status)).all() == [("Call", "open")]
    found = inspect(old_store)
    assert "ix_suppressions_customer" in {i["name"] for i in found.get_indexes("suppressions")}
    assert {t.name for t in GOVERNANCE_TABLES} <= set(found.get_table_names())
    assert _differences(old_store) == []  # the models, exactly
    again = cli("init-db", "--engine-only", "--db", db_url)
    assert again.returncode == 0 and "are current" in again.stdout, again.stdout


def test_an_empty_store_is_created_at_the_newest_revision(db_url: str) -> None:
    created = cli("init-db", "--db", db_url)
    assert created.returncode == 0 and f"revision {schema.head()}" in created.stdout
    engine = open_store(db_url)
    try:
        assert schema.revision(engine) == schema.head()
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_a_pending_upgrade_is_refused_with_the_command_that_fixes_it(
    old_store: Engine, db_url: str
) -> None:
    with old_store.begin() as conn:
        schema.command.stamp(schema._config(conn), schema.BASELINE)
    refused = cli("stats", "--db", db_url)
    assert refused.returncode == 1
    assert "E0511" in refused.stderr and "runner.py init-db" in refused.stderr
    assert cli("init-db", "--engine-only", "--db", db_url).returncode == 0
    assert cli("stats", "--db", db_url).returncode == 0


def test_a_store_newer_than_the_engine_is_refused(db_url: str) -> None:
    assert cli("init-db", "--db", db_url).returncode == 0
    engine = open_store(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    finally:
        engine.dispose()
    for command in (("init-db",), ("stats",)):
        refused = cli(*command, "--db", db_url)
        assert refused.returncode == 1 and "E0510" in refused.stderr, refused.stderr
        assert_no_traceback(refused)


OURS_2026_11 = (*baseline.ENGINE, *baseline.ON_FIRST_USE)


def test_the_baseline_columns_are_release_2026_11s(old_store: Engine) -> None:
    """What init-db compares an unversioned store with is what that release's DDL made."""
    found = inspect(old_store)
    made = {name: tuple(c["name"] for c in found.get_columns(name)) for name in OURS_2026_11}
    assert made == baseline.ENGINE | baseline.ON_FIRST_USE


@pytest.mark.parametrize(
    ("damage", "where", "said"),
    [
        # a bank's own table that happens to share an engine table's name
        ("ALTER TABLE runs ADD COLUMN branch_code VARCHAR(8)", "table runs", "branch_code"),
        # half a store: one table of the release missing
        ("DROP TABLE tasks", "table tasks", "missing beside"),
    ],
    ids=["foreign-column", "half-made"],
)
def test_a_store_that_is_neither_empty_nor_release_2026_11_is_refused_untouched(
    old_store: Engine, db_url: str, damage: str, where: str, said: str
) -> None:
    with old_store.begin() as conn:
        conn.exec_driver_sql(damage)
    before = set(inspect(old_store).get_table_names())
    refused = cli("init-db", "--db", db_url)
    assert_no_traceback(refused)
    assert refused.returncode == 1, refused.stdout
    assert f"{where}: error[E0512]" in refused.stderr and said in refused.stderr
    assert set(inspect(old_store).get_table_names()) == before  # nothing written
    assert schema.revision(old_store) is None


def test_stores_made_from_the_models_are_current(db_url: str) -> None:
    """create_all, create_engine_tables and the demo generator stamp what they make, so the
    commands' revision check reads their stores as current, not as an earlier release's."""
    engine = open_store(db_url)
    try:
        create_engine_tables(engine)
        assert schema.revision(engine) == schema.head()
        require_tables(engine, ENGINE_TABLES)
        assert (
            create_all(engine)
            == f"the store's engine tables are current (revision {schema.head()})"
        )
        generate(engine, customers=5, seed=3, as_of=NOW.date())
        assert schema.revision(engine) == schema.head()
        require_tables(engine, ENGINE_TABLES)
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_an_unstamped_store_is_refused_in_process(old_store: Engine) -> None:
    with pytest.raises(StoreError) as caught:
        require_tables(old_store, ENGINE_TABLES)
    assert caught.value.code == "E0511" and "runner.py init-db" in str(caught.value.hint)
