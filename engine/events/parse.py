"""``trigger: {event: …}`` from YAML to a typed :class:`EventTrigger`, with located errors.

The JSON Schema has already checked the shape (known keys, event type names, duration
patterns); this checks meaning: each field exists on every event type it is tested on, each
operator fits the field's type, values fit the field, and ``*_ratio`` is only used where a
first event exists to compare with.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from engine.diagnostics import PathPart
from engine.durations import DurationError, parse_duration
from engine.events.catalog import EVENT_TYPES, EventField, common_fields
from engine.events.trigger import (
    CONSTANT_OPS,
    RELATIVE_OPS,
    Count,
    EventTrigger,
    FieldTest,
    FollowUp,
    Op,
    Step,
)

PathT = tuple[PathPart, ...]
Report = Callable[..., None]
FOLLOW_KEYS = ("count", "then", "then_not")
TEXT_OPS = ("eq", "ne", "in", "not_in")
MAX_COUNT = 20


def parse_event_trigger(raw: Mapping[str, Any], report: Report) -> EventTrigger | None:
    """The typed trigger, or None after reporting every problem found."""
    path: PathT = ("trigger",)
    errors_before = _Counter(report)
    if "schedule" in raw:
        errors_before(
            "PB0160",
            "a trigger has either 'schedule' or 'event', not both",
            (*path, "schedule"),
            "a scheduled playbook runs over the customer store at set times; an event playbook "
            "runs when an event arrives. Make two playbooks if you need both",
            True,
        )
    follow_keys = [k for k in FOLLOW_KEYS if k in raw]
    if len(follow_keys) > 1:
        errors_before(
            "PB0161",
            f"use only one of {', '.join(FOLLOW_KEYS)} in a trigger (found "
            f"{' and '.join(follow_keys)})",
            (*path, follow_keys[1]),
            "a trigger waits for one pattern; make one playbook per pattern",
            True,
        )
    first = _step(raw, path, errors_before, relative_allowed=False)
    count = None
    follow = None
    if "count" in raw and isinstance(raw["count"], Mapping):
        within = _within(raw["count"], (*path, "count"), errors_before)
        at_least = raw["count"].get("at_least")
        if isinstance(at_least, int) and not 2 <= at_least <= MAX_COUNT:
            errors_before(
                "PB0162",
                f"count.at_least must be between 2 and {MAX_COUNT}, found {at_least}",
                (*path, "count", "at_least"),
                "for a single event leave 'count' out",
            )
        elif within is not None and isinstance(at_least, int):
            count = Count(at_least, within)
    for key in ("then", "then_not"):
        spec = raw.get(key)
        if isinstance(spec, Mapping):
            step = _step(spec, (*path, key), errors_before, relative_allowed=True)
            within = _within(spec, (*path, key), errors_before)
            if step is not None and within is not None:
                follow = FollowUp(step, within, absent=key == "then_not")
    if errors_before.count or first is None:
        return None
    return EventTrigger(first=first, count=count, follow=follow)


class _Counter:
    """Passes reports on and counts them, so the caller knows whether anything failed."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1
        self.report(*args, **kwargs)


def _within(spec: Mapping[str, Any], path: PathT, report: _Counter) -> Any:
    try:
        return parse_duration(spec.get("within"))
    except DurationError as exc:
        report("PB0110", str(exc), (*path, "within"))
        return None


def _types(raw: Any) -> tuple[str, ...]:
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _step(
    spec: Mapping[str, Any], path: PathT, report: _Counter, *, relative_allowed: bool
) -> Step | None:
    types = _types(spec.get("event"))
    if not types or any(t not in EVENT_TYPES for t in types):
        return None  # the schema reported it
    fields = common_fields(types)
    tests: list[FieldTest] = []
    where = spec.get("where") or {}
    ok = True
    for name, value in where.items():
        at: PathT = (*path, "where", name)
        f = fields.get(name)
        if f is None:
            carriers = [t for t in EVENT_TYPES if name in EVENT_TYPES[t].fields]
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            hint += f"'{_words(types)}' carries: {', '.join(fields) or 'no fields'}"
            if carriers:
                hint += f"; '{name}' is a field of: {', '.join(carriers)}"
            report("PB0163", f"event '{_words(types)}' has no field '{name}'", at, hint, True)
            ok = False
            continue
        test = _test(f, value, at, report, relative_allowed)
        if test is None:
            ok = False
        else:
            tests.append(test)
    return Step(types, tuple(tests)) if ok else None


def _words(types: tuple[str, ...]) -> str:
    return " / ".join(types)


def _test(
    f: EventField, value: Any, path: PathT, report: _Counter, relative_allowed: bool
) -> FieldTest | None:
    if isinstance(value, Mapping):
        op, operand = next(iter(value.items()))
        at: PathT = (*path, op)
    elif isinstance(value, list):
        op, operand, at = "in", value, path
    else:
        op, operand, at = "eq", value, path
    allowed = list(CONSTANT_OPS + RELATIVE_OPS) if f.numeric else list(TEXT_OPS)
    if op not in allowed:
        report(
            "PB0164",
            f"'{op}' does not apply to {f.name} ({_type_words(f)})",
            at,
            f"for {f.name} use: {', '.join(allowed)}",
            True,
        )
        return None
    if op in RELATIVE_OPS and not relative_allowed:
        report(
            "PB0165",
            f"'{op}' compares with the first event, but this is the first event",
            at,
            "use it under 'then' or 'then_not', e.g. amount: {gte_ratio: 0.8}",
            True,
        )
        return None
    checked = _operand(f, op, operand, at, report)
    if checked is None:
        return None
    op_typed: Op = op
    return FieldTest(f.name, op_typed, checked)


def _operand(f: EventField, op: str, operand: Any, at: PathT, report: _Counter) -> Any:
    if op in ("in", "not_in"):
        if not isinstance(operand, list) or not operand:
            report("PB0166", f"'{op}' takes a non-empty list of values", at)
            return None
        items = [_scalar(f, v, at, report) for v in operand]
        return None if any(i is None for i in items) else tuple(items)
    if op == "between":
        if not isinstance(operand, list) or len(operand) != 2:
            report("PB0166", "'between' takes two values: [low, high]", at)
            return None
        lo, hi = (_scalar(f, v, at, report) for v in operand)
        if lo is None or hi is None:
            return None
        if lo > hi:
            report("PB0166", f"'between' needs low ≤ high, found [{lo}, {hi}]", at)
            return None
        return (lo, hi)
    if op in RELATIVE_OPS:
        if not _is_number(operand) or operand <= 0:
            report("PB0166", f"'{op}' takes a positive number such as 0.8, found {operand!r}", at)
            return None
        return float(operand)
    return _scalar(f, operand, at, report)


def _scalar(f: EventField, value: Any, at: PathT, report: _Counter) -> Any:
    if f.numeric:
        if not _is_number(value):
            report("PB0166", f"{f.name} is a number; found {value!r}", at)
            return None
        return float(value)
    if not isinstance(value, str):
        report("PB0166", f"{f.name} is text; found {value!r}", at, "quote it")
        return None
    if f.type == "enum" and value not in f.values:
        close = difflib.get_close_matches(value, list(f.values), n=1)
        report(
            "PB0166",
            f"'{value}' is not a {f.name}; expected one of: {', '.join(f.values)}",
            at,
            f"did you mean '{close[0]}'?" if close else None,
        )
        return None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_words(f: EventField) -> str:
    return {"money": "an amount", "integer": "a number", "string": "text", "enum": "a code"}[f.type]
