"""A playbook's goal: what "it worked" means for one customer, and within how long.

A goal is read by the effect report (``runner.py report``): for every customer the playbook
acted on (or held out), it asks whether the goal was met between the moment the action was
recorded and ``within`` later. Four kinds, written for marketing editors::

    goal: {within: 30d, activity_resumed: true}              # 恢复活跃
    goal: {within: 30d, product_bought: {product_type: wealth}}  # 购买产品(可加条件)
    goal: {within: 60d, aum_recovered: true}                 # 资产回升(或 {percent: 110})
    goal: {within: 30d, condition: {tags: {contains: 已评价}}}   # 任意客户条件,窗口结束时判断

Built-in kinds become ordinary condition trees over the data dictionary (so the SQL compiler
and the Python reference evaluate them), except ``aum_recovered``, which compares two points
of the AUM history and is compiled here.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Date, Float, String, and_, cast, literal_column, select
from sqlalchemy import table as sql_table

from engine.conditions.ast import EVERYONE, All, AnyOf, Condition, Related, Test
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary
from engine.core.durations import DurationError, format_duration, parse_duration
from engine.core.i18n import t

KINDS: dict[str, tuple[str, str]] = {
    "activity_resumed": ("恢复活跃", "activity resumed"),
    "product_bought": ("购买产品", "bought a product"),
    "aum_recovered": ("资产回升", "AUM recovered"),
    "condition": ("满足条件", "condition met"),
}
# what each built-in kind reads from the data dictionary: (field or related table, column)
ACTIVITY_FIELD = "last_active_at"
ACTIVITY_ROWS = ("transactions", "occurred_at")
PURCHASE_ROWS = ("holdings", "opened_on")
AUM_SERIES = "aum_change"

Path = tuple[str | int, ...]
Report = Callable[..., None]  # (code, message, path, hint=None, at_key=False)


@dataclass(frozen=True)
class Goal:
    """One measurable outcome. ``where`` filters the bought products (``product_bought``),
    ``percent`` is the share of the AUM at the action to reach (``aum_recovered``) and
    ``condition`` is the audience-language test evaluated at the window's end."""

    within: dt.timedelta
    kind: str
    where: Condition = EVERYONE
    percent: float = 100.0
    condition: Condition = EVERYONE

    def describe(self) -> str:
        """A one-line bilingual description for reports: "30天内恢复活跃 activity resumed …"."""
        zh, en = KINDS[self.kind]
        span = format_duration(self.within)
        number, unit = span.rstrip("minhdw"), span.lstrip("0123456789")
        zh_span = number + {"min": "分钟", "h": "小时", "d": "天", "w": "周"}.get(unit, unit)
        extra = f" ≥{self.percent:g}%" if self.kind == "aum_recovered" else ""
        return f"{zh_span}内{zh}{extra} · {en}{extra} within {span}"


# --- parsing (called by the validator after the JSON Schema has passed) ------------------


def parse_goal(
    raw: Mapping[str, Any],
    path: Path,
    dictionary: DataDictionary,
    report: Report,
    parser_for: Callable[[DataDictionary, bool], Any],
) -> Goal | None:
    """``parser_for(scope, nested)`` gives a condition parser that reports through ``report``
    (the validator's :class:`~engine.conditions.parse.ConditionParser`)."""
    kinds = [k for k in raw if k in KINDS]
    if len(kinds) != 1:
        found = t("PB0180.found", kinds=", ".join(kinds)) if kinds else t("PB0180.none")
        report("PB0180", t("PB0180", found=found), path, t("PB0180.hint", kinds=", ".join(KINDS)))
        return None
    kind = kinds[0]
    at = (*path, kind)
    within: dt.timedelta | None = None
    try:
        within = parse_duration(raw.get("within"))
    except DurationError as exc:
        report("PB0110", str(exc), (*path, "within"))
    if not _dictionary_has(kind, dictionary, at, report):
        return None
    value = raw[kind]
    goal: Goal | None = None
    if kind == "activity_resumed":
        if value is not True:
            report("PB0181", t("PB0181.activity"), at, t("PB0181.activity.hint"))
        else:
            goal = Goal(dt.timedelta(), kind)
    elif kind == "product_bought":
        if value is True:
            goal = Goal(dt.timedelta(), kind)
        elif isinstance(value, dict) and value:
            scope = dictionary.related[PURCHASE_ROWS[0]].scope
            goal = Goal(dt.timedelta(), kind, where=parser_for(scope, True).condition(value, at))
        else:
            columns = ", ".join(dictionary.related[PURCHASE_ROWS[0]].columns)
            report("PB0181", t("PB0181.product"), at, t("PB0181.product.hint", columns=columns))
    elif kind == "aum_recovered":
        goal = _aum(value, at, report)
    else:
        goal = Goal(
            dt.timedelta(), kind, condition=parser_for(dictionary, False).audience(value, at)
        )
    if goal is None or within is None:
        return None
    return Goal(within, goal.kind, goal.where, goal.percent, goal.condition)


def _aum(value: Any, at: Path, report: Report) -> Goal | None:
    if value is True:
        return Goal(dt.timedelta(), "aum_recovered")
    if isinstance(value, dict) and set(value) == {"percent"}:
        pct = value["percent"]
        if isinstance(pct, int | float) and not isinstance(pct, bool) and 0 < pct <= 1000:
            return Goal(dt.timedelta(), "aum_recovered", percent=float(pct))
        report("PB0181", t("PB0181.percent"), (*at, "percent"))
        return None
    if isinstance(value, dict):
        for key in value:
            if key != "percent":
                close = difflib.get_close_matches(str(key), ["percent"], n=1)
                hint = t("hint.did_you_mean", name="percent") if close else None
                report(
                    "PB0101",
                    t("PB0101", key=key),
                    (*at, key),
                    hint or t("hint.allowed", allowed="percent"),
                    True,
                )
        return None
    report("PB0181", t("PB0181.aum"), at, t("PB0181.aum.hint"))
    return None


def _dictionary_has(kind: str, d: DataDictionary, at: Path, report: Report) -> bool:
    """The built-in kinds read fixed names of the data dictionary; say so when one is missing."""
    missing = []
    if kind == "activity_resumed":
        if ACTIVITY_FIELD not in d and ACTIVITY_ROWS[0] not in d.related:
            missing.append(f"field '{ACTIVITY_FIELD}' or related '{ACTIVITY_ROWS[0]}'")
    elif kind == "product_bought":
        rel = d.related.get(PURCHASE_ROWS[0])
        if rel is None or PURCHASE_ROWS[1] not in rel.columns:
            missing.append(f"related '{PURCHASE_ROWS[0]}' with column '{PURCHASE_ROWS[1]}'")
    elif kind == "aum_recovered" and AUM_SERIES not in d.changes:
        missing.append(f"change series '{AUM_SERIES}'")
    for what in missing:
        report("PB0182", t("PB0182", kind=kind, what=what), at, t("PB0182.hint"))
    return not missing


# --- the goal as SQL, for one cohort (one recorded moment) --------------------------------


def met(
    goal: Goal,
    d: DataDictionary,
    start: dt.datetime,
    tz: Any,
    compiler: SqlCompiler | None = None,
) -> ColumnElement[bool]:
    """The goal as a predicate over the customer table, for customers recorded at ``start``
    (naive local time); the window is ``start`` (exclusive) to ``start + within`` (inclusive).

    Date columns (a product's purchase day, AUM snapshots) count whole days: from the action's
    day to the end's day, both included. ``compiler``: the one whose :meth:`SqlCompiler.joined`
    finishes the caller's statement, so a lookup field the goal reads is joined there.
    """
    end = start + goal.within
    clock = Clock.at(end, tz)
    compiler = SqlCompiler(d, clock) if compiler is None else compiler.at(clock)
    if goal.kind == "condition":
        return compiler.where(goal.condition)
    if goal.kind == "aum_recovered":
        return _aum_sql(compiler, d, start.date(), end.date(), goal.percent)
    return compiler.where(goal_condition(goal, d, start))


def goal_condition(goal: Goal, d: DataDictionary, start: dt.datetime) -> Condition:
    """The built-in kinds activity_resumed and product_bought as condition trees."""
    end = start + goal.within
    if goal.kind == "activity_resumed":
        parts: list[Condition] = []
        if ACTIVITY_FIELD in d:
            parts.append(All((Test(ACTIVITY_FIELD, "gt", start), Test(ACTIVITY_FIELD, "lte", end))))
        rel, col = ACTIVITY_ROWS
        if rel in d.related and col in d.related[rel].columns:
            between = All((Test(col, "gt", start), Test(col, "lte", end)))
            parts.append(Related(rel, "exists", between))
        return AnyOf(tuple(parts))
    if goal.kind == "product_bought":
        rel, col = PURCHASE_ROWS
        bought = (Test(col, "gte", start.date()), Test(col, "lte", end.date()))
        where = bought if goal.where == EVERYONE else (*bought, goal.where)
        return Related(rel, "exists", All(where))
    if goal.kind == "condition":
        return goal.condition
    raise ValueError(f"goal kind {goal.kind} is not a condition tree")


def _aum_sql(
    c: SqlCompiler, d: DataDictionary, start: dt.date, end: dt.date, percent: float
) -> ColumnElement[bool]:
    """The latest AUM history value on or before the end's day is at least ``percent``% of
    the latest on or before the action's day; false when either is missing or not positive."""
    series = d.changes[AUM_SERIES]
    at = literal_column(f"{series.table}.{series.at}", Date())

    def value_on(day: dt.date) -> ColumnElement[Any]:
        query = (
            select(literal_column(f"{series.table}.{series.value}", Float()))
            .select_from(sql_table(series.table))
            .where(literal_column(f"{series.table}.{series.link}", String()) == c.key, at <= day)
            .order_by(at.desc())
            .limit(1)
        )
        return cast(query.scalar_subquery(), Float)

    before, after = value_on(start), value_on(end)
    return and_(
        before.is_not(None), after.is_not(None), before > 0, after * 100 >= before * percent
    )


# --- JSON Schema ---------------------------------------------------------------------------


def goal_schema(d: DataDictionary) -> dict[str, Any]:
    """The editor schema of ``goal:``; the validator checks meaning (one kind, durations)."""

    def text(zh: str, en: str) -> str:
        return f"{zh}。{en}"

    properties: dict[str, Any] = {
        "within": {
            "type": "string",
            "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$",
            "examples": ["30d"],
            "description": text(
                "从执行(或列入对照组)起多长时间内达成", "How long after the action the goal counts"
            ),
        },
        "activity_resumed": {
            "const": True,
            "description": text(
                "恢复活跃:期间有交易或登录",
                "Activity resumed: a transaction or login in the window",
            ),
        },
        "aum_recovered": {
            "description": text(
                "资产回升:期末资产不低于执行时的 percent%(默认100)",
                "AUM at the end is at least percent% (default 100) of the AUM at the action",
            ),
            "if": {"type": "boolean"},
            "then": {"const": True},
            "else": {
                "type": "object",
                "additionalProperties": False,
                "required": ["percent"],
                "properties": {"percent": {"type": "number"}},
            },
        },
        "condition": {
            "$ref": "#/$defs/condition",
            "description": text(
                "任意客户条件,在窗口结束时判断", "Any audience condition, evaluated at the end"
            ),
        },
    }
    if PURCHASE_ROWS[0] in d.related:
        properties["product_bought"] = {
            "description": text(
                "期间买入产品(true 或产品条件)",
                "Bought a product in the window: true, or the product's columns",
            ),
            "if": {"type": "boolean"},
            "then": {"const": True},
            "else": {"$ref": f"#/$defs/related_{PURCHASE_ROWS[0]}"},
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["within"],
        "description": text(
            "效果目标:执行后多长时间内客户做到什么;对照组用于比较",
            "What success looks like for a customer, and within how long (see runner.py report)",
        ),
        "properties": properties,
    }
