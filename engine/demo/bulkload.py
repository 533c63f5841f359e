"""Bulk loading of generated rows: raw DBAPI writes, keys and indexes put back at the end.

Kept apart from the generator because it is about the database, not the data: ``executemany``
of multi-row INSERTs on SQLite with journalling relaxed for the load, ``COPY`` on PostgreSQL,
foreign keys dropped during the load and secondary indexes built once at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Index, inspect
from sqlalchemy.schema import AddConstraint

from engine.store.models import CUSTOMER_TABLES

Row = tuple[Any, ...]
Rows = dict[str, list[Row]]

COLUMNS: dict[str, tuple[str, ...]] = {
    table.name: tuple(c.name for c in table.columns if c is not table.autoincrement_column)
    for table in CUSTOMER_TABLES
}
"""Columns each generated row fills, in tuple order (the models' order); surrogate ids are
left to the database, which numbers them in insertion order."""


def write_rows(writer: Writer, rows: Rows, counts: dict[str, int]) -> None:
    for table in COLUMNS:  # parents before children, in case foreign keys are enforced
        batch = rows.get(table)
        if batch:
            writer.write(table, batch)
            counts[table] += len(batch)
    writer.commit()


def drop_foreign_keys(conn: Connection) -> None:
    """PostgreSQL checks a foreign key per row with a trigger, which costs more than the COPY
    itself; checking each constraint once when finish_load adds it back is a single join."""
    if conn.dialect.name != "postgresql":
        return  # SQLite does not enforce them unless asked to; others load row by row anyway
    inspector = inspect(conn)
    for table in CUSTOMER_TABLES:
        for fk in inspector.get_foreign_keys(table.name):
            conn.exec_driver_sql(f'ALTER TABLE {table.name} DROP CONSTRAINT "{fk["name"]}"')


def finish_load(conn: Connection, secondary: list[Index]) -> None:
    """Build the secondary indexes, restore the foreign keys and refresh planner statistics,
    so the store is whole and queries are fast at once."""
    for index in secondary:
        index.create(conn)
    if conn.dialect.name == "postgresql":
        for table in CUSTOMER_TABLES:
            for fk in table.foreign_key_constraints:
                conn.execute(AddConstraint(fk))
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    elif conn.dialect.name == "sqlite":
        # A sampled ANALYZE: the full one reads every index of a multi-GB file.
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
    conn.commit()


# --- writing -------------------------------------------------------------------------------


class Writer:
    """DBAPI ``executemany`` of multi-row INSERTs: the fast path on SQLite (a third faster
    than one row per statement), and correct on any driver."""

    ROWS_PER_INSERT = 50

    def __init__(self, conn: Connection) -> None:
        dbapi = conn.connection.dbapi_connection
        if dbapi is None:  # pragma: no cover - only a closed connection has none
            raise RuntimeError("the connection is closed")
        self._dbapi = dbapi
        self._cursor: Any = dbapi.cursor()  # Any: psycopg's cursor has copy(), DBAPI's not
        self._sql: dict[tuple[str, int], str] = {}
        for table, columns in COLUMNS.items():
            for n in (1, self.ROWS_PER_INSERT):
                marks = _placeholders(conn.dialect.paramstyle, len(columns), n)
                self._sql[table, n] = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks}"

    def write(self, table: str, rows: list[Row]) -> None:
        n = self.ROWS_PER_INSERT
        whole = len(rows) // n * n
        if whole:
            flat = itertools.chain.from_iterable
            batches = [tuple(flat(rows[i : i + n])) for i in range(0, whole, n)]
            self._cursor.executemany(self._sql[table, n], batches)
        if whole < len(rows):
            self._cursor.executemany(self._sql[table, 1], rows[whole:])

    def commit(self) -> None:
        self._dbapi.commit()

    def rollback(self) -> None:
        self._dbapi.rollback()


def _placeholders(style: str, columns: int, rows: int) -> str:
    """``(?, ?), (?, ?)`` in the driver's parameter style, for ``rows`` rows."""
    if style == "qmark":
        marks = ["?"] * (columns * rows)
    elif style == "numeric":
        marks = [f":{k + 1}" for k in range(columns * rows)]
    else:  # format / pyformat
        marks = ["%s"] * (columns * rows)
    groups = (marks[k : k + columns] for k in range(0, len(marks), columns))
    return ", ".join(f"({', '.join(group)})" for group in groups)


class _CopyWriter(Writer):
    """PostgreSQL ``COPY … FROM STDIN`` (psycopg 3): an order of magnitude over INSERTs."""

    def write(self, table: str, rows: list[Row]) -> None:
        # COPY text built in bulk: str() of our str / int / float values is already their COPY
        # text (none holds a tab, newline or backslash), and the only "None" in the text is
        # a NULL, as no generated word is spelt that way.
        text = "\n".join(["\t".join(map(str, row)) for row in rows]) + "\n"
        with self._cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
            copy.write(text.replace("None", "\\N"))


def writer_for(conn: Connection) -> Writer:
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _CopyWriter(conn)
    return Writer(conn)


def begin_bulk_load(conn: Connection) -> Callable[[], None]:
    """Relax SQLite's durability for the load (a half-written demo store is simply redone),
    and return a function that puts the connection back the way open_store set it up."""
    if conn.dialect.name != "sqlite":
        return lambda: None  # nothing to put back
    cache = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
    # Leaving WAL needs exclusive use of the file; if another connection holds it, SQLite keeps
    # WAL and says so, and the load is just slower.
    conn.exec_driver_sql("PRAGMA journal_mode=MEMORY")
    conn.exec_driver_sql("PRAGMA synchronous=OFF")
    conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB for the index builds
    conn.exec_driver_sql("PRAGMA temp_store=MEMORY")

    def restore() -> None:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        conn.exec_driver_sql(f"PRAGMA cache_size={cache}")
        conn.exec_driver_sql("PRAGMA temp_store=DEFAULT")

    return restore
