"""Relative-date operators reduced to plain ranges, shared by SQL and Python.

Both evaluators call :func:`relative_range`, so "older than 60 days" cannot mean one thing in
the database and another in the reference evaluator.
"""

from __future__ import annotations

import datetime as dt

from engine.conditions.clock import Clock


def relative_range(
    op: str, span: dt.timedelta, field_type: str, clock: Clock
) -> tuple[dt.date | dt.datetime | None, dt.date | dt.datetime | None, bool]:
    """(low, high, high_exclusive) for ``op``; ``None`` is an open end.

    Date fields count whole days against ``today``; datetime fields against ``now``.
    """
    anchor: dt.date | dt.datetime = clock.today if field_type == "date" else clock.now
    if field_type == "date":
        span = dt.timedelta(days=span.days)
    if op == "older_than":
        return None, anchor - span, True
    if op == "within_last":
        return anchor - span, anchor, False
    if op == "within_next":
        return anchor, anchor + span, False
    raise ValueError(op)
