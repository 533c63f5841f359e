"""The condition tree an audience compiles from.

Values in a :class:`Test` are already typed for their field (dates as ``date``, durations as
``timedelta``, lists as tuples), so the SQL compiler and the Python evaluator never parse.

Empty fields: a comparison on an empty (NULL) field is false, except ``ne``, ``not_in`` and
``is_null: true``, which mean "is not X" and so hold for an empty field. Every test is thus
strictly true or false, and ``not`` is plain negation, in SQL as in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# operator -> which field types accept it
OPERATORS: dict[str, frozenset[str]] = {
    "eq": frozenset(
        {"string", "integer", "number", "money", "date", "datetime", "boolean", "enum"}
    ),
    "ne": frozenset(
        {"string", "integer", "number", "money", "date", "datetime", "boolean", "enum"}
    ),
    "in": frozenset({"string", "integer", "number", "money", "enum", "tags"}),
    "not_in": frozenset({"string", "integer", "number", "money", "enum", "tags"}),
    "gt": frozenset({"integer", "number", "money", "date", "datetime"}),
    "gte": frozenset({"integer", "number", "money", "date", "datetime"}),
    "lt": frozenset({"integer", "number", "money", "date", "datetime"}),
    "lte": frozenset({"integer", "number", "money", "date", "datetime"}),
    "between": frozenset({"integer", "number", "money", "date", "datetime"}),
    "is_null": frozenset(
        {"string", "integer", "number", "money", "date", "datetime", "boolean", "enum"}
    ),
    "contains": frozenset({"string", "tags"}),
    "older_than": frozenset({"date", "datetime"}),
    "within_last": frozenset({"date", "datetime"}),
    "within_next": frozenset({"date", "datetime"}),
}

OPERATOR_HELP: dict[str, tuple[str, str]] = {
    "eq": ("等于", "equals"),
    "ne": ("不等于", "does not equal (also true when empty)"),
    "in": ("属于其中之一", "is one of"),
    "not_in": ("不属于其中任何一个", "is none of (also true when empty)"),
    "gt": ("大于", "greater than"),
    "gte": ("大于等于", "greater than or equal"),
    "lt": ("小于", "less than"),
    "lte": ("小于等于", "less than or equal"),
    "between": ("介于两值之间(含两端)", "between two values, inclusive: [low, high]"),
    "is_null": ("为空(true)或不为空(false)", "is empty (true) or not empty (false)"),
    "contains": ("包含(标签或文字)", "has the tag / contains the text"),
    "older_than": ("早于N天前", "more than a duration before the run time"),
    "within_last": ("最近N天内", "within a duration before the run time"),
    "within_next": ("未来N天内", "within a duration after the run time"),
}


@dataclass(frozen=True)
class Test:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Test | All | AnyOf | Not

EVERYONE: Condition = All(())


def fields_of(condition: Condition) -> set[str]:
    """Every field name a condition reads."""
    if isinstance(condition, Test):
        return {condition.field}
    if isinstance(condition, Not):
        return fields_of(condition.item)
    out: set[str] = set()
    for item in condition.items:
        out |= fields_of(item)
    return out
