"""Contract tests of the store layer, run on SQLite and on a real PostgreSQL.

The exactly-once promise rests on two unique constraints (one ledger row per playbook,
customer and window; one outbox row per ledger row and action). If either backend let a
duplicate through, a customer could get the same message twice, so they are checked on both.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from engine.bench.pgcluster import PgCluster
from engine.core.errors import StoreError, UsageError
from engine.store.db import (
    create_all,
    create_engine_tables,
    normalise_url,
    open_store,
    require_tables,
)
from engine.store.models import (
    CUSTOMER_TABLES,
    ENGINE_TABLES,
    action_ledger,
    metadata,
    outbox,
    runs,
)

NOW = dt.datetime(2025, 3, 1, 8, 30)


# --- helpers -------------------------------------------------------------------------------


def _add_run(conn: Connection) -> int:
    result = conn.execute(
        insert(runs).values(
            playbook_id="maturity-reminder",
            window="2025-03-01",
            as_of=NOW,
            content_hash="h" * 64,
            started_at=NOW,
            status="running",
            suppressed={},
        )
    )
    assert result.inserted_primary_key is not None
    run_id: int = result.inserted_primary_key[0]
    return run_id


def _add_ledger(conn: Connection, run_id: int, *, window: str = "2025-03-01") -> int:
    result = conn.execute(
        insert(action_ledger).values(
            playbook_id="maturity-reminder",
            customer_id="C0001",
            window=window,
            run_id=run_id,
            content_hash="h" * 64,
            created_at=NOW,
        )
    )
    assert result.inserted_primary_key is not None
    ledger_id: int = result.inserted_primary_key[0]
    return ledger_id


def _outbox_row(ledger_id: int, action_index: int) -> dict[str, Any]:
    return {
        "ledger_id": ledger_id,
        "action_index": action_index,
        "playbook_id": "maturity-reminder",
        "customer_id": "C0001",
        "channel": "sms",
        "recipient": "13800000000",
        "body": "您的定期存款即将到期",
        "status": "pending",
        "created_at": NOW,
        "not_before": NOW,
    }


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _assert_unique_violation(
    exc: IntegrityError, engine: Engine, constraint: str, table: str, columns: list[str]
) -> None:
    """Check that ``constraint`` (and not some other constraint) rejected the write.

    PostgreSQL names the constraint; SQLite only lists the columns of the unique index.
    """
    if engine.dialect.name == "postgresql":
        assert exc.orig is not None
        assert exc.orig.diag.constraint_name == constraint  # type: ignore[attr-defined]
    else:
        listed = ", ".join(f"{table}.{column}" for column in columns)
        assert f"UNIQUE constraint failed: {listed}" in str(exc.orig)


def _named_tables(error: StoreError) -> set[str]:
    """The table names listed in require_tables' message ("… no table(s) a, b, c")."""
    _, _, listed = error.message.partition("table(s) ")
    return set(listed.split(", "))


# --- the fixtures themselves ---------------------------------------------------------------


def test_db_url_is_a_fresh_empty_database(db_url: str, store: Engine) -> None:
    assert inspect(store).get_table_names() == []
    assert store.url.render_as_string(hide_password=False) == db_url


def test_pg_cluster_creates_and_drops_databases(pg_cluster: PgCluster) -> None:
    name = pg_cluster.create_database()
    assert name in pg_cluster.database_names()
    pg_cluster.drop_database(name)
    assert name not in pg_cluster.database_names()


# --- schema --------------------------------------------------------------------------------


def test_create_all_creates_every_table(store: Engine) -> None:
    create_all(store)

    # and Alembic's revision table: the new store counts as current (tests/store/test_migrations)
    assert set(inspect(store).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_create_all_is_idempotent(store: Engine) -> None:
    create_all(store)
    create_all(store)

    assert set(inspect(store).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_create_engine_tables_creates_only_engine_tables(store: Engine) -> None:
    create_engine_tables(store)

    found = set(inspect(store).get_table_names())
    assert found == {*(t.name for t in ENGINE_TABLES), "alembic_version"}


def test_require_tables_names_every_missing_table(store: Engine) -> None:
    with pytest.raises(StoreError) as caught:
        require_tables(store)

    assert caught.value.code == "E0104"
    assert _named_tables(caught.value) == {t.name for t in CUSTOMER_TABLES}
    assert "\n" not in caught.value.message


def test_require_tables_names_only_what_is_missing(store: Engine) -> None:
    create_engine_tables(store)
    require_tables(store, ENGINE_TABLES)  # all present: no error

    with pytest.raises(StoreError) as caught:
        require_tables(store, [*ENGINE_TABLES, *CUSTOMER_TABLES])

    assert _named_tables(caught.value) == {t.name for t in CUSTOMER_TABLES}


def test_require_tables_passes_after_create_all(store: Engine) -> None:
    create_all(store)

    require_tables(store)
    require_tables(store, ENGINE_TABLES)


# --- constraints ---------------------------------------------------------------------------


def test_ledger_allows_one_row_per_playbook_customer_window(store: Engine) -> None:
    create_all(store)
    with store.begin() as conn:
        run_id = _add_run(conn)
        _add_ledger(conn, run_id)

    with pytest.raises(IntegrityError) as caught, store.begin() as conn:
        _add_ledger(conn, run_id)

    _assert_unique_violation(
        caught.value,
        store,
        "uq_ledger_once",
        "action_ledger",
        ["playbook_id", "customer_id", "window"],
    )
    assert _count(store, action_ledger) == 1


def test_ledger_accepts_the_same_customer_in_another_window(store: Engine) -> None:
    create_all(store)
    with store.begin() as conn:
        run_id = _add_run(conn)
        _add_ledger(conn, run_id, window="2025-03-01")
        _add_ledger(conn, run_id, window="2025-03-02")

    assert _count(store, action_ledger) == 2


def test_outbox_allows_one_row_per_ledger_row_and_action(store: Engine) -> None:
    create_all(store)
    with store.begin() as conn:
        ledger_id = _add_ledger(conn, _add_run(conn))
        conn.execute(insert(outbox).values(_outbox_row(ledger_id, 0)))
        conn.execute(insert(outbox).values(_outbox_row(ledger_id, 1)))  # next action: fine

    with pytest.raises(IntegrityError) as caught, store.begin() as conn:
        conn.execute(insert(outbox).values(_outbox_row(ledger_id, 0)))

    _assert_unique_violation(
        caught.value, store, "uq_outbox_action", "outbox", ["ledger_id", "action_index"]
    )
    assert _count(store, outbox) == 2


def test_ledger_rejects_a_row_without_its_run(store: Engine) -> None:
    """Both backends enforce foreign keys (SQLite only when the connection asks for it)."""
    create_all(store)

    with pytest.raises(IntegrityError), store.begin() as conn:
        _add_ledger(conn, run_id=999)

    assert _count(store, action_ledger) == 0


def test_postgres_quotes_the_reserved_column_window(pg_url: str) -> None:
    """``window`` is a reserved word in PostgreSQL; the schema must still round-trip it."""
    engine = open_store(pg_url)
    try:
        create_all(engine)
        with engine.begin() as conn:
            _add_ledger(conn, _add_run(conn), window="2025-W09")
        with engine.connect() as conn:
            assert conn.execute(select(action_ledger.c.window)).scalar_one() == "2025-W09"
    finally:
        engine.dispose()


# --- bad input to open_store ---------------------------------------------------------------


def test_open_store_rejects_an_unknown_scheme() -> None:
    with pytest.raises(UsageError) as caught:
        open_store("foo://x")

    assert caught.value.code == "E0102"
    assert "'foo'" in caught.value.message


def test_open_store_rejects_a_dialect_whose_driver_is_not_shipped() -> None:
    """mysql:// is a dialect SQLAlchemy knows, but without its driver: a usage error."""
    with pytest.raises(UsageError) as caught:
        open_store("mysql://u@h/d")

    assert caught.value.code == "E0102"


def test_open_store_rejects_an_unreadable_url() -> None:
    with pytest.raises(UsageError) as caught:
        open_store("not a url")

    assert caught.value.code == "E0101"


def test_open_store_reports_unreachable_postgres_in_one_line() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://nobody@127.0.0.1:1/x")

    message = caught.value.message
    assert caught.value.code == "E0103"
    assert "\n" not in message
    assert message.startswith("cannot reach database postgresql+psycopg://nobody@127.0.0.1:1/x")
    assert "refused" in message.lower()


def test_open_store_hides_the_password_of_an_unreachable_store() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://nobody:s3cret@127.0.0.1:1/x")

    assert "s3cret" not in caught.value.render()
    assert "***" in caught.value.message


def test_open_store_reports_an_uncreatable_sqlite_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{blocker}/sub/store.db")

    assert caught.value.code == "E0103"
    assert "\n" not in caught.value.message


def test_open_store_creates_the_sqlite_folder(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "store.db"

    engine = open_store(f"sqlite:///{target}")
    engine.dispose()

    assert target.parent.is_dir()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg2://u:p@h:5433/d", "postgresql+psycopg://u:p@h:5433/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///data/store.db", "sqlite:///data/store.db"),
    ],
)
def test_normalise_url_maps_postgres_spellings_to_psycopg3(given: str, expected: str) -> None:
    assert normalise_url(given) == expected
