"""Time arithmetic shared by SQL and Python: relative-date ranges, calendar facts about the
run date, and the cut-off of a change window.

Both evaluators call these, so "older than 60 days" or "the last workday before 中秋" cannot
mean one thing in the database and another in the reference evaluator.
"""

from __future__ import annotations

import datetime as dt

from engine.conditions.ast import CalendarTest, Change
from engine.core import calendar as cal
from engine.core.clock import Clock


def relative_range(
    op: str, span: dt.timedelta, field_type: str, clock: Clock
) -> tuple[dt.date | dt.datetime | None, dt.date | dt.datetime | None, bool]:
    """(low, high, high_exclusive) for ``op``; ``None`` is an open end, ``low`` is inclusive.

    Date fields count whole days against ``today``; datetime fields against ``now``, to the
    instant. The boundary is the day (date fields) or the instant (datetime fields) exactly
    ``span`` from the anchor, and whether it counts is part of each operator's meaning:

    - ``older_than``: before the boundary, which is excluded (``older_than: 60d`` on a date is
      61 days ago or more; kept so for the playbooks written against it).
    - ``at_least``: on or before the boundary, included (``at_least: 60d`` is 60 days ago or
      more), so ``at_least: Nd`` is ``older_than: (N-1)d`` on a date field.
    - ``within_last`` and ``at_most`` (the same range): from the boundary, included, up to the
      anchor, included. ``at_most: 60d`` and ``at_least: 60d`` share the boundary day, as
      ``lte 60`` and ``gte 60`` share 60; the complement of ``at_least: 60d`` among past days
      is ``at_most: 59d``.
    - ``within_next``: from the anchor, included, up to the boundary, included.
    """
    anchor: dt.date | dt.datetime = clock.today if field_type == "date" else clock.now
    if field_type == "date":
        span = dt.timedelta(days=span.days)
    if op == "older_than":
        return None, anchor - span, True
    if op == "at_least":
        return None, anchor - span, False
    if op in ("within_last", "at_most"):
        return anchor - span, anchor, False
    if op == "within_next":
        return anchor, anchor + span, False
    raise ValueError(op)


def calendar_holds(test: CalendarTest, today: dt.date) -> bool:
    """Whether a calendar condition holds on the run date (the same for every customer)."""
    if test.kind == "workday":
        return cal.is_workday(today) is test.value
    assert test.date is not None
    if test.kind == "festival":
        return test.date.falls_on(today)
    if test.kind == "days_before":
        return test.date.falls_on(today + dt.timedelta(days=test.days))
    if test.kind == "last_workday_before":
        upcoming = test.date.next_after(today)
        return upcoming is not None and cal.last_workday_before(upcoming) == today
    raise ValueError(test.kind)


def change_cutoff(change: Change, clock: Clock) -> dt.date:
    """The history value compared is the latest dated on or before this day."""
    return clock.today - dt.timedelta(days=change.over.days)
