"""Deadlines as a bank counts them: calendar time (``48h``, ``3d``) or business days
(``3 workdays``, ``3个工作日``).

A complaint SLA of 48 hours runs through nights and holidays; a visit "within three working
days" does not, and a task created on the Friday before 春节 must not fall due on the holiday's
Monday. The unit says which, so the playbook is explicit:

- ``12h``, ``3d``, ``2w``: calendar time from the moment the task is created;
- ``N workdays`` (``N 工作日``, ``N个工作日``): the end of working hours (``tasks.working_hours``
  in the contact policy) on the N-th official workday after the day the task is created, the
  creation day not counted, make-up workdays (调休) counted, by the deployment's holiday
  calendar (docs/calendar.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from engine.core.durations import DurationError, format_duration, parse_duration
from engine.core.i18n import t
from engine.core.workcalendar import WorkCalendar

_WORKDAYS = re.compile(r"^\s*(\d+)\s*(?:workdays?|个?工作日)\s*$")
MAX_WORKDAYS = 250
EXAMPLES = "3d, 48h, 3 workdays"
DEFAULT_WORKDAY_END = dt.time(17, 30)


@dataclass(frozen=True)
class Deadline:
    """Either calendar time (``span``) or a number of business days (``workdays``)."""

    span: dt.timedelta | None = None
    workdays: int = 0

    def due(self, start: dt.datetime, calendar: WorkCalendar, day_ends: dt.time) -> dt.datetime:
        """When something started at ``start`` (naive local) falls due (naive local)."""
        if self.span is not None:
            return start + self.span
        day = calendar.add_workdays(start.date(), self.workdays)
        return dt.datetime.combine(day, day_ends)

    def __str__(self) -> str:
        if self.span is not None:
            return format_duration(self.span)
        return f"{self.workdays} workday{'s' if self.workdays != 1 else ''}"


def parse_deadline(text: object) -> Deadline:
    """``"3d"`` (calendar) or ``"3 workdays"`` (business); else :class:`DurationError`."""
    if isinstance(text, str):
        match = _WORKDAYS.match(text)
        if match:
            count = int(match.group(1))
            if not 1 <= count <= MAX_WORKDAYS:
                raise DurationError(t("PB0110.workdays", value=text, most=MAX_WORKDAYS))
            return Deadline(workdays=count)
    try:
        return Deadline(span=parse_duration(text))
    except DurationError as exc:
        if isinstance(text, str) and getattr(exc.message, "key", None) == "PB0110.unit":
            raise DurationError(t("PB0110.deadline", value=text, examples=EXAMPLES)) from None
        raise
