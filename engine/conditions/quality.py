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

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, case, func, select

from engine.conditions.ast import Condition, fields_of
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary

EMPTY, MALFORMED, IMPLAUSIBLE = "empty", "malformed", "implausible"
KINDS = (EMPTY, MALFORMED, IMPLAUSIBLE)


Counts = dict[str, int]


class SharedIssues:
    """The counts of one pass over a pack (a dry-run or run of many playbooks), shared.

    Every playbook's count is a scan of the whole customer table; fifteen playbooks testing
    the same few fields would scan it fifteen times. A pass names every field its playbooks
    test up front, and the first playbook to ask counts them all in one scan, per day (the
    day is what implausibility is judged against). Counts are of the customer table, which a
    run does not write, so they hold for the whole pass."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = set(fields)
        self._by_day: dict[dt.date, dict[str, Counts]] = {}
        # a daemon's workers run a slot's playbooks at once: one counts, the others wait
        self._lock = threading.Lock()

    @classmethod
    def of(cls, dictionary: DataDictionary, audiences: Iterable[Condition]) -> SharedIssues:
        """Counts shared by the playbooks with these audiences: every field they test."""
        return cls(k for a in audiences for k in scalar_fields(dictionary, a))

    def counts(
        self, conn: Connection, dictionary: DataDictionary, clock: Clock, keys: set[str]
    ) -> dict[str, Counts]:
        with self._lock:
            known = self._by_day.get(clock.today)
            if known is None or not keys <= known.keys():
                wanted = (self.fields | keys) - (known or {}).keys()
                known = {**(known or {}), **_count(conn, dictionary, clock, wanted, None)}
                self._by_day[clock.today] = known
            return {k: known[k] for k in keys}


def data_issues(
    conn: Connection,
    dictionary: DataDictionary,
    clock: Clock,
    condition: Condition,
    customer_ids: Sequence[str] | None = None,
    shared: SharedIssues | None = None,
) -> dict[str, dict[str, int]]:
    """field → {"empty": n, "malformed": m, "implausible": k} for each customer field
    ``condition`` tests that has any; fields without problems are left out. Implausible is
    judged against ``clock``, as the audience was. ``shared``: the pass's counts (only for a
    whole-table audience; an event's customers are counted alone)."""
    keys = scalar_fields(dictionary, condition)
    if shared is not None and customer_ids is None:
        found = shared.counts(conn, dictionary, clock, keys)
    else:
        found = _count(conn, dictionary, clock, keys, customer_ids)
    return {k: v for k, v in sorted(found.items()) if any(v.values())}


def scalar_fields(dictionary: DataDictionary, condition: Condition) -> set[str]:
    """The customer fields ``condition`` tests that can be empty or malformed (not tags: a
    customer without tags simply has none)."""
    return {k for k in fields_of(condition) if dictionary.fields[k].type != "tags"}


def _count(
    conn: Connection,
    dictionary: DataDictionary,
    clock: Clock,
    keys: set[str],
    customer_ids: Sequence[str] | None,
) -> dict[str, Counts]:
    """Every field of ``keys`` with its counts, zeros included: one aggregate query."""
    compiler = SqlCompiler(dictionary, clock)
    used = [dictionary.fields[k] for k in sorted(keys)]
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
    query = compiler.joined(select(*columns).select_from(compiler.customers))
    if customer_ids is not None:
        query = query.where(compiler.key_in(customer_ids))
    row = conn.execute(query).one()
    return {
        f.key: {kind: int(row[3 * i + j] or 0) for j, kind in enumerate(KINDS)}
        for i, f in enumerate(used)
    }
