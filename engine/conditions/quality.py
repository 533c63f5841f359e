"""How many customers an audience was decided on without a usable value.

A customer whose field is empty, or holds something that is not a value of the field's type
(SQLite keeps ``'not-a-date'`` in a date column), or a value outside the field's ``valid:``
bounds (a birthday in the future, a negative AUM: *implausible*), is never an error: every
condition on the field is simply false for them (see :func:`engine.conditions.sql.checked`
and :mod:`engine.conditions.validity`). A run should
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

EMPTY, MALFORMED, IMPLAUSIBLE = "empty", "malformed", "implausible"
KINDS = (EMPTY, MALFORMED, IMPLAUSIBLE)


def data_issues(
    conn: Connection,
    dictionary: DataDictionary,
    clock: Clock,
    condition: Condition,
    customer_ids: Sequence[str] | None = None,
) -> dict[str, dict[str, int]]:
    """field → {"empty": n, "malformed": m, "implausible": k} for each customer field
    ``condition`` tests that has any; fields without problems are left out. Implausible is
    judged against ``clock``, as the audience was."""
    compiler = SqlCompiler(dictionary, clock)
    used = [dictionary.fields[k] for k in sorted(fields_of(condition))]
    used = [f for f in used if f.type != "tags"]  # a customer without tags has none: fine
    if not used:
        return {}
    columns: list[Any] = []
    for f in used:
        raw, stored, read = compiler.raw_field(f), compiler.stored(f), compiler.field(f)
        columns.append(func.sum(case((raw.is_(None), 1), else_=0), type_=Integer()))
        bad = case((raw.is_not(None) & stored.is_(None), 1), else_=0)
        columns.append(func.sum(bad, type_=Integer()))
        outside = case((stored.is_not(None) & read.is_(None), 1), else_=0)
        columns.append(func.sum(outside, type_=Integer()))
    query = select(*columns).select_from(compiler.customers)
    if customer_ids is not None:
        query = query.where(compiler.key.in_(list(customer_ids)))
    row = conn.execute(query).one()
    out: dict[str, dict[str, int]] = {}
    for i, f in enumerate(used):
        counts = {kind: int(row[3 * i + j] or 0) for j, kind in enumerate(KINDS)}
        if any(counts.values()):
            out[f.key] = counts
    return out
