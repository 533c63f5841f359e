"""Plausibility bounds (``valid:`` in the data dictionary), in Python and in SQL alike.

A birthday in the future or a negative AUM is a well-formed value that cannot be true. Such a
value reads as empty, exactly like a malformed one (:func:`engine.conditions.sql.checked`):
every condition on it is false, except ne / not_in / is_null: true, and the run counts it as
*implausible*. Bounds relative to the run (``not_after: today``) come from the clock and are
bound parameters, so SQLite and PostgreSQL agree with each other and with the reference
evaluator, and a dry run for another day judges the data as of that day.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Dialect,
    Float,
    Integer,
    Numeric,
    and_,
    case,
    literal,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from engine.core.clock import Clock
from engine.core.dictionary import TODAY, Field


def _date_limits(f: Field, clock: Clock) -> tuple[Any, Any]:
    """(lowest, first value past the bound) for a date or datetime field; None = unbounded.
    A datetime is judged by its day: ``not_after: today`` admits any time of the run's date."""
    assert f.valid is not None
    low: Any = f.valid.not_before
    after = f.valid.not_after
    last = clock.today if after == TODAY or isinstance(after, str) else after
    high: Any = None if last is None else last + dt.timedelta(days=1)
    if f.type == "datetime":
        low = None if low is None else dt.datetime.combine(low, dt.time())
        high = None if high is None else dt.datetime.combine(high, dt.time())
    return low, high


def why_implausible(f: Field, value: Any, clock: Clock) -> str | None:
    """Why ``value`` is outside the field's bounds, or None when it is within them (or empty)."""
    if f.valid is None or value is None:
        return None
    if f.is_numeric:
        if f.valid.min is not None and value < f.valid.min:
            return f"below the minimum {f.valid.min:g}"
        if f.valid.max is not None and value > f.valid.max:
            return f"above the maximum {f.valid.max:g}"
        return None
    low, high = _date_limits(f, clock)
    if f.type == "date" and isinstance(value, dt.datetime):
        value = value.date()
    if low is not None and value < low:
        return f"before {f.valid.not_before}"
    if high is not None and value >= high:
        limit = "today" if f.valid.not_after == TODAY else str(f.valid.not_after)
        return f"after {limit} ({_last_day(high)})" if limit == "today" else f"after {limit}"
    return None


def _last_day(high: Any) -> str:
    day = high.date() if isinstance(high, dt.datetime) else high
    return (day - dt.timedelta(days=1)).isoformat()


def usable(f: Field, value: Any, clock: Clock) -> Any:
    """``value``, or None when it is outside the field's bounds."""
    return None if why_implausible(f, value, clock) is not None else value


class _Bound(TypeDecorator[float]):
    """A numeric bound, sent to PostgreSQL as NUMERIC: sent as a float, it makes the server
    cast a NUMERIC column to double precision on every row (through its text form), which
    was most of a money filter's time at 1M customers. SQLite compares numbers as numbers."""

    impl = Float
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Numeric() if dialect.name == "postgresql" else Float())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and dialect.name == "postgresql":
            return Decimal(repr(float(value)))
        return value


_BOUND = _Bound()


def _number(f: Field, bound: float) -> ColumnElement[Any]:
    """A numeric bound as the column compares cheapest: an integer for an integer field."""
    if f.type == "integer" and float(bound).is_integer():
        return literal(int(bound), Integer())
    return literal(bound, _BOUND)


def bounded(value: ColumnElement[Any], f: Field, clock: Clock) -> ColumnElement[Any]:
    """``value`` (already checked for its type), NULL when outside the field's bounds."""
    if f.valid is None:
        return value
    within: list[ColumnElement[bool]] = []
    if f.is_numeric:
        if f.valid.min is not None:
            within.append(value >= _number(f, f.valid.min))
        if f.valid.max is not None:
            within.append(value <= _number(f, f.valid.max))
    else:
        low, high = _date_limits(f, clock)
        kind = Date() if f.type == "date" else DateTime()
        if low is not None:
            within.append(value >= literal(low, kind))
        if high is not None:
            within.append(value < literal(high, kind))
    if not within:
        return value
    return case((and_(*within), value), else_=None)
