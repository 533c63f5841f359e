"""Opening the store from a URL, with errors a person can act on.

Any SQLAlchemy URL works. ``postgresql://`` is read as psycopg 3 (the driver we ship), and a
SQLite file's folder is created on first use so the embedded default needs no setup.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, Table, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from engine.core.errors import StoreError, UsageError, first_line
from engine.store import schema
from engine.store.keyhash import register_sqlite
from engine.store.models import (
    CUSTOMER_TABLES,
    ENGINE_TABLES,
    GOVERNANCE_TABLES,
    metadata,
    simulations,
)

_POSTGRES_ALIASES = {"postgresql", "postgres", "postgresql+psycopg2"}


def normalise_url(url: str) -> str:
    """Map the common spellings of a PostgreSQL URL onto the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(
            f"cannot read database URL {url!r}",
            code="E0101",
            hint="write it as sqlite:///path/to/file.db or postgresql://user@host/dbname",
        ) from exc
    if parsed.drivername in _POSTGRES_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def open_store(url: str, *, create: bool = True) -> Engine:
    """Create an engine for ``url`` and prove it answers, or raise a one-line error.

    ``create=False`` refuses a SQLite file that does not exist yet: a command that only reads
    or adds to a store must not leave an empty database behind a mistyped path."""
    url = normalise_url(url)
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    database = str(parsed.database or "")
    is_file = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file and not create and not Path(database).exists():
        raise StoreError(
            f"no database file {database}",
            code="E0106",
            hint="check the path; a new store is made by `python runner.py demo-data` or "
            "`python runner.py init-db`",
        )
    if is_file:
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of database {shown}: {first_line(exc)}",
                code="E0103",
                hint="point --db at a writable path",
            ) from exc
    try:
        engine = create_engine(url, future=True)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        # ImportError: a dialect SQLAlchemy knows (mysql://) whose driver we do not ship.
        raise UsageError(
            f"unknown database URL scheme {parsed.drivername!r}",
            code="E0102",
            hint="supported: sqlite:///FILE and postgresql://USER@HOST/DB",
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect():
            pass
    except (OperationalError, SQLAlchemyError, OSError) as exc:
        engine.dispose()
        raise StoreError(
            f"cannot reach database {shown}: {first_line(exc)}",
            code="E0103",
            hint="check the host, port, database name and credentials",
        ) from exc
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the daemon read while a run writes; a busy timeout instead of instant failures.
    # SQLite ignores FOREIGN KEY clauses unless asked per connection; PostgreSQL always
    # enforces them, and the two backends must accept and reject the same writes.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # the partition hash PostgreSQL computes from md5 (engine/store/keyhash.py)
    register_sqlite(dbapi_connection)


def create_all(engine: Engine) -> str:
    """Create every table that does not exist yet (customer and engine tables), upgrading the
    engine's first if the store has older ones; says what was done, in one line."""
    return _create(engine, list(metadata.sorted_tables))


def drop_all(engine: Engine) -> None:
    metadata.drop_all(engine)


def mark_demo_store(engine: Engine) -> None:
    """A fresh, empty ``simulations`` table: this store was generated, so simulated outcomes
    (``demo-outcomes``) may be written into it. Old simulation rows go with the old store."""
    simulations.drop(engine, checkfirst=True)
    simulations.create(engine)


def is_demo_store(engine: Engine) -> bool:
    return inspect(engine).has_table(simulations.name)


def create_engine_tables(engine: Engine) -> str:
    """Create only the engine-owned tables: for a store whose customer data is the bank's."""
    return _create(engine, list(ENGINE_TABLES))


def _create(engine: Engine, tables: list[Table]) -> str:
    # Tables created from the models are at the newest revision, and stamped so: a store is
    # never left with engine tables and no revision, which commands read as an earlier
    # release's. An existing store is upgraded first (or refused), so the tables created
    # next are the only ones it lacks.
    done = schema.upgrade(engine)
    metadata.create_all(engine, tables=tables)
    if done is not None:
        return done
    schema.stamp_head(engine)
    return f"tables created (revision {schema.head()})"


def create_governance_tables(engine: Engine) -> None:
    """Create the governance tables (versions, their events, the live pointers) if missing."""
    metadata.create_all(engine, tables=list(GOVERNANCE_TABLES))


def require_tables(engine: Engine, tables: Iterable[Table] = CUSTOMER_TABLES) -> None:
    """Raise one clear error naming every table the store lacks; a store made by an earlier
    release, or upgraded by a later one, is told the command that fixes it instead."""
    tables = list(tables)
    ours = any(t in ENGINE_TABLES for t in tables)
    if ours:
        schema.require_current(engine)  # an upgrade pending, or a newer engine's store
    present = set(inspect(engine).get_table_names())
    missing = [t.name for t in tables if t.name not in present]
    if missing and ours and "runs" in present:
        raise StoreError(
            f"the store was made by an earlier release: it has no table(s) {', '.join(missing)}",
            code="E0511",
            hint="upgrade it in place, data kept: `python runner.py init-db` (with the same --db)",
        )
    if missing:
        raise StoreError(
            f"the store has no table(s) {', '.join(missing)}",
            code="E0104",
            hint="create the demo store with `python runner.py demo-data`, add the engine's "
            "own tables to a bank's store with `python runner.py init-db --engine-only`, "
            "or point --db at a store that has them",
        )
