"""Time arithmetic shared by SQL and Python: relative-date ranges, calendar facts about the
run date, and the cut-off of a change window.

Both evaluators call these, so "older than 60 days" or "the last workday before 中秋" cannot
mean one thing in the database and another in the reference evaluator.
"""

from __future__ import annotations

import datetime as dt

from engine.conditions.ast import All, AnyOf, CalendarTest, Change, Condition, Not, SegmentRef
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


def calendar_holds(test: CalendarTest, clock: Clock) -> bool:
    """Whether a calendar condition holds on the run date (the same for every customer)."""
    today = clock.today
    if test.kind == "workday":
        return clock.calendar.is_workday(today) is test.value
    assert test.date is not None
    if test.kind == "festival":
        return test.date.falls_on(today)
    if test.kind == "days_before":
        return test.date.falls_on(today + dt.timedelta(days=test.days))
    if test.kind == "last_workday_before":
        upcoming = test.date.next_after(today)
        return upcoming is not None and clock.calendar.last_workday_before(upcoming) == today
    raise ValueError(test.kind)


def estimated_days(test: CalendarTest, clock: Clock) -> tuple[dt.date, ...]:
    """The guessed days (estimated near a holiday, no official notice) that ``test``'s answer
    on the run date rests on; empty when certain days alone decide it. A festival's date does
    not depend on the notice. "The last workday before" does, on every day from the run date
    up to the festival, unless a certain workday between them already makes the answer no."""
    calendar, today = clock.calendar, clock.today
    if test.kind == "workday":
        return (today,) if calendar.is_guess(today) else ()
    if test.kind != "last_workday_before":
        return ()
    assert test.date is not None
    upcoming = test.date.next_after(today)
    if upcoming is None:
        return ()
    later = [today + dt.timedelta(days=k) for k in range(1, (upcoming - today).days)]
    if any(not calendar.is_guess(d) and calendar.is_workday(d) for d in later):
        return ()  # a certain workday comes later: today is not the last one, certainly
    return tuple(d for d in (today, *later) if calendar.is_guess(d))


def calendar_tests_in(condition: Condition) -> list[CalendarTest]:
    """The calendar tests of a condition, through all/any/not and segments."""
    found: list[CalendarTest] = []
    stack = [condition]
    while stack:
        item = stack.pop()
        if isinstance(item, All | AnyOf):
            stack.extend(item.items)
        elif isinstance(item, Not | SegmentRef):
            stack.append(item.item)
        elif isinstance(item, CalendarTest):
            found.append(item)
    return found


def rests_on_workdays(condition: Condition) -> bool:
    """Whether the condition asks the holiday notice (workday, last workday before)."""
    kinds = ("workday", "last_workday_before")
    return any(test.kind in kinds for test in calendar_tests_in(condition))


def estimated_days_in(condition: Condition, clock: Clock) -> tuple[dt.date, ...]:
    """Every guessed day a condition's calendar tests rest on at ``clock`` (sorted, once
    each): what dry-run, explain and the run record say, and what policy may hold for."""
    found = {d for test in calendar_tests_in(condition) for d in estimated_days(test, clock)}
    return tuple(sorted(found))


def change_cutoff(change: Change, clock: Clock) -> dt.date:
    """The history value compared is the latest dated on or before this day."""
    return clock.today - dt.timedelta(days=change.over.days)
