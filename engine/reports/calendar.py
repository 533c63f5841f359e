"""What the holiday calendar knows, and where it only guesses: ``calendar show YEAR``, the
calendar block of ``status`` and of the console's operations page.

An operator must hear about a missing year before it starts, not when a visit task falls on
National Day, so from 1 November :func:`coverage` warns that the next year has no official
schedule, and it warns louder once the current year is estimated.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.core.calendar import LUNAR_FIRST_YEAR, LUNAR_LAST_YEAR
from engine.core.calendarfile import check_directory
from engine.core.configfile import ConfigError
from engine.core.workcalendar import WorkCalendar, library_version, library_years

WARN_FROM_MONTH = 11  # the State Council usually publishes next year's notice in November
SOURCE_WORDS = {
    "file": "文件 file",
    "library": "程序库 library",
    "estimate": "估算 ESTIMATE",
}
KIND_WORDS = {
    "holiday": "放假 holiday",
    "makeup": "调休上班 make-up workday",
    "weekend": "周末 weekend",
}
WEEKDAYS = "一二三四五六日"


def load(calendar_dir: Path) -> tuple[WorkCalendar, list[ConfigError]]:
    """The deployment's calendar as ``validate`` sees it: every file read, each bad one an
    error (a running daemon keeps its last good calendar meanwhile)."""
    return check_directory(calendar_dir)


def coverage(
    calendar: WorkCalendar, errors: Sequence[ConfigError], today: dt.date
) -> dict[str, Any]:
    """Which years are official and from where, files and their errors, and the warnings."""
    first, last = library_years()
    this_year, next_year = today.year, today.year + 1
    warnings = []
    if calendar.is_estimated(today):
        warnings.append(
            f"{this_year}年没有官方节假日安排,工作日为估算,仅限工作日的剧本按策略暂停或照常运行。"
            f" {this_year} has no official holiday schedule: workdays are estimated"
            f" (add config/calendar/CN-{this_year}.yaml, docs/calendar.md)"
        )
    elif calendar.notice(next_year) is None and today.month >= WARN_FROM_MONTH:
        warnings.append(
            f"{next_year}年尚无官方节假日安排:国务院通知发布后请录入"
            f" config/calendar/CN-{next_year}.yaml。"
            f" {next_year} has no official holiday schedule yet: type the notice into"
            f" config/calendar/CN-{next_year}.yaml when it is published (docs/calendar.md)"
        )
    for exc in errors:
        warnings.append(
            f"日历文件有误 calendar file rejected: {_located(exc.where)}: [{exc.code}] {exc}"
        )
    return {
        "today": today.isoformat(),
        "this_year": {"year": this_year, "source": calendar.source(today)},
        "next_year": {"year": next_year, "source": calendar.source(dt.date(next_year, 1, 1))},
        "official_through": calendar.official_through(today),
        "library": {"first": first, "last": last, "version": library_version()},
        "files": [
            {"year": n.year, "file": Path(n.where).name, "notice": n.notice}
            for n in sorted(calendar.files.values(), key=lambda n: n.year)
        ],
        "errors": [{"where": exc.where, "code": exc.code, "message": str(exc)} for exc in errors],
        "lunar": {"first": LUNAR_FIRST_YEAR, "last": LUNAR_LAST_YEAR},
        "warnings": warnings,
    }


def year_document(calendar: WorkCalendar, year: int) -> dict[str, Any]:
    """``calendar show YEAR`` as data: each day off on a weekday, each holiday day, each
    make-up workday, with where the answer came from."""
    notice = calendar.notice(year)
    source = notice.source if notice is not None else "estimate"
    days = [
        {
            "date": f.day.isoformat(),
            "weekday": f.day.isoweekday(),
            "workday": f.workday,
            "kind": f.kind,
            "name": f.name,
            "source": f.source,
        }
        for f in calendar.year(year)
        if f.kind != "weekend"
    ]
    return {
        "year": year,
        "source": source,
        "where": notice.where if notice is not None else None,
        "notice": notice.notice if notice is not None else None,
        "days": days,
    }


def render_year(doc: Mapping[str, Any]) -> str:
    """The year as an operator checks it against the notice: one line per holiday run and
    per make-up workday; an estimated year says so on every line."""
    year, source = doc["year"], doc["source"]
    head = f"{year}年节假日 holidays and make-up workdays — 来源 source: {SOURCE_WORDS[source]}"
    if doc["where"]:
        head += f" ({_shown(doc['where'])})"
    lines = [head]
    if doc["notice"]:
        lines.append(f"  {doc['notice']}")
    if source == "estimate":
        lines += [
            f"  估算:按法定假日推算,不含调休和连休安排;请录入 config/calendar/CN-{year}.yaml。",
            "  ESTIMATE: statutory days only — no make-up workdays, no bridged holidays; type",
            f"  the State Council's notice into config/calendar/CN-{year}.yaml (docs/calendar.md).",
        ]
    lines.append("")
    mark = "  [估算 estimate]" if source == "estimate" else ""
    for run in _runs(doc["days"]):
        first, last = run[0], run[-1]
        when = _day(first["date"], first["weekday"])
        if last is not first:
            when += f" – {_day(last['date'], last['weekday'])}"
            when += f"  {len(run)}天 days"
        kind = KIND_WORDS[first["kind"]]
        lines.append(f"  {_pad(when, 44)} {_pad(kind, 26)} {first['name'] or ''}{mark}")
    off = sum(1 for d in doc["days"] if d["kind"] == "holiday")
    makeup = sum(1 for d in doc["days"] if d["kind"] == "makeup")
    lines += ["", f"  {off} 天放假 days off, {makeup} 个调休上班日 make-up workdays"]
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    """Left-aligned in ``width`` terminal columns (Chinese characters take two)."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - shown)


def _runs(days: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Consecutive days of the same holiday (or one make-up day) grouped for one line."""
    runs: list[list[Mapping[str, Any]]] = []
    for d in days:
        prev = runs[-1][-1] if runs else None
        if (
            prev is not None
            and d["kind"] == "holiday" == prev["kind"]
            and d["name"] == prev["name"]
            and dt.date.fromisoformat(d["date"]) - dt.date.fromisoformat(prev["date"])
            == dt.timedelta(days=1)
        ):
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def _day(iso: str, weekday: int) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day.month}月{day.day}日(周{WEEKDAYS[weekday - 1]})"


def _shown(where: str) -> str:
    """A file as the project names it (config/calendar/…), the library as itself."""
    path = Path(where)
    return f"config/calendar/{path.name}" if path.suffix in (".yaml", ".yml") else where


def _located(where: str | None) -> str:
    """``/srv/bank/config/calendar/CN-2027.yaml:3:38`` as the project names it."""
    if not where:
        return "config/calendar"
    path, _, position = where.partition(".yaml")
    return f"{_shown(path + '.yaml')}{position}" if position or where.endswith(".yaml") else where


def render_coverage(doc: Mapping[str, Any]) -> list[str]:
    """The calendar block of ``status``."""
    files = ", ".join(f"{f['year']} ({f['file']})" for f in doc["files"]) or "none 无"
    lib = doc["library"]
    through = doc["official_through"]
    lines = [
        f"Holiday calendar 节假日日历: official through 官方安排至 {through or '—'};"
        f" files 文件: {files}; {lib['version']} covers {lib['first']}–{lib['last']}",
        f"  {doc['this_year']['year']}: {SOURCE_WORDS[doc['this_year']['source']]},"
        f" {doc['next_year']['year']}: {SOURCE_WORDS[doc['next_year']['source']]}",
    ]
    lines += [f"  WARNING 警告: {w}" for w in doc["warnings"]]
    return lines
