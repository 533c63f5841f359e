"""The bank's holiday files, ``config/calendar/CN-YYYY.yaml``: read, checked, and kept.

A file is the State Council's notice for one year, typed in by an operator::

    year: 2026
    notice: 国务院办公厅关于2026年部分节假日安排的通知
    holidays:
      - {name: 春节, from: 2026-02-15, to: 2026-02-23}
      - {name: 元旦, from: 2026-01-01, to: 2026-01-03}
    workdays:                       # 调休上班: weekend days that are workdays
      - {date: 2026-02-14, for: 春节}

Typing mistakes are the risk, so the checks are strict and each is reported at its line:
every date in the file's year, ``to`` not before ``from``, no holiday longer than
:data:`LONGEST_HOLIDAY` days, make-up workdays on a Saturday or Sunday and outside every
holiday, and no day in two holidays.

A daemon runs for months and a file is typically added in December, so the directory is
re-read when any file in it changes; a broken edit keeps the last good calendar (and
``validate`` and ``status`` say what is wrong), as for the contact policy.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.core.configfile import ConfigError, ConfigFile, load_config
from engine.core.diagnostics import PathPart
from engine.core.i18n import Msg, choose_lang, localize, t
from engine.core.workcalendar import LIBRARY, WorkCalendar, YearNotice

log = logging.getLogger(__name__)

CODE = "E0410"
FILE_NAME = re.compile(r"^CN-(\d{4})\.ya?ml$")
LONGEST_HOLIDAY = 15  # the longest notice so far gave 9 days (春节 2026); more is a typo

_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["year", "holidays"],
    "properties": {
        "year": {"type": "integer", "minimum": 2000},
        "notice": {"type": "string"},
        "holidays": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "from"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "from": _DATE,
                    "to": _DATE,
                },
            },
        },
        "workdays": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["date", "for"],
                "properties": {"date": _DATE, "for": {"type": "string", "minLength": 1}},
            },
        },
    },
}


def read_notice(path: Path) -> YearNotice:
    """One checked calendar file; the first mistake is a :class:`ConfigError` at its line."""
    named = FILE_NAME.match(path.name)
    if named is None:
        raise ConfigError(
            localize(t("E0410.name", name=path.name), choose_lang()) or "",
            code=CODE,
            where=str(path),
            hint="CN-2027.yaml",
        )
    cfg = load_config(path, SCHEMA, CODE)
    year = int(named.group(1))
    if cfg.data["year"] != year:
        raise _error(cfg, ("year",), t("E0410.year", year=cfg.data["year"], file=year))
    days_off: dict[dt.date, str] = {}
    for i, item in enumerate(cfg.data["holidays"]):
        first = _day(cfg, ("holidays", i, "from"), item["from"], year)
        last = _day(cfg, ("holidays", i, "to"), item.get("to", item["from"]), year)
        if last < first:
            raise _error(cfg, ("holidays", i, "to"), t("E0410.order"))
        if (last - first).days + 1 > LONGEST_HOLIDAY:
            length = (last - first).days + 1
            raise _error(cfg, ("holidays", i, "to"), t("E0410.long", days=length))
        day = first
        while day <= last:
            if day in days_off:
                at: tuple[PathPart, ...] = ("holidays", i, "from")
                raise _error(cfg, at, t("E0410.twice", day=day, name=days_off[day]))
            days_off[day] = item["name"]
            day += dt.timedelta(days=1)
    workdays: dict[dt.date, str] = {}
    for i, item in enumerate(cfg.data.get("workdays") or []):
        where: tuple[PathPart, ...] = ("workdays", i, "date")
        day = _day(cfg, where, item["date"], year)
        if day.weekday() < 5:
            raise _error(cfg, where, t("E0410.weekday", day=day, weekday=_WEEKDAYS[day.weekday()]))
        if day in days_off:
            raise _error(cfg, where, t("E0410.inside", day=day, name=days_off[day]))
        workdays[day] = item["for"]
    return YearNotice(
        year,
        MappingProxyType(dict(sorted(days_off.items()))),
        MappingProxyType(dict(sorted(workdays.items()))),
        "file",
        str(path),
        cfg.data.get("notice"),
    )


_WEEKDAYS = ("周一 Monday", "周二 Tuesday", "周三 Wednesday", "周四 Thursday", "周五 Friday")


def _day(cfg: ConfigFile, where: tuple[PathPart, ...], text: str, year: int) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise _error(cfg, where, t("E0410.date", value=text)) from None
    if day.year != year:
        raise _error(cfg, where, t("E0410.other_year", day=day, year=year))
    return day


def _error(cfg: ConfigFile, where: tuple[PathPart, ...], message: Msg) -> ConfigError:
    return cfg.error(where, localize(message, choose_lang()) or "")


def check_directory(directory: Path) -> tuple[WorkCalendar, list[ConfigError]]:
    """Every calendar file of ``directory`` read: the calendar of the good ones, and each bad
    one's error (so ``validate`` lists them all)."""
    files: dict[int, YearNotice] = {}
    errors: list[ConfigError] = []
    for path in _files(directory):
        try:
            notice = read_notice(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        files[notice.year] = notice
    return WorkCalendar(MappingProxyType(files)), errors


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))


class CalendarFolder:
    """The calendar of a ``config/calendar`` folder, re-read when a file in it changes; while
    a file is broken, the last good calendar stays in force and :attr:`errors` says why."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._calendar: WorkCalendar | None = None
        self.errors: list[ConfigError] = []

    def calendar(self) -> WorkCalendar:
        """The calendar in force; raises the first error only when no good one was ever read
        (a process must not start on a calendar nobody checked)."""
        stamp = tuple((p.name, *_mtime_size(p)) for p in _files(self.directory))
        with self._lock:
            if stamp != self._stamp:
                calendar, errors = check_directory(self.directory)
                self._stamp, self.errors = stamp, errors
                if not errors or self._calendar is None:
                    if errors:
                        raise errors[0]
                    self._calendar = calendar
                else:
                    for exc in errors:
                        log.error("calendar file rejected, the last good calendar stays: %s", exc)
            elif self.errors and self._calendar is None:
                raise self.errors[0]
            assert self._calendar is not None
            return self._calendar


def _mtime_size(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, -1)
    return (st.st_mtime_ns, st.st_size)


_FOLDERS: dict[Path, CalendarFolder] = {}
_FOLDERS_LOCK = threading.Lock()


def work_calendar(directory: Path) -> WorkCalendar:
    """The calendar in force for a deployment's ``config/calendar`` folder (the library's and
    the estimate when the folder does not exist)."""
    if not directory.is_dir():
        return LIBRARY
    key = directory.resolve()
    with _FOLDERS_LOCK:
        folder = _FOLDERS.setdefault(key, CalendarFolder(key))
    return folder.calendar()
