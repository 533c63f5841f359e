"""Why one customer does or does not meet an audience: the condition tree as a trace.

Every node's verdict is the reference evaluator's own answer for that node
(:func:`engine.conditions.evaluate.evaluate`), so the trace cannot disagree with the
decision; this module only adds what a person needs to see it: the field's Chinese label,
the customer's value and the threshold it was held against (``last_active_at older_than
60d: true — 2026-08-01 10:00 is before 2026-09-24 09:00``).

Verdicts are computed on the real values; the values shown come from ``shown``, which the
caller masks unless personal data may be displayed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
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
from engine.conditions.bounds import change_cutoff, estimated_days, relative_range
from engine.conditions.evaluate import (
    NO_RELATED,
    Rows,
    change_measure,
    change_values,
    evaluate,
    related_aggregate,
)
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary, Field
from engine.core.durations import format_duration

SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
NEGATED = {"eq": "≠", "ne": "=", "gt": "≤", "gte": "<", "lt": "≥", "lte": ">"}
GROUPS = {"all": "全部满足 all of", "any": "满足其一 any of", "not": "不满足 not"}


@dataclass(frozen=True)
class Malformed:
    """Shown in place of a value that is stored but not of its field's type: the evaluator
    read it as empty (see :func:`engine.conditions.sql.checked`)."""

    raw: Any


@dataclass(frozen=True)
class Implausible:
    """Shown in place of a well-formed value outside its field's ``valid:`` bounds (a
    birthday in the future, a negative AUM): the evaluator read it as empty too
    (:mod:`engine.conditions.validity`); ``why`` says which bound it broke."""

    value: Any
    why: str


@dataclass(frozen=True)
class Step:
    """One node of the trace. ``label`` says what was tested, ``detail`` why it came out so."""

    kind: str  # all / any / not / segment / test / calendar / related / change
    label: str
    holds: bool
    detail: str = ""
    children: tuple[Step, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "label": self.label, "holds": self.holds}
        if self.detail:
            out["detail"] = self.detail
        if self.children:
            out["children"] = [c.to_json() for c in self.children]
        return out


def trace(
    condition: Condition,
    values: Mapping[str, Any],
    dictionary: DataDictionary,
    clock: Clock,
    related: Mapping[str, Rows] = NO_RELATED,
    shown: Mapping[str, Any] | None = None,
) -> Step:
    """The trace of ``condition`` for one customer (values as the evaluator takes them)."""
    display = values if shown is None else shown
    holds = evaluate(condition, values, dictionary, clock, related)

    def sub(c: Condition) -> Step:
        return trace(c, values, dictionary, clock, related, display)

    if isinstance(condition, All | AnyOf):
        kind = "all" if isinstance(condition, All) else "any"
        if not condition.items:
            return Step(kind, "everyone 全部客户", holds)
        return Step(kind, GROUPS[kind], holds, children=tuple(sub(c) for c in condition.items))
    if isinstance(condition, Not):
        return Step("not", GROUPS["not"], holds, children=(sub(condition.item),))
    if isinstance(condition, SegmentRef):
        return Step(
            "segment", f"segment 客群 {condition.name}", holds, children=(sub(condition.item),)
        )
    if isinstance(condition, CalendarTest):
        return Step("calendar", describe(condition, dictionary), holds, _calendar(condition, clock))
    if isinstance(condition, Related):
        rows = related.get(condition.name, ())
        return Step(
            "related",
            describe(condition, dictionary),
            holds,
            _related_detail(condition, dictionary, clock, rows),
        )
    if isinstance(condition, Change):
        rows = related.get(condition.name, ())
        detail = _change_detail(condition, values, dictionary, clock, rows)
        return Step("change", describe(condition, dictionary), holds, detail)
    f = dictionary.fields[condition.field]
    detail = _test_detail(condition, f, display, clock, holds)
    return Step("test", describe(condition, dictionary), holds, detail)


# --- what was tested ---------------------------------------------------------------------


def describe(condition: Condition, dictionary: DataDictionary) -> str:
    """A condition as one line of text (for labels, and the ``where`` of related records)."""
    if isinstance(condition, Test):
        f = dictionary.fields.get(condition.field)
        name = f"{condition.field} {f.label}" if f else condition.field
        return f"{name} {condition.op} {_operand(condition.value)}"
    if isinstance(condition, All | AnyOf):
        word = "all" if isinstance(condition, All) else "any"
        if not condition.items:
            return "everyone"
        return f"{word}(" + "; ".join(describe(c, dictionary) for c in condition.items) + ")"
    if isinstance(condition, Not):
        return f"not({describe(condition.item, dictionary)})"
    if isinstance(condition, SegmentRef):
        return f"segment {condition.name}"
    if isinstance(condition, CalendarTest):
        if condition.kind == "workday":
            return (
                "calendar 日历: workday 工作日"
                if condition.value
                else "calendar 日历: not a workday 非工作日"
            )
        when = _yearly(condition)
        if condition.kind == "festival":
            return f"calendar 日历: festival 节日 {when}"
        if condition.kind == "days_before":
            return f"calendar 日历: {condition.days} day(s) before 提前{condition.days}天 {when}"
        return f"calendar 日历: last workday before 节前最后一个工作日 {when}"
    if isinstance(condition, Related):
        rel = dictionary.related[condition.name]
        head = f"{condition.name} {rel.label} {condition.aggregate}"
        if condition.of:
            head += f" of {condition.of}"
        where = describe(condition.where, rel.scope)
        if where != "everyone":
            head += f" where {where}"
        if condition.compare is not None:
            head += f" {condition.compare.op} {_operand(condition.compare.value)}"
        return head
    if isinstance(condition, Change):
        series = dictionary.changes[condition.name]
        unit = "%" if condition.measure == "percent" else ""
        value = condition.compare.value
        shown = (
            "[" + ", ".join(f"{_number(x)}{unit}" for x in value) + "]"
            if isinstance(value, tuple)
            else f"{_number(value)}{unit}"
        )
        return (
            f"{condition.name} {series.label} over {format_duration(condition.over)} "
            f"{condition.measure} {condition.compare.op} {shown}"
        )
    raise TypeError(type(condition).__name__)


def _yearly(test: CalendarTest) -> str:
    d = test.date
    if d is None:
        return ""
    if d.key:
        return d.key
    cal = "农历 lunar" if d.calendar == "lunar" else "公历 solar"
    return f"{cal} {d.month:02d}-{d.day:02d}" + (f" {d.year}" if d.year else "")


def _operand(value: Any) -> str:
    if isinstance(value, Anniversary):
        years = value.years
        parts = [value.calendar]
        if years.years is not None:
            parts.append("years " + ", ".join(str(y) for y in years.years))
        if years.every is not None:
            parts.append(f"every {years.every} years")
        if value.in_days:
            parts.append(f"in {value.in_days} days")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, tuple | list | set | frozenset):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: Any) -> str:
    number = float(value)
    if not math.isfinite(number):  # a stored infinity or NaN is shown, not choked on
        return str(number)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


# --- why ---------------------------------------------------------------------------------


def show_value(value: Any, f: Field) -> str:
    """A customer's value as staff read it: enum codes with their label, money with commas."""
    if value is None:
        return "empty 空"
    if isinstance(value, Malformed):
        return f"malformed 格式错误 {value.raw!r}, read as empty"
    if isinstance(value, Implausible):
        return f"implausible 不合理 {show_value(value.value, f)} ({value.why}), read as empty"
    if f.type == "enum":
        label = f.values.get(str(value))
        return f"{value} {label}" if label else str(value)
    if f.type == "money" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{float(value):,.2f}"
    if f.type == "tags":
        return ", ".join(str(v) for v in value) if value else "no tags 无标签"
    return _plain(value)


def _test_detail(t: Test, f: Field, shown: Mapping[str, Any], clock: Clock, holds: bool) -> str:
    value = shown.get(t.field)
    text = show_value(value, f)
    is_ = "is" if holds else "is not"
    if f.type == "tags":
        return f"tags 标签: {text}"
    if t.op == "anniversary":
        return _anniversary_detail(t, f, shown, clock)
    if t.op == "is_null":
        return f"value 值: {text}"
    if value is None or isinstance(value, Malformed | Implausible):
        why = (
            "an empty field is not any value"
            if t.op in ("ne", "not_in")
            else ("a comparison on an empty field is false")
        )
        return f"{text}: {why}"
    if t.op in RELATIVE_OPERATORS:
        low, high, exclusive = relative_range(t.op, t.value, f.type, clock)
        if low is None:  # older_than excludes the boundary, at_least includes it
            return f"{text} {is_} {'before' if exclusive else 'on or before'} {_plain(high)}"
        return f"{text} {is_} within {_plain(low)} … {_plain(high)} (both included)"
    if t.op == "in_past":
        anchor = clock.today if f.type == "date" else clock.now
        return f"{text} {is_} before now {_plain(anchor)}"
    if t.op in SYMBOLS:
        return f"{text} {SYMBOLS[t.op] if holds else NEGATED[t.op]} {_operand(t.value)}"
    if t.op == "between":
        return f"{text} {is_} between {_plain(t.value[0])} and {_plain(t.value[1])}"
    if t.op == "in":
        return f"{text} {is_} one of {_operand(t.value)}"
    if t.op == "not_in":
        return f"{text} {is_} none of {_operand(t.value)}"
    if t.op == "contains":
        return f"{text} {'contains' if holds else 'does not contain'} {_operand(t.value)}"
    return f"{text} {t.op} {_operand(t.value)}"


def _anniversary_detail(t: Test, f: Field, shown: Mapping[str, Any], clock: Clock) -> str:
    spec: Anniversary = t.value
    value = shown.get(t.field)
    target = clock.today + dt.timedelta(days=spec.in_days)
    calendar = spec.calendar
    if calendar == "customer" and f.calendar_field:
        calendar = f"customer's: {shown.get(f.calendar_field) or 'solar'}"
    if not isinstance(value, dt.date):
        return f"{show_value(value, f)}; anniversary date 纪念日 {target.isoformat()} ({calendar})"
    years = target.year - value.year
    return (
        f"{_plain(value)}; anniversary date 纪念日 {target.isoformat()} ({calendar}), "
        f"about {years} year(s) on"
    )


def _calendar(test: CalendarTest, clock: Clock) -> str:
    """The run date, and where the workday answer came from; a guess says so loudly, since
    an auditor must not read an estimate as the State Council's notice."""
    today = clock.today
    text = f"run date 运行日期 {today.isoformat()} ({today.strftime('%A')})"
    if test.kind not in ("workday", "last_workday_before"):
        return text
    guessed = estimated_days(test, clock)
    if guessed:
        shown = ", ".join(d.isoformat() for d in guessed[:3]) + (" …" if len(guessed) > 3 else "")
        return (
            f"{text}; ESTIMATED 估算: no official holiday schedule for {shown}"
            f" (config/calendar/CN-{guessed[0].year}.yaml)"
        )
    return f"{text}; workdays from {clock.calendar.source(today)}"


def _related_detail(r: Related, dictionary: DataDictionary, clock: Clock, rows: Rows) -> str:
    rel = dictionary.related[r.name]
    matching, value = related_aggregate(r, dictionary, clock, rows)
    head = f"{matching} of {len(rows)} {rel.name.lower()} row(s) match"
    if r.aggregate in ("exists", "none", "count"):
        return head
    assert r.of is not None
    column = rel.columns[r.of]
    return f"{head}; {r.aggregate} of {r.of} {column.label} = {show_value(value, column)}"


def _change_detail(
    c: Change,
    values: Mapping[str, Any],
    dictionary: DataDictionary,
    clock: Clock,
    rows: Rows,
) -> str:
    """Amounts are not personal data: the real values are shown, and when the change is
    undefined, which of its rules made it so (see :class:`engine.conditions.ast.Change`)."""
    series = dictionary.changes[c.name]
    cutoff = change_cutoff(c, clock)
    row, then, now = change_values(c, values, dictionary, clock, rows)
    if row is None:
        return (
            f"nothing to compare 无可比数据: no {series.name} value on or before "
            f"{cutoff.isoformat()}"
        )
    was = f"{_number(then)} on {_plain(row['at'])}" if then is not None else "empty 空"
    if then is None or now is None:
        return f"nothing to compare 无可比数据: {was} → {_plain(now)} now: a value is empty"
    measured = change_measure(c, values, dictionary, clock, rows)
    if measured is None:
        return (
            f"{was} → {_number(now)} now: percent change undefined 百分比无定义 (the earlier "
            "value is not positive), so false"
        )
    if c.measure == "percent":  # measured[2] is scaled for comparison: (now - then) × 100
        return f"{was} → {_number(now)} now: {measured[2] / then:+,.1f}%"
    return f"{was} → {_number(now)} now: {measured[2]:+,.2f}"
