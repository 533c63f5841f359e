"""How many customers an audience was decided on without a usable value.

A customer whose field is empty, or holds something that is not a value of the field's type
(SQLite keeps ``'not-a-date'`` in a date column), is never an error: every condition on the
field is simply false for them (see :func:`engine.conditions.sql.checked`). A run should
still say how many such rows it met, so bad data shows up in the report instead of as a
quietly smaller audience. One aggregate query per playbook, over the customers the audience
is drawn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, case, func, select

from engine.conditions.ast import Condition, fields_of
from engine.conditions.clock import Clock
from engine.conditions.sql import SqlCompiler
from engine.dictionary import DataDictionary

EMPTY, MALFORMED = "empty", "malformed"


def data_issues(
    conn: Connection,
    dictionary: DataDictionary,
    clock: Clock,
    condition: Condition,
    customer_ids: Sequence[str] | None = None,
) -> dict[str, dict[str, int]]:
    """field → {"empty": n, "malformed": m} for each customer field ``condition`` tests that
    has any; fields without problems are left out."""
    compiler = SqlCompiler(dictionary, clock)
    used = [dictionary.fields[k] for k in sorted(fields_of(condition))]
    used = [f for f in used if f.type != "tags"]  # a customer without tags has none: fine
    if not used:
        return {}
    columns: list[Any] = []
    for f in used:
        raw, read = compiler.raw_field(f), compiler.field(f)
        columns.append(func.sum(case((raw.is_(None), 1), else_=0), type_=Integer()))
        bad = case((raw.is_not(None) & read.is_(None), 1), else_=0)
        columns.append(func.sum(bad, type_=Integer()))
    query = select(*columns).select_from(compiler.customers)
    if customer_ids is not None:
        query = query.where(compiler.key.in_(list(customer_ids)))
    row = conn.execute(query).one()
    out: dict[str, dict[str, int]] = {}
    for i, f in enumerate(used):
        empty, malformed = int(row[2 * i] or 0), int(row[2 * i + 1] or 0)
        if empty or malformed:
            out[f.key] = {EMPTY: empty, MALFORMED: malformed}
    return out
