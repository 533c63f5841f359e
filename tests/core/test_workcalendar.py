"""Official workdays: the bank's CN-YYYY.yaml files over the chinese-calendar package over the
statutory estimate; located errors for every typing mistake a file can hold; a folder re-read
when it changes, keeping the last good calendar; and which decisions rest on an estimate."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from pathlib import Path

import pytest

from engine.conditions.ast import All, CalendarTest, Not
from engine.conditions.bounds import calendar_holds, estimated_days_in
from engine.core import calendar as cal
from engine.core.calendarfile import CalendarFolder, check_directory, read_notice
from engine.core.clock import Clock
from engine.core.configfile import ConfigError
from engine.core.workcalendar import (
    GUESS_MARGIN,
    LIBRARY,
    WorkCalendar,
    library_notice,
    library_years,
    statutory_days,
)

D = dt.date
REPO = Path(__file__).resolve().parents[2]
FIRST, LAST = library_years()
PAST = LAST + 5  # a year no installed package can know: the estimate, or a test file
SPRING = cal.find_festival("春节")
assert SPRING is not None


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_library_years_carry_make_up_workdays() -> None:
    assert FIRST <= 2004 and LAST >= 2026
    assert LIBRARY.source(D(2026, 2, 14)) == "library"
    assert LIBRARY.is_workday(D(2026, 2, 14))  # Saturday, 调休 make-up workday before 春节
    assert not LIBRARY.is_workday(D(2026, 2, 17))  # 春节
    assert not LIBRARY.is_workday(D(2026, 2, 23))  # Monday inside the holiday
    assert LIBRARY.is_workday(D(2025, 9, 28))  # Sunday make-up before 国庆
    assert LIBRARY.last_workday_before(D(2026, 2, 17)) == D(2026, 2, 14)
    assert LIBRARY.last_workday_before(D(2025, 10, 6)) == D(2025, 9, 30)


def test_past_the_published_years_workdays_are_the_statutory_estimate() -> None:
    assert LIBRARY.source(D(PAST, 3, 1)) == "estimate" and LIBRARY.is_estimated(D(PAST, 3, 1))
    spring = cal.to_solar(PAST, 1, 1)
    assert spring is not None
    for k in (-1, 0, 1, 2):  # 除夕 to 初三
        assert not LIBRARY.is_workday(spring + dt.timedelta(days=k))
    assert not LIBRARY.is_workday(D(PAST, 10, 3)) and not LIBRARY.is_workday(D(PAST, 5, 2))
    monday = D(PAST, 3, 1) + dt.timedelta(days=(7 - D(PAST, 3, 1).weekday()) % 7)
    assert LIBRARY.is_workday(monday)
    assert not LIBRARY.is_workday(monday - dt.timedelta(days=1))  # Sunday: no 调休 assumed
    assert LIBRARY.official_through(D(PAST, 1, 1)) is None
    assert LIBRARY.official_through(D(LAST, 11, 1)) == LAST


def test_far_from_holidays_every_notice_kept_the_weekday_rule() -> None:
    """The ground for calling an estimate certain: in every year chinese-calendar knows, a
    day more than GUESS_MARGIN days from every statutory day was an ordinary weekday or
    weekend, except the one-off 2015 抗战胜利70周年 holiday (3–6 September 2015)."""
    exceptions = {D(2015, 9, 3), D(2015, 9, 4), D(2015, 9, 6)}
    checked = 0
    for year in range(FIRST, LAST + 1):
        notice = library_notice(year)
        assert notice is not None
        day = D(year, 1, 1)
        while day.year == year:
            if not _near_statutory(day) and day not in exceptions:
                assert notice.is_workday(day) == (day.weekday() < 5), day
                checked += 1
            day += dt.timedelta(days=1)
    assert checked > 200 * (LAST - FIRST)


def _near_statutory(day: D) -> bool:
    return any(
        abs((day - s).days) <= GUESS_MARGIN
        for year in (day.year - 1, day.year, day.year + 1)
        for s in statutory_days(year)
    )


def test_the_shipped_example_file_equals_the_package_for_its_year() -> None:
    """config/calendar/CN-2025.yaml is the procedure's worked example: typed from the notice,
    it must say exactly what chinese-calendar says for 2025, day by day."""
    typed = read_notice(REPO / "config/calendar/CN-2025.yaml")
    known = library_notice(2025)
    assert known is not None and typed.source == "file"
    assert set(typed.days_off) == set(known.days_off)
    assert set(typed.workdays) == set(known.workdays)
    everyday = [D(2025, 1, 1) + dt.timedelta(days=k) for k in range(365)]
    assert [typed.is_workday(d) for d in everyday] == [known.is_workday(d) for d in everyday]


def test_a_file_decides_its_year_exactly_as_written(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"CN-{PAST}.yaml",
        f"""\
        year: {PAST}
        holidays:
          - {{name: 国庆节, from: {PAST}-10-01, to: {PAST}-10-07}}
        workdays:
          - {{date: {_weekend_day(PAST, 9, 26)}, for: 国庆节}}
        """,
    )
    calendar, errors = check_directory(tmp_path)
    assert errors == []
    makeup = D.fromisoformat(_weekend_day(PAST, 9, 26))
    assert calendar.source(makeup) == "file" and not calendar.is_estimated(makeup)
    assert calendar.is_workday(makeup) and not LIBRARY.is_workday(makeup)
    for day in range(1, 8):
        assert not calendar.is_workday(D(PAST, 10, day))
    weekday_after = next(D(PAST, 10, d) for d in range(8, 15) if D(PAST, 10, d).weekday() < 5)
    assert calendar.is_workday(weekday_after)
    # the file's year no longer falls back on the statutory estimate: 春节 is a workday here
    spring = cal.to_solar(PAST, 1, 1)
    assert spring is not None
    first_weekday = next(
        spring + dt.timedelta(days=k)
        for k in range(4)
        if (spring + dt.timedelta(days=k)).weekday() < 5
    )
    assert calendar.is_workday(first_weekday) and not LIBRARY.is_workday(first_weekday)
    facts = {f.day: f for f in calendar.year(PAST)}
    assert facts[makeup].kind == "makeup" and facts[makeup].name == "国庆节"
    assert facts[D(PAST, 10, 1)].kind == "holiday" and facts[D(PAST, 10, 1)].source == "file"


def _weekend_day(year: int, month: int, day: int) -> str:
    """The first Saturday or Sunday on or after the date."""
    probe = D(year, month, day)
    while probe.weekday() < 5:
        probe += dt.timedelta(days=1)
    return probe.isoformat()


BAD_FILES = [
    ("year: 2031\nholidays: []\n", "CN-2032.yaml", "1:7", "file name"),
    (
        "year: 2031\nholidays:\n  - {name: 春节, from: 2031-13-01}\n",
        "CN-2031.yaml",
        "3:22",
        "not a date",
    ),
    (
        "year: 2031\nholidays:\n  - {name: 春节, from: 2030-12-31}\n",
        "CN-2031.yaml",
        "3:22",
        "not in 2031",
    ),
    (
        "year: 2031\nholidays:\n  - {name: 春节, from: 2031-01-22, to: 2031-01-20}\n",
        "CN-2031.yaml",
        "3:38",
        "before 'from'",
    ),
    (
        "year: 2031\nholidays:\n  - {name: 春节, from: 2031-01-22, to: 2031-12-20}\n",
        "CN-2031.yaml",
        "3:38",
        "longer than any notice",
    ),
    (
        "year: 2031\nholidays:\n  - {name: 春节, from: 2031-01-22, to: 2031-01-28}\n"
        "  - {name: 元宵, from: 2031-01-28}\n",
        "CN-2031.yaml",
        "4:22",
        "already a day of 春节",
    ),
    (
        "year: 2031\nholidays: []\nworkdays:\n  - {date: 2031-02-03, for: 春节}\n",
        "CN-2031.yaml",
        "4:12",
        "Monday",
    ),
    (
        "year: 2031\nholidays:\n  - {name: 春节, from: 2031-01-22, to: 2031-01-28}\n"
        "workdays:\n  - {date: 2031-01-25, for: 春节}\n",
        "CN-2031.yaml",
        "5:12",
        "cannot also be a make-up workday",
    ),
    ("year: 2031\nholidys: []\n", "CN-2031.yaml", "2:1", "did you mean 'holidays'"),
    ("holidays: []\n", "CN-2031.yaml", "1:1", "'year' is missing"),
]


@pytest.mark.parametrize(("text", "name", "where", "words"), BAD_FILES)
def test_each_typing_mistake_is_a_located_error(
    tmp_path: Path, text: str, name: str, where: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARE_LANG", "en")
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        read_notice(path)
    shown = f"{caught.value} {caught.value.hint or ''}"
    assert caught.value.code == "E0410"
    assert caught.value.where == f"{path}:{where}", shown
    assert words in shown, shown


def test_errors_speak_chinese_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARE_LANG", "zh")
    path = write(
        tmp_path,
        "CN-2031.yaml",
        "year: 2031\nholidays: []\nworkdays:\n  - {date: 2031-02-03, for: 春节}\n",
    )
    with pytest.raises(ConfigError, match="调休上班日应是周六或周日"):
        read_notice(path)
    path.write_text("year: 2031\nholidys: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_notice(path)
    assert "未知的键" in str(caught.value) and "holidays" in (caught.value.hint or "")


def test_a_folder_picks_up_a_new_year_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    folder = CalendarFolder(tmp_path)
    assert folder.calendar().is_estimated(D(PAST, 10, 4))
    path = write(
        tmp_path,
        f"CN-{PAST}.yaml",
        f"year: {PAST}\nholidays:\n  - {{name: 国庆节, from: {PAST}-10-01, to: {PAST}-10-07}}\n",
    )
    _touch_later(path)
    good = folder.calendar()
    assert good.source(D(PAST, 10, 4)) == "file" and not good.is_workday(D(PAST, 10, 4))
    path.write_text(
        f"year: {PAST}\nholidays:\n  - {{name: 国庆节, from: {PAST}-10-07, to: {PAST}-10-01}}\n"
    )
    _touch_later(path)
    assert folder.calendar() is good  # a broken edit: the last good calendar stays
    assert [e.code for e in folder.errors] == ["E0410"]
    path.unlink()
    assert folder.calendar().is_estimated(D(PAST, 10, 4)) and folder.errors == []


def test_a_folder_never_checked_good_refuses_to_start(tmp_path: Path) -> None:
    write(tmp_path, "CN-2031.yaml", "year: 2031\nholidays: nope\n")
    with pytest.raises(ConfigError):
        CalendarFolder(tmp_path).calendar()


def _touch_later(path: Path) -> None:
    """File systems with coarse timestamps: make the change visible to an mtime check."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_add_workdays_skips_days_off_and_counts_make_up_days() -> None:
    # Friday 2026-02-13 + 1 workday = Saturday 2026-02-14 (调休), + 2 = 2026-02-24
    assert LIBRARY.add_workdays(D(2026, 2, 13), 1) == D(2026, 2, 14)
    assert LIBRARY.add_workdays(D(2026, 2, 13), 2) == D(2026, 2, 24)
    assert LIBRARY.add_workdays(D(2026, 12, 4), 0) == D(2026, 12, 4)


def _clock(day: D, calendar: WorkCalendar = LIBRARY) -> Clock:
    return Clock(dt.datetime(day.year, day.month, day.day, 9, tzinfo=dt.UTC), calendar)


def test_decisions_say_which_estimated_days_they_rest_on() -> None:
    workday = CalendarTest("workday", value=True)
    before_spring = CalendarTest("last_workday_before", date=SPRING.date)
    # an official day decides alone
    assert estimated_days_in(workday, _clock(D(2026, 12, 4))) == ()
    # an estimated day near a holiday is a guess: a workday test rests on it, through
    # not(…) and all(…) too; far from every holiday the weekday rule is certain
    near = D(PAST, 10, 5)
    assert LIBRARY.is_guess(near) and not LIBRARY.is_guess(D(PAST, 3, 17))
    assert estimated_days_in(All((Not(workday),)), _clock(near)) == (near,)
    assert estimated_days_in(workday, _clock(D(PAST, 3, 17))) == ()
    # "the last workday before 春节": an official workday between today and the festival
    # makes the answer no whatever the estimate says …
    assert estimated_days_in(before_spring, _clock(D(LAST, 12, 1))) == ()
    # … but close to an estimated festival the answer rests on estimated days
    spring = SPRING.date.next_after(D(PAST, 1, 1))
    assert spring is not None
    near = spring - dt.timedelta(days=3)
    used = estimated_days_in(before_spring, _clock(near))
    assert used and used[0] == near and all(d < spring for d in used)


def test_calendar_tests_ask_the_clock_s_calendar(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"CN-{PAST}.yaml",
        f"year: {PAST}\nholidays:\n  - {{name: 国庆节, from: {PAST}-10-01, to: {PAST}-10-08}}\n",
    )
    calendar, _ = check_directory(tmp_path)
    workday = CalendarTest("workday", value=True)
    day = next(D(PAST, 10, d) for d in range(4, 9) if D(PAST, 10, d).weekday() < 5)
    assert calendar_holds(workday, _clock(day)) is True  # the estimate: an ordinary weekday
    assert calendar_holds(workday, _clock(day, calendar)) is False  # the file: 国庆
    assert estimated_days_in(workday, _clock(day, calendar)) == ()
