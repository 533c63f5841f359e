"""The condition tree an audience compiles from.

Values in a :class:`Test` are already typed for their field (dates as ``date``, durations as
``timedelta``, lists as tuples), so the SQL compiler and the Python evaluator never parse.

Empty fields: a comparison on an empty (NULL) field is false, except ``ne``, ``not_in`` and
``is_null: true``, which mean "is not X" and so hold for an empty field. Every test is thus
strictly true or false, and ``not`` is plain negation, in SQL as in Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from engine.core.calendar import YearlyDate, YearsFilter

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
    "at_least": frozenset({"date", "datetime"}),
    "at_most": frozenset({"date", "datetime"}),
    "within_last": frozenset({"date", "datetime"}),
    "within_next": frozenset({"date", "datetime"}),
    "in_past": frozenset({"date", "datetime"}),
    "anniversary": frozenset({"date"}),
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
    "older_than": (
        "早于N天前(不含第N天:60d 即61天前及更早)",
        "more than a duration before the run time; the boundary day itself is excluded "
        "(60d: 61 days ago or earlier)",
    ),
    "at_least": (
        "至少N天前(含第N天:60d 即60天前及更早)",
        "a duration or more before the run time; the boundary day is included "
        "(60d: 60 days ago or earlier)",
    ),
    "at_most": (
        "最多N天前(含第N天及今天,同 within_last)",
        "at most a duration before the run time, up to now; the boundary day is included "
        "(the same as within_last)",
    ),
    "within_last": (
        "最近N天内(含第N天及今天)",
        "within a duration before the run time, both ends included",
    ),
    "within_next": (
        "未来N天内(含今天及第N天)",
        "within a duration after the run time, both ends included",
    ),
    "in_past": ("已过(true)或未到(false)", "before the run time (true) or not (false)"),
    "anniversary": (
        "周年纪念日(公历/农历,可指定第几年或每N年)",
        "an anniversary falls on the run date: {calendar, years | every, in_days}",
    ),
}

RELATIVE_OPERATORS = ("older_than", "at_least", "at_most", "within_last", "within_next")
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_null")
AGGREGATES: dict[str, tuple[str, str]] = {
    "exists": ("存在满足条件的记录", "at least one row matches"),
    "none": ("不存在满足条件的记录", "no row matches"),
    "count": ("满足条件的记录数", "how many rows match, compared: {where, gte: 3}"),
    "sum": ("合计", "sum of a column over matching rows (0 when none): {of, where, gte}"),
    "min": ("最小值", "smallest value of a column over matching rows (empty when none)"),
    "max": ("最大值", "largest value of a column over matching rows (empty when none)"),
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


@dataclass(frozen=True)
class Anniversary:
    """The value of an ``anniversary`` test: the date field's anniversary is the run date
    plus ``in_days``, counted in ``calendar`` (``customer``: by the field's calendar flag)."""

    calendar: str  # solar / lunar / customer
    years: YearsFilter
    in_days: int = 0


@dataclass(frozen=True)
class CalendarTest:
    """A fact about the run date alone (workday, festival, N days before one): a constant for
    every customer, computed once when the query is built."""

    kind: str  # workday / festival / days_before / last_workday_before
    value: bool | None = None  # for workday
    date: YearlyDate | None = None
    days: int = 0


@dataclass(frozen=True)
class Related:
    """exists / none / count / sum / min / max over a customer's related rows.

    ``where`` filters the rows (a condition over the related table's columns); ``compare``
    tests the aggregate (its ``field`` is the aggregated column, or "" for count).
    """

    name: str
    aggregate: str
    where: Condition
    of: str | None = None
    compare: Test | None = None


@dataclass(frozen=True)
class Change:
    """The change of a series between ``over`` ago and now, as ``percent`` or ``amount``.

    ``then`` is the latest history value dated on or before the run date minus ``over``;
    ``now`` is the current field. With either missing (or empty) the change is undefined.
    Otherwise ``amount`` is ``now - then`` whatever the signs, and ``percent`` is
    ``(now - then) / then * 100`` when ``then`` is positive, whatever the sign of ``now``
    (55,741.80 to -3,221.20 is -105.8%); with ``then`` zero or negative a percentage has no
    meaning, so it is undefined. An undefined change makes its comparison false (``ne``
    too), and ``not`` is plain negation, as for an empty field.
    """

    name: str
    over: dt.timedelta
    measure: str  # percent / amount
    compare: Test


@dataclass(frozen=True)
class SegmentRef:
    """A named segment, kept by name so explain can say which segment matched."""

    name: str
    item: Condition


Condition = Test | All | AnyOf | Not | CalendarTest | Related | Change | SegmentRef

EVERYONE: Condition = All(())


def fields_of(condition: Condition) -> set[str]:
    """Every customer field name a condition tests (related rows and histories excluded)."""
    if isinstance(condition, Test):
        return {condition.field}
    if isinstance(condition, Not | SegmentRef):
        return fields_of(condition.item)
    if isinstance(condition, CalendarTest | Related | Change):
        return set()
    out: set[str] = set()
    for item in condition.items:
        out |= fields_of(item)
    return out
