"""The partition hash: one number per customer key, the same on SQLite and PostgreSQL.

Partitioned daemons (:mod:`engine.store.partitions`) filter their audiences by
``partition_hash(key) % K``, so both backends must compute the same value for the same key:

- PostgreSQL: the first 8 hex digits of ``md5(key::text)`` read as an unsigned 32-bit number,
  ``('x' || substr(md5(CAST(key AS TEXT)), 1, 8))::bit(32)::bigint``;
- SQLite has no md5: the same function in Python (:func:`key_hash`) is registered on every
  SQLite connection (:func:`register_sqlite`, from :mod:`engine.store.db`).

md5 rather than PostgreSQL's ``hashtext``: hashtext is undocumented and may change between
major versions, and SQLite would need a copy of it. A test compares the two over many keys.
Kept apart from the partition scheme so that opening a store imports nothing else.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FUNCTION = "care_partition_hash"


def key_hash(value: Any) -> int | None:
    """The partition hash of one key in Python: what both databases compute (NULL → None)."""
    if value is None:
        return None
    digest = hashlib.md5(str(value).encode("utf-8"), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16)


def register_sqlite(dbapi_connection: Any) -> None:
    """Give a SQLite connection the partition hash (deterministic: SQLite may then use it in
    expression indexes)."""
    dbapi_connection.create_function(SQLITE_FUNCTION, 1, key_hash, deterministic=True)


class partition_hash(FunctionElement[int]):  # lower case: it reads like the SQL function
    """``partition_hash(expr)``: the unsigned 32-bit md5 prefix of ``expr`` as text."""

    type = BigInteger()
    inherit_cache = True
    name = "partition_hash"


@compiles(partition_hash, "postgresql")
def _pg_hash(element: partition_hash, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"('x' || substr(md5(CAST({arg} AS TEXT)), 1, 8))::bit(32)::bigint"


@compiles(partition_hash)
def _sqlite_hash(element: partition_hash, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"
