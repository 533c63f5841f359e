"""The Python reference evaluator: the same conditions over one customer's values.

It exists to be obviously right, so the SQL compiler can be tested against it, and to
explain a decision for one customer. It works on values already read: the customer's fields,
and for related-record conditions the customer's related rows (see
:mod:`engine.conditions.facts`, which reads them a batch of customers at a time). It is
never handed a whole table.

Where SQL enumerates (lunar birth dates bound as an ``IN`` list, 29 February as a second
month/day pair), this module converts and compares directly, so the property tests check the
enumeration against the definition.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.conditions.ast import (
    RELATIVE_OPERATORS,
    All,
    Anniversary,
    AnyOf,
    CalendarTest,
    Change,
    Condition,
    Not,
    Related,
    SegmentRef,
    Test,
)
from engine.conditions.bounds import calendar_holds, change_cutoff, relative_range
from engine.conditions.validity import usable
from engine.core import calendar as cal
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary

Rows = Sequence[Mapping[str, Any]]
NO_RELATED: Mapping[str, Rows] = {}


def evaluate(
    condition: Condition,
    values: Mapping[str, Any],
    dictionary: DataDictionary,
    clock: Clock,
    related: Mapping[str, Rows] = NO_RELATED,
) -> bool:
    """``values`` maps field keys to the customer's values (tags as a set of labels);
    ``related`` maps related-table and change names to the customer's rows."""
    if isinstance(condition, All):
        return all(evaluate(c, values, dictionary, clock, related) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, values, dictionary, clock, related) for c in condition.items)
    if isinstance(condition, Not):
        return not evaluate(condition.item, values, dictionary, clock, related)
    if isinstance(condition, SegmentRef):
        return evaluate(condition.item, values, dictionary, clock, related)
    if isinstance(condition, CalendarTest):
        return calendar_holds(condition, clock)
    if isinstance(condition, Related):
        return _related(condition, dictionary, clock, related.get(condition.name, ()))
    if isinstance(condition, Change):
        return _change(condition, values, dictionary, clock, related.get(condition.name, ()))
    return _test(condition, values, dictionary, clock)


def _test(t: Test, values: Mapping[str, Any], dictionary: DataDictionary, clock: Clock) -> bool:
    f = dictionary.fields[t.field]
    value = values.get(t.field)
    if f.type == "tags":
        return _tags(t, value)
    value = usable(f, value, clock)  # outside its valid: bounds, a value reads as empty
    if t.op == "anniversary":
        flag = values.get(f.calendar_field) if f.calendar_field else None
        return _anniversary(value, t.value, flag, clock)
    return compare(value, f.type, t.op, t.value, clock)


def _tags(t: Test, value: Any) -> bool:
    tags = set(value or ())
    if t.op in ("contains", "eq"):
        return t.value in tags
    if t.op == "in":
        return bool(tags & set(t.value))
    if t.op == "not_in":
        return not (tags & set(t.value))
    return False


def compare(value: Any, kind: str, op: str, v: Any, clock: Clock) -> bool:
    """``value <op> v`` with the empty-field rule of :mod:`engine.conditions.ast`."""
    if op == "is_null":
        return (value is None) is bool(v)
    if op == "ne":
        return value is None or bool(value != v)
    if op == "not_in":
        return value is None or bool(value not in v)
    if value is None:
        return False
    if op == "eq":
        return bool(value == v)
    if op == "in":
        return bool(value in v)
    if op == "gt":
        return bool(value > v)
    if op == "gte":
        return bool(value >= v)
    if op == "lt":
        return bool(value < v)
    if op == "lte":
        return bool(value <= v)
    if op == "between":
        return bool(v[0] <= value <= v[1])
    if op == "contains":
        return v in str(value)
    if op == "in_past":
        anchor = clock.today if kind == "date" else clock.now
        return bool(value < anchor) if v else bool(value >= anchor)
    if op in RELATIVE_OPERATORS:
        low, high, exclusive = relative_range(op, v, kind, clock)
        if low is not None and value < low:
            return False
        if high is not None:
            return bool(value < high) if exclusive else bool(value <= high)
        return True
    raise ValueError(f"operator {op!r} has no Python form")


def _anniversary(value: Any, spec: Anniversary, flag: Any, clock: Clock) -> bool:
    if not isinstance(value, dt.date):
        return False
    if isinstance(value, dt.datetime):
        value = value.date()
    target = clock.today + dt.timedelta(days=spec.in_days)
    lunar = spec.calendar == "lunar" or (spec.calendar == "customer" and flag == "lunar")
    if lunar:
        return cal.lunar_anniversary(value, target, spec.years)
    return cal.solar_anniversary(value, target, spec.years)


def _related(r: Related, dictionary: DataDictionary, clock: Clock, rows: Rows) -> bool:
    matching, value = related_aggregate(r, dictionary, clock, rows)
    if r.aggregate == "exists":
        return matching > 0
    if r.aggregate == "none":
        return matching == 0
    assert r.compare is not None
    kind = (
        "integer" if r.aggregate == "count" else dictionary.related[r.name].columns[r.of or ""].type
    )
    return compare(value, kind, r.compare.op, r.compare.value, clock)


def related_aggregate(
    r: Related, dictionary: DataDictionary, clock: Clock, rows: Rows
) -> tuple[int, Any]:
    """(how many rows meet ``where``, the aggregate compared): the count for exists, none
    and count; the sum (0 when none), min or max (empty when none) of ``of`` otherwise.
    Explain shows these numbers, so they come from here rather than a second copy."""
    rel = dictionary.related[r.name]
    matching = [row for row in rows if evaluate(r.where, row, rel.scope, clock)]
    if r.aggregate in ("exists", "none", "count"):
        return len(matching), len(matching)
    assert r.of is not None
    col = rel.columns[r.of]
    kind = col.type
    read = (usable(col, row.get(r.of), clock) for row in matching)
    present = [x for x in read if x is not None]
    value: Any
    if r.aggregate == "sum":
        value = math.fsum(float(x) for x in present)
    elif present:
        value = min(present) if r.aggregate == "min" else max(present)
        if kind in ("number", "money"):
            value = float(value)
    else:
        value = None
    return len(matching), value


def _change(
    c: Change, values: Mapping[str, Any], dictionary: DataDictionary, clock: Clock, rows: Rows
) -> bool:
    measured = change_measure(c, values, dictionary, clock, rows)
    if measured is None:
        return False
    then, _now, lhs = measured

    def bound(x: Any) -> float:
        return then * float(x) if c.measure == "percent" else float(x)

    op, v = c.compare.op, c.compare.value
    if op == "between":
        return bound(v[0]) <= lhs <= bound(v[1])
    return {
        "eq": lhs == bound(v),
        "ne": lhs != bound(v),
        "gt": lhs > bound(v),
        "gte": lhs >= bound(v),
        "lt": lhs < bound(v),
        "lte": lhs <= bound(v),
    }[op]


def change_values(
    c: Change, values: Mapping[str, Any], dictionary: DataDictionary, clock: Clock, rows: Rows
) -> tuple[Mapping[str, Any] | None, float | None, float | None]:
    """(the history row compared with, its value, the current value): the row is None when
    no history is dated on or before the cut-off, a value None when it is empty. Rows are the
    customer's history as ``{"at": date, "value": number}``."""
    series = dictionary.changes[c.name]
    cutoff = change_cutoff(c, clock)
    earlier = [r for r in rows if r["at"] is not None and r["at"] <= cutoff]
    row = max(earlier, key=lambda r: r["at"]) if earlier else None
    then_raw = None if row is None else row["value"]
    now_raw = usable(dictionary.fields[series.current], values.get(series.current), clock)
    then = None if then_raw is None else float(then_raw)
    now = None if now_raw is None else float(now_raw)
    return row, then, now


def change_measure(
    c: Change, values: Mapping[str, Any], dictionary: DataDictionary, clock: Clock, rows: Rows
) -> tuple[float, float, float] | None:
    """(value then, value now, the change scaled for comparison: percent × 100 or amount),
    or None when the change is undefined (see :class:`engine.conditions.ast.Change`): no
    history on or before the cut-off, an empty value, or for ``percent`` a starting value that
    is not positive. ``now`` may be negative or zero: a balance that went into the red has
    dropped by more than 100%."""
    _row, then, now = change_values(c, values, dictionary, clock, rows)
    if then is None or now is None:
        return None
    if c.measure == "percent" and not then > 0:
        return None
    diff = now - then
    return then, now, diff * 100.0 if c.measure == "percent" else diff
