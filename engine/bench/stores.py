"""Demo stores for the benchmark: built once per size, reused while they match.

A store built by :func:`engine.demo.generator.generate` is a pure function of (customers, seed,
as_of), so a later run can reuse it: a small ``bench_demo`` table, outside the engine's
metadata (``generate`` drops every table it knows and leaves this one), records what was
built, and is written only after the build completed.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import Engine, inspect, text

from engine.core.errors import StoreError
from engine.demo.generator import generate
from engine.store.models import CUSTOMER_TABLES, ENGINE_TABLES, metadata
from engine.store.schema import upgrade

MARKER = "bench_demo"
SEED = 7


def built(store: Engine) -> tuple[int, str] | None:
    """(customers, as_of) of the demo store behind ``store``, or None when there is none."""
    if MARKER not in inspect(store).get_table_names():
        return None
    with store.connect() as conn:
        row = conn.execute(text(f"SELECT customers, as_of FROM {MARKER}")).first()
    return None if row is None else (int(row[0]), str(row[1]))


def ensure(store: Engine, customers: int, as_of: dt.date, *, given: bool = False) -> float | None:
    """Build the demo store unless it is already there; seconds taken, None when reused.

    ``given``: the store was named with ``--db``. Building drops every table the engine
    knows, so a given store is only rebuilt when it is empty or a bench store already."""
    found = built(store)
    if given and found is None and inspect(store).get_table_names():
        raise StoreError(
            "the store given with --db holds tables but is no benchmark store; "
            "building the demo data would drop them",
            code="E0104",
            hint="point --db at an empty database (the bench fills it) or leave --db out",
        )
    if found == (customers, as_of.isoformat()):
        upgrade(store)  # engine tables added since the store was built (Alembic revisions)
        for table in CUSTOMER_TABLES:  # indexes added to the models since the store was built
            for index in table.indexes:
                index.create(store, checkfirst=True)
        return None

    with store.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {MARKER}"))
    started = time.perf_counter()
    generate(store, customers=customers, seed=SEED, as_of=as_of)
    seconds = time.perf_counter() - started
    with store.begin() as conn:
        conn.execute(text(f"CREATE TABLE {MARKER} (customers INTEGER, as_of VARCHAR(10))"))
        conn.execute(
            text(f"INSERT INTO {MARKER} VALUES (:n, :d)"), {"n": customers, "d": as_of.isoformat()}
        )
    return seconds


def wipe_engine_rows(store: Engine) -> None:
    """Empty the engine's own tables: every repetition starts the same.

    TRUNCATE on PostgreSQL; on SQLite a DELETE with foreign keys off for the one connection:
    with them on, each deleted task would look for tasks naming it as parent (an unindexed
    column), which is quadratic in the number of tasks."""
    names = [t.name for t in reversed(metadata.sorted_tables) if t in ENGINE_TABLES]
    if store.dialect.name == "postgresql":
        with store.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " CASCADE"))
        return
    raw = store.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        for name in names:
            cursor.execute(f'DELETE FROM "{name}"')
        raw.commit()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
    finally:
        raw.close()
