"""Official workdays in mainland China, and where each answer came from.

Whether a day is a workday is decided by the State Council's yearly notice (国务院办公厅关于
部分节假日安排的通知): the statutory holidays, the weekends joined to them, and the make-up
workdays (调休) that pay for the joins. The notice is published once a year, usually in
November, so three sources answer, in this order:

1. **file**: ``config/calendar/CN-YYYY.yaml``, the notice typed in by the bank (format and
   procedure in docs/calendar.md). It overrides everything else for its year, so a bank is
   never waiting for a library release when 1 January comes.
2. **library**: ``chinese-calendar``, which carries the notices up to the year it was released.
3. **estimate**: Monday–Friday minus the statutory days fixed by the 全国年节及纪念日放假办法
   (2025 version): 元旦 1 day, 春节 4 days (除夕–初三), 清明, 劳动节 2 days, 端午, 中秋,
   国庆 3 days. Make-up workdays cannot be guessed and the holiday bridges are unknown, so an
   estimate is wrong on some days of every year — but only near a holiday: every notice from
   2004 to 2026 kept each day more than :data:`GUESS_MARGIN` days from every statutory day
   an ordinary weekday or weekend (the one exception was the one-off 2015 抗战胜利70周年
   holiday; a test keeps this checked against the package). So an estimated day near a
   holiday is a *guess* (:meth:`WorkCalendar.is_guess`); every decision that rests on a guess
   says so, and policy decides whether workday-only playbooks act on such a day.

A :class:`WorkCalendar` is immutable; the run's :class:`~engine.core.clock.Clock` carries the
one in force, so the SQL compiler and the reference evaluator ask the same calendar.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import chinese_calendar

from engine.core.calendar import qingming, to_solar

Source = Literal["file", "library", "estimate"]
SOURCES: tuple[Source, ...] = ("file", "library", "estimate")

# chinese-calendar names its holidays in English; people read them in Chinese
GUESS_MARGIN = 10  # days around a statutory holiday where an estimate may be wrong

LIBRARY_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "New Year's Day": "元旦",
        "Spring Festival": "春节",
        "Tomb-sweeping Day": "清明节",
        "Labour Day": "劳动节",
        "Dragon Boat Festival": "端午节",
        "Mid-autumn Festival": "中秋节",
        "National Day": "国庆节",
        "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
    }
)


@dataclass(frozen=True)
class YearNotice:
    """One year's official schedule: its days off and make-up workdays, each with the holiday
    it belongs to. ``days_off`` holds every day of each holiday, weekends inside included."""

    year: int
    days_off: Mapping[dt.date, str]
    workdays: Mapping[dt.date, str]
    source: Source
    where: str  # the file, or the library and its version
    notice: str | None = None  # the notice's title, as the file gives it

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.days_off


@dataclass(frozen=True)
class DayFact:
    """What one day is, and who said so: for ``calendar show`` and the console."""

    day: dt.date
    workday: bool
    kind: Literal["holiday", "makeup", "weekend", "workday"]
    name: str | None
    source: Source


@functools.cache
def library_years() -> tuple[int, int]:
    """First and last year the installed chinese-calendar has official notices for."""
    known = list(chinese_calendar.constants.holidays) + list(chinese_calendar.constants.workdays)
    return min(known).year, max(known).year


def library_version() -> str:
    return f"chinese-calendar {getattr(chinese_calendar, '__version__', '?')}"


@functools.cache
def library_notice(year: int) -> YearNotice | None:
    """The library's notice for ``year``, or None beyond the years it ships."""
    first, last = library_years()
    if not first <= year <= last:
        return None

    def named(table: Mapping[dt.date, object]) -> dict[dt.date, str]:
        return {
            day: LIBRARY_NAMES.get(str(name), str(name))
            for day, name in sorted(table.items())
            if day.year == year
        }

    return YearNotice(
        year,
        MappingProxyType(named(chinese_calendar.constants.holidays)),
        MappingProxyType(named(chinese_calendar.constants.workdays)),
        "library",
        library_version(),
    )


@functools.cache
def statutory_days(year: int) -> Mapping[dt.date, str]:
    """The statutory holiday days of a year by the rules alone, without the yearly notice."""
    days: dict[dt.date, str] = {dt.date(year, 1, 1): "元旦"}
    spring = to_solar(year, 1, 1)
    if spring is not None:
        days |= {spring + dt.timedelta(days=k): "春节" for k in (-1, 0, 1, 2)}
    if 1901 <= year <= 2099:
        days[qingming(year)] = "清明节"
    days |= {dt.date(year, 5, 1): "劳动节", dt.date(year, 5, 2): "劳动节"}
    for month, day, name in ((5, 5, "端午节"), (8, 15, "中秋节")):
        found = to_solar(year, month, day)
        if found is not None:
            days[found] = name
    days |= {dt.date(year, 10, d): "国庆节" for d in (1, 2, 3)}
    return MappingProxyType(dict(sorted(days.items())))


@dataclass(frozen=True)
class WorkCalendar:
    """Workdays from the bank's files first, then the library, then the estimate."""

    files: Mapping[int, YearNotice] = field(default_factory=dict)

    def notice(self, year: int) -> YearNotice | None:
        """The official schedule of ``year`` (file or library), or None: estimated."""
        return self.files.get(year) or library_notice(year)

    def source(self, day: dt.date) -> Source:
        notice = self.notice(day.year)
        return notice.source if notice is not None else "estimate"

    def is_estimated(self, day: dt.date) -> bool:
        return self.notice(day.year) is None

    def is_guess(self, day: dt.date) -> bool:
        """Estimated, and close enough to a statutory holiday that the notice may decide
        otherwise (a bridge day off, a make-up workday): what decisions must not rest on
        silently."""
        if not self.is_estimated(day):
            return False
        near = [
            *statutory_days(day.year - 1),
            *statutory_days(day.year),
            *statutory_days(day.year + 1),
        ]
        return any(abs((day - s).days) <= GUESS_MARGIN for s in near)

    def is_workday(self, day: dt.date) -> bool:
        """Whether ``day`` is an official workday (make-up workdays included)."""
        notice = self.notice(day.year)
        if notice is not None:
            return notice.is_workday(day)
        return day.weekday() < 5 and day not in statutory_days(day.year)

    def last_workday_before(self, day: dt.date) -> dt.date:
        """The last workday strictly before ``day``."""
        probe = day - dt.timedelta(days=1)
        while not self.is_workday(probe):
            probe -= dt.timedelta(days=1)
        return probe

    def add_workdays(self, start: dt.date, count: int) -> dt.date:
        """The ``count``-th workday after ``start`` (``start`` itself not counted)."""
        probe = start
        while count > 0:
            probe += dt.timedelta(days=1)
            count -= self.is_workday(probe)
        return probe

    def guesses_between(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """The days from ``first`` to ``last`` (inclusive) whose status is a guess."""
        return [d for d in _days(first, last) if self.is_guess(d)]

    def official_through(self, today: dt.date) -> int | None:
        """The last year with an official schedule, counting on from ``today``'s year without
        a gap; None when ``today``'s own year is estimated."""
        year = today.year
        if self.notice(year) is None:
            return None
        while self.notice(year + 1) is not None:
            year += 1
        return year

    def year(self, year: int) -> list[DayFact]:
        """Every day of ``year`` that is not an ordinary weekday workday: days off (holidays
        and weekends) and make-up workdays, with where the answer came from."""
        notice = self.notice(year)
        source: Source = notice.source if notice is not None else "estimate"
        off = notice.days_off if notice is not None else statutory_days(year)
        makeup = notice.workdays if notice is not None else {}
        facts = []
        for day in _days(dt.date(year, 1, 1), dt.date(year, 12, 31)):
            if day in makeup:
                facts.append(DayFact(day, True, "makeup", makeup[day], source))
            elif day in off:
                facts.append(DayFact(day, False, "holiday", off[day], source))
            elif day.weekday() >= 5:
                facts.append(DayFact(day, False, "weekend", None, source))
        return facts


LIBRARY = WorkCalendar()
"""The calendar without any bank file: library years, then the estimate."""


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)
