"""China-aware calendar facts: lunar dates, festivals and anniversaries.

Everything here is a pure function of a date, so the SQL compiler and the Python reference
evaluator ask the same questions and get the same answers.

Sources, and what happens past them:

- **Lunar calendar**: ``lunar-python`` (MIT), read once per lunar year into a small table of
  months. We support lunar years 1900–2100 (:data:`LUNAR_FIRST_YEAR`, :data:`LUNAR_LAST_YEAR`):
  a solar date outside them has no lunar date here, so a lunar anniversary of it is false, and
  an explicit lunar date outside them is a validation error.
- **Official holidays and make-up workdays (调休)**: not here but in
  :mod:`engine.core.workcalendar`, because they come from the bank's own files as well as
  from ``chinese-calendar``, and a run must know which answered.

Rules we chose, documented in docs/playbooks.md:

- Born on 29 February: in a year without one the anniversary is 28 February.
- Lunar anniversaries are kept in the ordinary (non-leap) month of the same number, so a
  customer born in a leap month (闰月) celebrates in that month's ordinary twin, and nothing is
  celebrated in a leap month. Born on the 30th: in a 29-day month it is kept on the 29th.
- A year-less lunar date on the 30th falls on the 29th in a short month (除夕 does so too);
  a year-less 02-29 falls on 28 February in a common year.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from lunar_python import Lunar, LunarYear

LUNAR_FIRST_YEAR = 1900
LUNAR_LAST_YEAR = 2100
_JD_TO_ORDINAL = 1_721_425  # lunar-python's integer Julian day minus date.toordinal()

CalendarKind = Literal["solar", "lunar"]


# --- lunar dates -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class LunarDay:
    year: int
    month: int  # 1 … 12
    day: int  # 1 … 30
    leap: bool = False


@dataclass(frozen=True)
class _Month:
    month: int
    leap: bool
    first: int  # ordinal of its first day
    days: int


@functools.cache
def _months(year: int) -> tuple[_Month, ...]:
    """The months of one lunar year, in order (a pure function, so memoised)."""
    return tuple(
        _Month(
            abs(m.getMonth()),
            m.getMonth() < 0,
            m.getFirstJulianDay() - _JD_TO_ORDINAL,
            m.getDayCount(),
        )
        for m in LunarYear.fromYear(year).getMonthsInYear()
    )


def to_lunar(day: dt.date) -> LunarDay | None:
    """The lunar date of a solar date, or None outside the supported lunar years."""
    ordinal = day.toordinal()
    for year in (day.year, day.year - 1):
        if not LUNAR_FIRST_YEAR <= year <= LUNAR_LAST_YEAR:
            continue
        months = _months(year)
        if ordinal < months[0].first:
            continue
        index = bisect.bisect_right([m.first for m in months], ordinal) - 1
        month = months[index]
        if ordinal >= month.first + month.days:
            return None  # after the last lunar year we cover
        return LunarDay(year, month.month, ordinal - month.first + 1, month.leap)
    return None


def month_length(year: int, month: int, leap: bool = False) -> int | None:
    """Days in a lunar month (29 or 30), or None when the year has no such month."""
    if not LUNAR_FIRST_YEAR <= year <= LUNAR_LAST_YEAR:
        return None
    for m in _months(year):
        if m.month == month and m.leap == leap:
            return m.days
    return None


def to_solar(year: int, month: int, day: int, leap: bool = False) -> dt.date | None:
    """The solar date of a lunar date, or None when that lunar date does not exist."""
    if not LUNAR_FIRST_YEAR <= year <= LUNAR_LAST_YEAR:
        return None
    for m in _months(year):
        if m.month == month and m.leap == leap:
            return dt.date.fromordinal(m.first + day - 1) if 1 <= day <= m.days else None
    return None


# --- dates that recur every year ----------------------------------------------------------------


@dataclass(frozen=True)
class YearlyDate:
    """A date that comes back every year: solar or lunar month and day, optionally one year only.

    ``key`` names a festival with a rule of its own (除夕, 清明); it overrides month and day.
    """

    calendar: CalendarKind
    month: int
    day: int
    year: int | None = None
    key: str | None = None

    def occurrences(self, solar_year: int) -> list[dt.date]:
        """Every occurrence that falls in the solar year ``solar_year``."""
        if self.key == "chuxi":
            first = to_solar(solar_year, 1, 1)
            return [first - dt.timedelta(days=1)] if first else []
        if self.key == "qingming":
            return [qingming(solar_year)] if 1901 <= solar_year <= 2099 else []
        found: list[dt.date] = []
        if self.calendar == "solar":
            if self.year in (None, solar_year):
                found.append(solar_in_year(solar_year, self.month, self.day))
            return found
        for lunar_year in (solar_year - 1, solar_year):
            if self.year not in (None, lunar_year):
                continue
            length = month_length(lunar_year, self.month)
            if length is None:
                continue
            day = to_solar(lunar_year, self.month, min(self.day, length))
            if day is not None and day.year == solar_year:
                found.append(day)
        return found

    def falls_on(self, day: dt.date) -> bool:
        return day in self.occurrences(day.year)

    def next_after(self, day: dt.date) -> dt.date | None:
        """The first occurrence strictly after ``day`` (looking two years ahead at most)."""
        for year in (day.year, day.year + 1, day.year + 2):
            later = [d for d in self.occurrences(year) if d > day]
            if later:
                return min(later)
        return None


def solar_in_year(year: int, month: int, day: int) -> dt.date:
    """Month and day in ``year``; 29 February becomes 28 February in a common year."""
    if month == 2 and day == 29 and not is_leap_year(year):
        return dt.date(year, 2, 28)
    return dt.date(year, month, day)


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@functools.cache
def qingming(year: int) -> dt.date:
    """清明, a solar term: 4 or 5 April, from lunar-python's astronomical tables."""
    table = Lunar.fromYmd(year, 3, 1).getJieQiTable()
    solar = table["清明"]
    return dt.date(solar.getYear(), solar.getMonth(), solar.getDay())


@dataclass(frozen=True)
class Festival:
    key: str
    name: str  # Chinese
    english: str
    date: YearlyDate


def _festival(key: str, name: str, english: str, cal: CalendarKind, md: str) -> Festival:
    month, day = (int(p) for p in md.split("-"))
    special = key if key in ("chuxi", "qingming") else None
    return Festival(key, name, english, YearlyDate(cal, month, day, key=special))


FESTIVALS: Mapping[str, Festival] = MappingProxyType(
    {
        f.key: f
        for f in (
            _festival("new_year", "元旦", "New Year's Day", "solar", "01-01"),
            _festival("laba", "腊八", "Laba Festival", "lunar", "12-08"),
            _festival("xiaonian", "小年", "Little New Year (north)", "lunar", "12-23"),
            _festival("chuxi", "除夕", "Chinese New Year's Eve", "lunar", "12-30"),
            _festival("spring_festival", "春节", "Spring Festival", "lunar", "01-01"),
            _festival("lantern", "元宵", "Lantern Festival", "lunar", "01-15"),
            _festival("womens_day", "妇女节", "International Women's Day", "solar", "03-08"),
            _festival("qingming", "清明", "Qingming Festival", "solar", "04-05"),
            _festival("labour_day", "劳动节", "Labour Day", "solar", "05-01"),
            _festival("dragon_boat", "端午", "Dragon Boat Festival", "lunar", "05-05"),
            _festival("childrens_day", "儿童节", "Children's Day", "solar", "06-01"),
            _festival("qixi", "七夕", "Qixi Festival", "lunar", "07-07"),
            _festival("teachers_day", "教师节", "Teachers' Day", "solar", "09-10"),
            _festival("mid_autumn", "中秋", "Mid-Autumn Festival", "lunar", "08-15"),
            _festival("national_day", "国庆", "National Day", "solar", "10-01"),
            _festival("double_ninth", "重阳", "Double Ninth Festival", "lunar", "09-09"),
        )
    }
)
"""Festivals by key; playbooks may name them by key or by Chinese name (with or without 节)."""


def _spellings(f: Festival) -> tuple[str, ...]:
    long = () if f.name.endswith("节") else (f.name + "节",)
    return (f.name, *long, f.key)


def find_festival(name: str) -> Festival | None:
    for f in FESTIVALS.values():
        if name in _spellings(f):
            return f
    return None


def festival_names() -> list[str]:
    """Every accepted spelling: Chinese name (also with 节), and the English key."""
    return [s for f in FESTIVALS.values() for s in _spellings(f)]


# --- anniversaries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class YearsFilter:
    """Which anniversaries count: any (``None``), listed years, or every N years."""

    years: tuple[int, ...] | None = None
    every: int | None = None

    def accepts(self, n: int) -> bool:
        if n < 1:
            return False
        if self.years is not None:
            return n in self.years
        if self.every is not None:
            return n % self.every == 0
        return True


def solar_month_days(target: dt.date) -> list[tuple[int, int]]:
    """The (month, day) pairs whose solar anniversary is ``target`` (29 Feb rule included)."""
    pairs = [(target.month, target.day)]
    if target.month == 2 and target.day == 28 and not is_leap_year(target.year):
        pairs.append((2, 29))
    return pairs


def solar_anniversary(born: dt.date, target: dt.date, years: YearsFilter) -> bool:
    """Whether ``target`` is a counted solar anniversary of ``born``."""
    if (born.month, born.day) not in solar_month_days(target):
        return False
    return years.accepts(target.year - born.year)


def lunar_anniversary(born: dt.date, target: dt.date, years: YearsFilter) -> bool:
    """Whether ``target`` is a counted lunar anniversary of ``born`` (rules in the module doc)."""
    b, t = to_lunar(born), to_lunar(target)
    if b is None or t is None or t.leap or b.month != t.month:
        return False
    if b.day != t.day:
        short = month_length(t.year, t.month) == 29
        if not (short and t.day == 29 and b.day == 30):
            return False
    return years.accepts(t.year - b.year)


def lunar_anniversary_births(target: dt.date, years: YearsFilter) -> list[dt.date]:
    """Every solar birth date whose lunar anniversary is ``target``, over the lunar years we
    support: the set an SQL query can test with ``IN``, so lunar birthdays stay one query."""
    t = to_lunar(target)
    if t is None or t.leap:
        return []
    days = [t.day]
    if t.day == 29 and month_length(t.year, t.month) == 29:
        days.append(30)
    found: list[dt.date] = []
    for year in range(LUNAR_FIRST_YEAR, t.year):
        if not years.accepts(t.year - year):
            continue
        for leap in (False, True):
            for day in days:
                solar = to_solar(year, t.month, day, leap)
                if solar is not None:
                    found.append(solar)
    return sorted(found)
