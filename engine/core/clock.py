"""The run's notion of "now", in the bank's time zone.

Customer timestamps are naive local times, so every relative condition is computed against
the naive local ``now`` and ``today`` of the run's ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from engine.core.errors import UsageError
from engine.core.workcalendar import LIBRARY, WorkCalendar


@dataclass(frozen=True)
class Clock:
    """The run's moment, and the workday calendar in force for it (the deployment's files,
    then the library, then the estimate), so every evaluator asks the same calendar."""

    as_of: dt.datetime  # aware
    calendar: WorkCalendar = field(default=LIBRARY, compare=False, repr=False)

    @classmethod
    def at(cls, as_of: dt.datetime, tz: ZoneInfo, calendar: WorkCalendar = LIBRARY) -> Clock:
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=tz)
        return cls(as_of.astimezone(tz), calendar)

    def using(self, calendar: WorkCalendar) -> Clock:
        """The same moment under another calendar."""
        return Clock(self.as_of, calendar)

    @property
    def now(self) -> dt.datetime:
        """Naive local time, comparable with the store's timestamps."""
        return self.as_of.replace(tzinfo=None)

    @property
    def today(self) -> dt.date:
        return self.as_of.date()

    def utc_naive(self) -> dt.datetime:
        return self.as_of.astimezone(dt.UTC).replace(tzinfo=None)


# --- the conventions, in one place ---------------------------------------------------------
# The engine's own timestamps (runs, ledger, outbox, tasks) are naive UTC; the bank's data and
# the schedule's slots and windows are naive local time in the bank's zone. Every conversion
# between the two, and between them and aware moments, goes through these functions.


def utc_now() -> dt.datetime:
    """The wall clock as naive UTC, for the engine's own timestamps."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """An aware moment as naive UTC (the convention of the engine's own timestamps)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def local_naive(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A moment as the bank's naive local time (the convention of slots and windows); a naive
    moment is taken to be local already."""
    return Clock.at(moment, tz).now


def utc_to_local(utc: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A naive UTC timestamp as naive local time in ``tz``."""
    return utc.replace(tzinfo=dt.UTC).astimezone(tz).replace(tzinfo=None)


def local_to_utc(local: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A naive local time in ``tz`` as a naive UTC timestamp."""
    return local.replace(tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None)


def as_utc_naive(moment: dt.datetime) -> dt.datetime:
    """An engine timestamp from either form: naive is naive UTC already, aware is converted."""
    return moment if moment.tzinfo is None else utc_naive(moment)


def parse_day(text: str, what: str) -> dt.date:
    """A local calendar day written YYYY-MM-DD, or a usage error naming ``what`` was wrong
    (an option of a command, a field of a console page)."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(
            f"{what} {text!r} is not a date",
            code="E0310",
            hint="write the local calendar day as YYYY-MM-DD, e.g. 2026-12-04",
        ) from exc
