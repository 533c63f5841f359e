"""The Python reference evaluator: the same conditions over one customer's values.

It exists to be obviously right, so the SQL compiler can be tested against it, and to
explain a decision for one customer. It is never used to filter a whole table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.conditions.ast import All, AnyOf, Condition, Not, Test
from engine.conditions.bounds import relative_range
from engine.conditions.clock import Clock
from engine.dictionary import DataDictionary


def evaluate(
    condition: Condition, values: Mapping[str, Any], dictionary: DataDictionary, clock: Clock
) -> bool:
    """``values`` maps field keys to the customer's values (tags as a set of labels)."""
    if isinstance(condition, All):
        return all(evaluate(c, values, dictionary, clock) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, values, dictionary, clock) for c in condition.items)
    if isinstance(condition, Not):
        return not evaluate(condition.item, values, dictionary, clock)
    return _test(condition, values, dictionary, clock)


def _test(t: Test, values: Mapping[str, Any], dictionary: DataDictionary, clock: Clock) -> bool:
    f = dictionary.fields[t.field]
    value = values.get(t.field)
    op, v = t.op, t.value
    if f.type == "tags":
        tags = set(value or ())
        if op in ("contains", "eq"):
            return v in tags
        if op == "in":
            return bool(tags & set(v))
        if op == "not_in":
            return not (tags & set(v))
        return False
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
    if op in ("older_than", "within_last", "within_next"):
        low, high, exclusive = relative_range(op, v, f.type, clock)
        if low is not None and value < low:
            return False
        if high is not None:
            return bool(value < high) if exclusive else bool(value <= high)
        return True
    raise ValueError(f"operator {op!r} has no Python form")
