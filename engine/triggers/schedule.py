"""Cron schedules and their slots: the one implementation of the window rule.

A *slot* is one cron fire time in the bank's time zone; its key (local time to the minute,
``2026-11-23T09:00``) is the ledger's window. ``run``, ``dry-run``, ``explain`` and the daemon
all compute slots and windows here, so a slot the daemon claims and the window a run records
are the same string. The daemon's own clock and its APScheduler trigger live in
:mod:`engine.daemon.timesource`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from croniter import croniter


@dataclass(frozen=True)
class Schedule:
    """``trigger: {schedule: CRON}``: five cron fields, in the deployment's time zone."""

    cron: str


def is_valid_cron(cron: str) -> bool:
    """Five fields croniter can read (no seconds field, no ``@daily`` shorthands)."""
    return len(cron.split()) == 5 and bool(croniter.is_valid(cron))


def slot_key(slot: dt.datetime) -> str:
    """The window string of a (naive local) slot: what the ledger and the claims are keyed by."""
    return slot.replace(second=0, microsecond=0).isoformat(timespec="minutes")


def next_slot(cron: str, after: dt.datetime) -> dt.datetime:
    """The first slot strictly after ``after`` (both naive local times)."""
    return croniter(cron, after).get_next(dt.datetime)  # type: ignore[no-any-return]


def latest_slot(cron: str, at: dt.datetime) -> dt.datetime:
    """The latest slot at or before ``at`` (naive local)."""
    after = at.replace(microsecond=0) + dt.timedelta(seconds=1)
    return croniter(cron, after).get_prev(dt.datetime)  # type: ignore[no-any-return]


def window_at(cron: str, at: dt.datetime) -> str:
    """The window ``at`` (naive local) falls in: the key of the latest slot at or before it.

    Ledger rows are unique per (playbook, customer, window), so two runs inside one slot act
    once; the next slot is a new window.
    """
    return slot_key(latest_slot(cron, at))


def first_slot_on(cron: str, day: dt.date) -> dt.datetime | None:
    """The first slot on ``day`` (naive local), or None when the schedule skips that day."""
    start = dt.datetime.combine(day, dt.time()) - dt.timedelta(seconds=1)
    fire: dt.datetime = croniter(cron, start).get_next(dt.datetime)
    return fire if fire.date() == day else None


def slots_between(cron: str, after: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
    """Slots in ``(after, until]``, oldest first (naive local times)."""
    it = croniter(cron, after)
    while True:
        slot: dt.datetime = it.get_next(dt.datetime)
        if slot > until:
            return
        yield slot


_WEEKDAYS = "日一二三四五六日"


def in_words(cron: str) -> str:
    """A schedule as an editor says it: ``0 9 * * 1-5`` → 每个工作日 09:00. Shapes beyond the
    common ones are shown as the cron text itself, never guessed at."""
    parts = cron.split()
    if len(parts) != 5 or not (parts[0].isdigit() and parts[1].isdigit()):
        return cron
    minute, hour, day, month, weekday = parts
    at = f"{int(hour):02d}:{int(minute):02d}"
    if day == "*" and month == "*":
        if weekday == "*":
            return f"每天 {at}"
        if weekday == "1-5":
            return f"每个工作日 {at}"
        if weekday in ("0,6", "6,0", "6-7", "0,6-6"):
            return f"每个周末 {at}"
        if weekday.isdigit() and int(weekday) <= 7:
            return f"每周{_WEEKDAYS[int(weekday)]} {at}"
    if weekday == "*" and day.isdigit():
        if month == "*":
            return f"每月{int(day)}日 {at}"
        if month.isdigit():
            return f"每年{int(month)}月{int(day)}日 {at}"
    return cron
