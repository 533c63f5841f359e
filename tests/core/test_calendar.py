"""China-aware calendar facts: lunar conversion, festivals, official workdays with 调休, the
statutory estimate past the published years, and the anniversary rules (29 Feb, lunar 30th,
leap months)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from lunar_python import Solar

from engine.core import calendar as cal

D = dt.date
ANY = cal.YearsFilter()


def test_to_lunar_agrees_with_lunar_python_across_the_range() -> None:
    rng = random.Random(4)
    lo, hi = D(1900, 1, 31).toordinal(), D(2100, 12, 31).toordinal()
    for _ in range(120):
        day = D.fromordinal(rng.randint(lo, hi))
        ours = cal.to_lunar(day)
        theirs = Solar.fromYmd(day.year, day.month, day.day).getLunar()
        assert ours is not None
        month = -ours.month if ours.leap else ours.month
        expected = (theirs.getYear(), theirs.getMonth(), theirs.getDay())
        assert (ours.year, month, ours.day) == expected
        assert cal.to_solar(ours.year, ours.month, ours.day, ours.leap) == day


def test_outside_the_lunar_range_there_is_no_lunar_date() -> None:
    assert cal.to_lunar(D(1900, 1, 30)) is None
    assert cal.to_lunar(D(1899, 6, 1)) is None
    assert cal.to_lunar(D(2150, 1, 1)) is None
    assert cal.to_solar(1899, 1, 1) is None
    assert cal.to_solar(2025, 2, 30) is None  # the 2nd month of 2025 has 29 days
    assert cal.month_length(2025, 6, leap=True) == 29  # 2025 has a leap 6th month


@pytest.mark.parametrize(
    ("name", "year", "expected"),
    [
        ("春节", 2026, D(2026, 2, 17)),
        ("春节", 2027, D(2027, 2, 6)),
        ("除夕", 2026, D(2026, 2, 16)),
        ("除夕", 2025, D(2025, 1, 28)),  # a 29-day 12th month: 除夕 is the 29th
        ("元宵", 2026, D(2026, 3, 3)),
        ("端午", 2026, D(2026, 6, 19)),
        ("七夕", 2026, D(2026, 8, 19)),
        ("中秋", 2025, D(2025, 10, 6)),
        ("中秋", 2026, D(2026, 9, 25)),
        ("重阳", 2026, D(2026, 10, 18)),
        ("清明", 2025, D(2025, 4, 4)),
        ("清明", 2026, D(2026, 4, 5)),
        ("国庆节", 2026, D(2026, 10, 1)),
        ("new_year", 2027, D(2027, 1, 1)),
        ("腊八", 2027, D(2027, 1, 15)),
    ],
)
def test_festival_dates(name: str, year: int, expected: dt.date) -> None:
    festival = cal.find_festival(name)
    assert festival is not None
    assert festival.date.occurrences(year) == [expected]
    assert festival.date.falls_on(expected)
    assert not festival.date.falls_on(expected + dt.timedelta(days=1))


def test_lunar_30th_without_year_falls_on_the_29th_in_a_short_month() -> None:
    eve = cal.YearlyDate("lunar", 12, 30)
    assert eve.occurrences(2025) == [D(2025, 1, 28)]  # lunar 2024-12 has 29 days
    assert eve.occurrences(2026) == [D(2026, 2, 16)]


def test_29_february_anniversary_is_28_february_in_a_common_year() -> None:
    born = D(2000, 2, 29)
    assert cal.solar_anniversary(born, D(2027, 2, 28), ANY)
    assert not cal.solar_anniversary(born, D(2027, 3, 1), ANY)
    assert cal.solar_anniversary(born, D(2028, 2, 29), ANY)
    assert not cal.solar_anniversary(born, D(2028, 2, 28), ANY)
    assert cal.solar_anniversary(D(2000, 2, 28), D(2028, 2, 28), ANY)
    assert not cal.solar_anniversary(born, D(2000, 2, 29), ANY)  # year 0 is no anniversary


def test_years_filter() -> None:
    assert cal.YearsFilter(every=5).accepts(10) and not cal.YearsFilter(every=5).accepts(11)
    assert cal.YearsFilter(years=(1, 10)).accepts(10)
    assert not cal.YearsFilter(years=(1, 10)).accepts(5)
    assert not ANY.accepts(0) and not ANY.accepts(-3)


def test_lunar_birthday_rules() -> None:
    # born on lunar 1990-08-15 (1990-10-03): celebrated on 中秋 every year
    born = D(1990, 10, 3)
    assert cal.to_lunar(born) == cal.LunarDay(1990, 8, 15)
    assert cal.lunar_anniversary(born, D(2026, 9, 25), ANY)
    assert cal.lunar_anniversary(born, D(2026, 9, 25), cal.YearsFilter(years=(36,)))
    assert not cal.lunar_anniversary(born, D(2026, 10, 3), ANY)  # the solar date is not it
    # born in a leap month: kept in the ordinary month of the same number
    leap_born = cal.to_solar(2020, 4, 10, leap=True)
    assert leap_born is not None
    assert cal.lunar_anniversary(leap_born, cal.to_solar(2026, 4, 10) or D.min, ANY)
    # nothing is celebrated in a leap month: 2025 has a leap 6th month
    leap_day = cal.to_solar(2025, 6, 10, leap=True)
    assert leap_day is not None
    assert not cal.lunar_anniversary(cal.to_solar(2000, 6, 10) or D.min, leap_day, ANY)
    # born on the 30th: in a 29-day month it is kept on the 29th
    born30 = next(
        d
        for y in range(1980, 2000)
        if cal.month_length(y, 2) == 30 and (d := cal.to_solar(y, 2, 30)) is not None
    )
    short = next(y for y in range(2026, 2060) if cal.month_length(y, 2) == 29)
    assert cal.lunar_anniversary(born30, cal.to_solar(short, 2, 29) or D.min, ANY)


@pytest.mark.parametrize(
    "target",
    [D(2026, 11, 23), D(2027, 2, 5), D(2028, 2, 29), D(2026, 3, 18), D(2025, 8, 22)],
)
def test_enumerated_lunar_births_equal_the_definition(target: dt.date) -> None:
    """The IN list SQL uses is exactly the set of dates the definition accepts."""
    years = cal.YearsFilter(every=10) if target.year == 2028 else ANY
    lo = D(1900, 1, 1).toordinal()
    brute = [
        d
        for o in range(lo, target.toordinal())
        if cal.lunar_anniversary(d := D.fromordinal(o), target, years)
    ]
    assert cal.lunar_anniversary_births(target, years) == brute
