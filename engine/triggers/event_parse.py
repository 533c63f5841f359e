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

from engine.core.diagnostics import PathPart
from engine.core.durations import DurationError, parse_duration
from engine.core.i18n import t
from engine.triggers.event import (
    CONSTANT_OPS,
    RELATIVE_OPS,
    Count,
    EventTrigger,
    FieldTest,
    FollowUp,
    Op,
    Step,
)
from engine.triggers.event_catalog import EVENT_TYPES, EventField, common_fields

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
            t("PB0160"),
            (*path, "schedule"),
            t("PB0160.hint"),
            True,
        )
    follow_keys = [k for k in FOLLOW_KEYS if k in raw]
    if len(follow_keys) > 1:
        errors_before(
            "PB0161",
            t("PB0161", keys=", ".join(FOLLOW_KEYS), found=" and ".join(follow_keys)),
            (*path, follow_keys[1]),
            t("PB0161.hint"),
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
                t("PB0162", max=MAX_COUNT, value=at_least),
                (*path, "count", "at_least"),
                t("PB0162.hint"),
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
        report("PB0110", exc.message, (*path, "within"))
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
            guess = t("hint.did_you_mean_then", name=close[0]) if close else ""
            listed = ", ".join(fields) or t("word.no_fields")
            hint = t("PB0163.hint", guess=guess, types=_words(types), fields=listed)
            if carriers:
                also = t("PB0163.carriers", name=name, carriers=", ".join(carriers))
                hint = t("template.join", first=hint, second=also)
            report("PB0163", t("PB0163", types=_words(types), name=name), at, hint, True)
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
            t("PB0164", op=op, name=f.name, type=_type_words(f)),
            at,
            t("PB0164.hint", name=f.name, allowed=", ".join(allowed)),
            True,
        )
        return None
    if op in RELATIVE_OPS and not relative_allowed:
        report(
            "PB0165",
            t("PB0165", op=op),
            at,
            t("PB0165.hint"),
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
            report("PB0166", t("PB0166.list", op=op), at)
            return None
        items = [_scalar(f, v, at, report) for v in operand]
        return None if any(i is None for i in items) else tuple(items)
    if op == "between":
        if not isinstance(operand, list) or len(operand) != 2:
            report("PB0166", t("PB0166.between"), at)
            return None
        lo, hi = (_scalar(f, v, at, report) for v in operand)
        if lo is None or hi is None:
            return None
        if lo > hi:
            report("PB0166", t("PB0166.between_order", low=lo, high=hi), at)
            return None
        return (lo, hi)
    if op in RELATIVE_OPS:
        if not _is_number(operand) or operand <= 0:
            report("PB0166", t("PB0166.ratio", op=op, value=repr(operand)), at)
            return None
        return float(operand)
    return _scalar(f, operand, at, report)


def _scalar(f: EventField, value: Any, at: PathT, report: _Counter) -> Any:
    if f.numeric:
        if not _is_number(value):
            report("PB0166", t("PB0166.number", name=f.name, value=repr(value)), at)
            return None
        return float(value)
    if not isinstance(value, str):
        report(
            "PB0166", t("PB0166.text", name=f.name, value=repr(value)), at, t("PB0166.text.hint")
        )
        return None
    if f.type == "enum" and value not in f.values:
        close = difflib.get_close_matches(value, list(f.values), n=1)
        report(
            "PB0166",
            t("PB0166.enum", value=value, name=f.name, options=", ".join(f.values)),
            at,
            t("hint.did_you_mean", name=close[0]) if close else None,
        )
        return None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_words(f: EventField) -> str:
    return t(f"event.{f.type}")
