"""Reading what the Python reference evaluator needs, one batch of customers at a time.

``dry-run --evaluator python`` scans customers in batches (the SQL audience is bypassed), and
for each batch reads the related rows and histories its condition uses with one query per
related table, ``WHERE customer IN (<batch>)``. Nothing here reads a whole table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Date, Float, literal_column, select, table

from engine.conditions.ast import All, AnyOf, Change, Condition, Not, Related, SegmentRef
from engine.conditions.evaluate import Rows, evaluate
from engine.conditions.sql import SqlCompiler, checked, untyped_in
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary


def used(condition: Condition) -> tuple[set[str], set[str]]:
    """(related table names, change names) a condition reads."""
    if isinstance(condition, Related):
        return {condition.name}, set()
    if isinstance(condition, Change):
        return set(), {condition.name}
    if isinstance(condition, Not | SegmentRef):
        return used(condition.item)
    if not isinstance(condition, All | AnyOf):
        return set(), set()
    related: set[str] = set()
    changes: set[str] = set()
    for item in condition.items:
        r, c = used(item)
        related |= r
        changes |= c
    return related, changes


def load_related(
    conn: Connection,
    dictionary: DataDictionary,
    condition: Condition,
    ids: Sequence[str],
    clock: Clock,
) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """customer id → related/change name → that customer's rows."""
    out: dict[str, dict[str, list[Mapping[str, Any]]]] = {i: {} for i in ids}
    if not ids:
        return out
    related, changes = used(condition)
    for name in sorted(related):
        rel = dictionary.related[name]
        sub = SqlCompiler(rel.scope, clock)
        link: ColumnElement[Any] = literal_column(f"{rel.table}.{rel.link}")
        # bounds are the evaluator's to apply, against the clock it is given
        columns = [sub.stored(f).label(key) for key, f in rel.columns.items()]
        query = select(link.label("_owner"), *columns).select_from(sub.customers)
        query = sub.joined(query.where(untyped_in(link, ids)))
        for row in conn.execute(query).mappings():
            values = dict(row)
            # ids are text here; a bank's key column may be an integer (Berka's client_id)
            out[str(values.pop("_owner"))].setdefault(name, []).append(values)
    for name in sorted(changes):
        series = dictionary.changes[name]
        link = literal_column(f"{series.table}.{series.link}")  # untyped: see untyped_in
        query = select(
            link.label("_owner"),
            checked(literal_column(f"{series.table}.{series.at}", Date()), "date").label("at"),
            checked(literal_column(f"{series.table}.{series.value}", Float()), "number").label(
                "value"
            ),
        ).select_from(table(series.table))
        for row in conn.execute(query.where(untyped_in(link, ids))).mappings():
            values = dict(row)
            # ids are text here; a bank's key column may be an integer (Berka's client_id)
            out[str(values.pop("_owner"))].setdefault(name, []).append(values)
    return out


def filter_batch(
    conn: Connection,
    dictionary: DataDictionary,
    condition: Condition,
    clock: Clock,
    rows: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The rows (customer values keyed by field, ``_key`` the id, tags attached) whose
    customer meets ``condition``, decided by the reference evaluator."""
    ids = [str(r["_key"]) for r in rows]
    related = load_related(conn, dictionary, condition, ids, clock)
    kept = []
    for row, cid in zip(rows, ids, strict=True):
        facts: Mapping[str, Rows] = related[cid]
        if evaluate(condition, row, dictionary, clock, facts):
            kept.append(row)
    return kept
