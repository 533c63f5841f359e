"""Parsing of the condition forms beyond a field test: anniversaries, calendar facts about the
run date, related records and value changes.

A mixin of :class:`engine.conditions.parse.ConditionParser`, kept apart so each module stays
readable; like the rest of the parser it reports every problem with its path and goes on.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.conditions.ast import (
    AGGREGATES,
    COMPARISONS,
    EVERYONE,
    RELATIVE_OPERATORS,
    Anniversary,
    CalendarTest,
    Change,
    Condition,
    Related,
    Test,
)
from engine.core import calendar as cal
from engine.core.diagnostics import PathPart
from engine.core.dictionary import DataDictionary, Field
from engine.core.durations import DurationError, parse_duration
from engine.core.i18n import t

Path = tuple[PathPart, ...]
# report(code, message, path, hint, at_key)
Report = Callable[[str, str, Path, str | None, bool], None]

CALENDAR_KINDS = ("workday", "festival", "days_before", "last_workday_before")
ANNIVERSARY_CALENDARS = {
    "solar": "solar",
    "公历": "solar",
    "lunar": "lunar",
    "农历": "lunar",
    "customer": "customer",
    "按客户": "customer",
}
MAX_IN_DAYS = 366
_DATE = re.compile(r"^(?:(\d{4})-)?(\d{1,2})-(\d{1,2})$")
COUNT_FIELD = Field(key="count", type="integer", label="记录数", name="Row count")


class SpecialForms:
    dictionary: DataDictionary
    report: Report
    nested: bool

    if TYPE_CHECKING:

        def __init__(
            self,
            dictionary: DataDictionary,
            report: Report,
            segments: Any = None,
            *,
            nested: bool = False,
        ) -> None: ...

        def condition(self, raw: Any, path: Path) -> Condition: ...

        def field_test(
            self, field: Field, name: str, raw: Any, path: Path, *, allowed: tuple[str, ...] = ()
        ) -> Test | None: ...

    def _err(self, code: str, message: str, path: Path, hint: str | None = None) -> None:
        self.report(code, message, path, hint, False)

    def _one_key(self, raw: Any, keys: tuple[str, ...], what: str, path: Path) -> str | None:
        """The single key of a one-key mapping, reporting anything else."""
        if not isinstance(raw, dict) or len(raw) != 1:
            self._err("PB0102", t("PB0102.one_of", what=what, keys=", ".join(keys)), path)
            return None
        key = str(next(iter(raw)))
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = (
                t("hint.did_you_mean", name=close[0])
                if close
                else t("hint.expected_one_of", allowed=", ".join(keys))
            )
            self.report("PB0101", t("PB0101.in", key=key, what=what), (*path, key), hint, True)
            return None
        return key

    def _days(self, raw: Any, path: Path, *, low: int, high: int, what: str) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int):
            self._err("PB0109", t("PB0109.days", what=what), path, t("hint.example", example="3"))
            return None
        if raw < low:
            kind = t("PB0115.zero") if raw <= 0 else t("PB0115.too_short")
            message = t("PB0115.short", what=what, value=raw, kind=kind)
            self._err("PB0115", message, path, t("PB0115.short.hint", low=low))
            return None
        if raw > high:
            self._err("PB0115", t("PB0115.long", what=what, value=raw, high=high), path, None)
            return None
        return raw

    # --- anniversary -------------------------------------------------------------------------

    def anniversary(self, field: Field, raw: Any, path: Path) -> Anniversary | None:
        """``true`` or ``{calendar, years | every, in_days}``."""
        if raw is True:
            return Anniversary("solar", cal.YearsFilter())
        if not isinstance(raw, dict) or not raw:
            self._err(
                "PB0118",
                t("PB0118.value"),
                path,
                t("hint.example", example="{calendar: lunar, every: 10, in_days: 3}"),
            )
            return None
        ok = True
        calendar = "solar"
        years: tuple[int, ...] | None = None
        every: int | None = None
        in_days = 0
        for key, value in raw.items():
            at = (*path, key)
            if key == "calendar":
                if value not in ANNIVERSARY_CALENDARS:
                    self._err("PB0118", t("PB0118.calendar", value=value), at)
                    ok = False
                    continue
                calendar = ANNIVERSARY_CALENDARS[value]
                if calendar == "customer" and field.calendar_field is None:
                    self._err(
                        "PB0118",
                        t("PB0118.no_flag", name=field.key),
                        at,
                        t("PB0118.no_flag.hint"),
                    )
                    ok = False
            elif key == "years":
                items = value if isinstance(value, list) else None
                checked = [
                    self._days(v, (*at, i), low=1, high=200, what="a year count")
                    for i, v in enumerate(items or [])
                ]
                if not items:
                    self._err(
                        "PB0118", t("PB0118.years"), at, t("hint.example", example="[1, 5, 10]")
                    )
                if not items or None in checked:
                    ok = False
                else:
                    years = tuple(int(v) for v in checked if v is not None)
            elif key == "every":
                got = self._days(value, at, low=1, high=200, what="every")
                ok, every = ok and got is not None, got
            elif key == "in_days":
                got = self._days(value, at, low=0, high=MAX_IN_DAYS, what="in_days")
                ok, in_days = ok and got is not None, got or 0
            else:
                self._one_key(
                    {key: None}, ("calendar", "years", "every", "in_days"), "anniversary", path
                )
                ok = False
        if years is not None and every is not None:
            self._err("PB0118", t("PB0118.both"), path)
            ok = False
        if not ok:
            return None
        return Anniversary(calendar, cal.YearsFilter(years, every), in_days)

    # --- calendar facts about the run date ---------------------------------------------------

    def calendar(self, raw: Any, path: Path) -> CalendarTest | None:
        kind = self._one_key(raw, CALENDAR_KINDS, "calendar", path)
        if kind is None:
            return None
        value = raw[kind]
        at = (*path, kind)
        if kind == "workday":
            if not isinstance(value, bool):
                self._err("PB0109", t("PB0109.bool", what="workday"), at, "workday: true")
                return None
            return CalendarTest("workday", value=value)
        if kind == "days_before":
            if not isinstance(value, dict) or set(value) != {"festival", "days"}:
                self._err(
                    "PB0102",
                    t("PB0102.days_before"),
                    at,
                    t("hint.example", example="{festival: 春节, days: 3}"),
                )
                return None
            date = self.yearly_date(value["festival"], (*at, "festival"))
            days = self._days(value["days"], (*at, "days"), low=1, high=MAX_IN_DAYS, what="days")
            if date is None or days is None:
                return None
            return CalendarTest("days_before", date=date, days=days)
        date = self.yearly_date(value, at)
        return None if date is None else CalendarTest(kind, date=date)

    def yearly_date(self, raw: Any, path: Path) -> cal.YearlyDate | None:
        """A festival name, or ``{solar: MM-DD}`` / ``{lunar: MM-DD}``, optionally with a year."""
        if isinstance(raw, str):
            found = cal.find_festival(raw)
            if found is None:
                names = cal.festival_names()
                close = difflib.get_close_matches(raw, names, n=1, cutoff=0.4)
                guess = t("hint.did_you_mean_then", name=close[0]) if close else ""
                known = ", ".join(f.name for f in cal.FESTIVALS.values())
                self._err(
                    "PB0114",
                    t("PB0114", name=raw),
                    path,
                    t("PB0114.hint", guess=guess, known=known),
                )
                return None
            return found.date
        kind = self._one_key(raw, ("solar", "lunar"), t("word.a_date"), path)
        if kind is None:
            return None
        at = (*path, kind)
        match = _DATE.match(str(raw[kind]).strip())
        if match is None:
            self._err(
                "PB0109",
                t("PB0109.month_day", value=raw[kind]),
                at,
                t("PB0109.month_day.hint"),
            )
            return None
        year = int(match[1]) if match[1] else None
        month, day = int(match[2]), int(match[3])
        if kind == "solar":
            try:
                dt.date(year or 2000, month, day)  # 2000 is a leap year: 02-29 is fine
            except ValueError:
                self._err("PB0109", t("PB0109.not_date", value=raw[kind]), at, None)
                return None
            return cal.YearlyDate("solar", month, day, year)
        if not (1 <= month <= 12 and 1 <= day <= 30):
            self._err(
                "PB0116",
                t("PB0116", value=raw[kind]),
                at,
                t("PB0116.hint"),
            )
            return None
        if year is not None and cal.to_solar(year, month, day) is None:
            length = cal.month_length(year, month)
            why = (
                t("PB0116.month", month=month, year=year, length=length)
                if length
                else t("PB0116.range", first=cal.LUNAR_FIRST_YEAR, last=cal.LUNAR_LAST_YEAR)
            )
            self._err("PB0116", t("PB0116.why", value=raw[kind], why=why), at, None)
            return None
        return cal.YearlyDate("lunar", month, day, year)

    # --- related records ---------------------------------------------------------------------

    def related(self, name: str, raw: Any, path: Path) -> Related | None:
        """``holdings: {exists: {…}}``, ``transactions: {count: {where: {…}, gte: 3}}``, …"""
        rel = self.dictionary.related[name]
        aggregate = self._one_key(raw, tuple(AGGREGATES), f"'{name}' ({rel.label})", path)
        if aggregate is None:
            return None
        at = (*path, aggregate)
        spec = raw[aggregate]
        sub = type(self)(rel.scope, self.report, nested=True)
        if aggregate in ("exists", "none"):
            if spec is True:
                return Related(name, aggregate, EVERYONE)
            if not isinstance(spec, dict) or not spec:
                self._err(
                    "PB0117",
                    t("PB0117.columns", aggregate=aggregate),
                    at,
                    t("PB0117.columns.hint", name=name, columns=", ".join(rel.columns)),
                )
                return None
            return Related(name, aggregate, sub.condition(spec, at))
        if not isinstance(spec, dict):
            self._err(
                "PB0117",
                t("PB0117.mapping", aggregate=aggregate),
                at,
                t("hint.example", example="{where: {…}, gte: 3}"),
            )
            return None
        where = EVERYONE
        if "where" in spec:
            where = sub.condition(spec["where"], (*at, "where"))
        field = COUNT_FIELD
        of: str | None = None
        if aggregate != "count":
            of = spec.get("of")
            column = rel.columns.get(str(of)) if of is not None else None
            wanted: tuple[str, ...] = ("integer", "number", "money")
            if aggregate in ("min", "max"):
                wanted += ("date", "datetime")
            if column is None or column.type not in wanted:
                fits = [k for k, c in rel.columns.items() if c.type in wanted]
                self._err(
                    "PB0117",
                    t("PB0117.of", aggregate=aggregate, name=name),
                    (*at, "of") if of is not None else at,
                    t("PB0117.of.hint", columns=", ".join(fits)),
                )
                return None
            field = column
        tests = {k: v for k, v in spec.items() if k not in ("where", "of")}
        allowed: tuple[str, ...] = (*COMPARISONS, *RELATIVE_OPERATORS, "in_past")
        if aggregate in ("count", "sum"):
            allowed = tuple(o for o in COMPARISONS if o != "is_null")
        compare = (
            self.field_test(field, f"{aggregate} of {name}", tests or None, at, allowed=allowed)
            if tests
            else None
        )
        if not tests:
            self._err(
                "PB0117",
                t("PB0117.comparison", aggregate=aggregate),
                at,
                t("hint.example", example="gte: 3"),
            )
        return None if compare is None else Related(name, aggregate, where, of, compare)

    def change(self, name: str, raw: Any, path: Path) -> Change | None:
        """``aum_change: {over: 30d, percent: {lte: -30}}``."""
        series = self.dictionary.changes[name]
        if not isinstance(raw, dict) or "over" not in raw or len(raw) != 2:
            self._err(
                "PB0117",
                t("PB0117.change", name=name),
                path,
                t("hint.example", example="{over: 30d, percent: {lte: -30}}"),
            )
            return None
        try:
            over = parse_duration(raw["over"])
        except DurationError as exc:
            self._err("PB0110", exc.message, (*path, "over"))
            return None
        if over % dt.timedelta(days=1):
            self._err(
                "PB0109",
                t("PB0109.over_days"),
                (*path, "over"),
                t("hint.example", example="30d"),
            )
            return None
        measure = next(k for k in raw if k != "over")
        if measure not in ("percent", "amount"):
            self._one_key({measure: None}, ("percent", "amount"), f"'{name}'", path)
            return None
        field = Field(key=measure, type="number", label=series.label, name=series.name)
        allowed = tuple(o for o in COMPARISONS if o != "is_null")
        raw_test = raw[measure]
        if not isinstance(raw_test, dict):
            self._err(
                "PB0117",
                t("PB0117.measure", measure=measure),
                (*path, measure),
                t("hint.example", example="{lte: -30}"),
            )
            return None
        compare = self.field_test(field, measure, raw_test, (*path, measure), allowed=allowed)
        return None if compare is None else Change(name, over, measure, compare)
