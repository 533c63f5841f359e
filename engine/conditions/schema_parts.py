"""JSON Schema pieces for the condition forms beyond field tests (segments, calendar facts,
anniversaries, related records, changes), generated from the same tables the parser uses.

:mod:`engine.playbook.schema` assembles them; ``field_test`` is passed in to avoid an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.conditions.ast import AGGREGATES, COMPARISONS, RELATIVE_OPERATORS
from engine.conditions.special import CALENDAR_KINDS, MAX_IN_DAYS
from engine.core import calendar as cal
from engine.core.dictionary import DataDictionary, Field

FieldTest = Callable[[Field], dict[str, Any]]
DURATION = {"type": "string", "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$", "examples": ["30d"]}
DATE_TEXT = r"^(\d{4}-)?\d{1,2}-\d{1,2}$"


def _text(zh: str, en: str) -> str:
    return f"{zh}。{en}"


def special_operand(op: str) -> dict[str, Any] | None:
    """Operand schemas of the operators that are not plain values."""
    if op == "in_past":
        return {"type": "boolean"}
    if op == "anniversary":
        return {
            "if": {"type": "boolean"},
            "then": {"const": True},
            "else": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": {
                    "calendar": {
                        "enum": ["solar", "lunar", "customer", "公历", "农历", "按客户"],
                        "description": _text(
                            "公历/农历/按客户生日历法", "solar, lunar, or per the customer's flag"
                        ),
                    },
                    "years": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "integer", "minimum": 1},
                    },
                    "every": {"type": "integer", "minimum": 1},
                    "in_days": {"type": "integer", "minimum": 0, "maximum": MAX_IN_DAYS},
                },
            },
        }
    return None


def _yearly_date() -> dict[str, Any]:
    return {
        "if": {"type": "string"},
        "then": {"enum": cal.festival_names()},
        "else": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "solar": {"type": "string", "pattern": DATE_TEXT, "examples": ["10-01"]},
                "lunar": {"type": "string", "pattern": DATE_TEXT, "examples": ["08-15"]},
            },
        },
    }


def _calendar() -> dict[str, Any]:
    date = {"$ref": "#/$defs/yearly_date"}
    properties: dict[str, Any] = {
        "workday": {
            "type": "boolean",
            "description": _text("工作日(含调休)", "an official workday"),
        },
        "festival": {**date, "description": _text("当天是该节日", "the run date is the festival")},
        "days_before": {
            "type": "object",
            "required": ["festival", "days"],
            "additionalProperties": False,
            "properties": {
                "festival": date,
                "days": {"type": "integer", "minimum": 1, "maximum": MAX_IN_DAYS},
            },
            "description": _text("节日前第N天", "exactly N days before the festival"),
        },
        "last_workday_before": {
            **date,
            "description": _text("节日前最后一个工作日", "the last workday before the festival"),
        },
    }
    assert set(properties) == set(CALENDAR_KINDS)
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": properties,
        "description": _text("运行日的日历条件", "a fact about the run date"),
    }


def _aggregate_ops(kinds: set[str]) -> dict[str, Any]:
    value: dict[str, Any] = {"type": ["number", "string"]}
    ops: dict[str, Any] = {op: value for op in ("eq", "ne", "gt", "gte", "lt", "lte")}
    ops["between"] = {"type": "array", "minItems": 2, "maxItems": 2, "items": value}
    if kinds & {"date", "datetime"}:
        ops |= {op: DURATION for op in RELATIVE_OPERATORS}
        ops["in_past"] = {"type": "boolean"}
        ops["is_null"] = {"type": "boolean"}
    assert set(ops) <= {*COMPARISONS, *RELATIVE_OPERATORS, "in_past"}
    return ops


def _related(name: str, dictionary: DataDictionary) -> dict[str, Any]:
    rel = dictionary.related[name]
    where = {"$ref": f"#/$defs/related_{name}"}
    filters = {"if": {"type": "boolean"}, "then": {"const": True}, "else": where}
    numeric = [k for k, c in rel.columns.items() if c.is_numeric]
    ordered = [k for k, c in rel.columns.items() if c.is_numeric or c.is_temporal]
    properties: dict[str, Any] = {"exists": filters, "none": filters}
    properties["count"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"where": where, **_aggregate_ops({"integer"})},
    }
    for agg, columns in (("sum", numeric), ("min", ordered), ("max", ordered)):
        kinds: set[str] = {rel.columns[c].type for c in columns}
        properties[agg] = {
            "type": "object",
            "required": ["of"],
            "additionalProperties": False,
            "properties": {"of": {"enum": columns}, "where": where, **_aggregate_ops(kinds)},
        }
    for agg, spec in properties.items():
        properties[agg] = {**spec, "description": _text(*AGGREGATES[agg])}
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": properties,
        "description": _text(rel.label, rel.name),
    }


def _change(name: str, dictionary: DataDictionary) -> dict[str, Any]:
    series = dictionary.changes[name]
    compare = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": _aggregate_ops(set()),
    }
    return {
        "type": "object",
        "required": ["over"],
        "minProperties": 2,
        "maxProperties": 2,
        "additionalProperties": False,
        "properties": {"over": DURATION, "percent": compare, "amount": compare},
        "description": _text(series.label + "(百分比或金额)", series.name + " over a window"),
    }


def extra_properties(dictionary: DataDictionary) -> dict[str, Any]:
    """Condition keys besides fields and all / any / not."""
    out: dict[str, Any] = {
        "segment": {
            "type": "string",
            "minLength": 1,
            "description": _text("引用命名客群(segments/目录)", "a named segment from segments/"),
        },
        "calendar": _calendar(),
    }
    for name in dictionary.related:
        out[name] = _related(name, dictionary)
    for name in dictionary.changes:
        out[name] = _change(name, dictionary)
    return out


def extra_defs(dictionary: DataDictionary, field_test: FieldTest) -> dict[str, Any]:
    """``$defs`` for related-row filters and recurring dates."""
    defs: dict[str, Any] = {"yearly_date": _yearly_date()}
    for name, rel in dictionary.related.items():
        me = {"$ref": f"#/$defs/related_{name}"}
        boolean = {"type": "array", "minItems": 1, "items": me}
        properties: dict[str, Any] = {"all": boolean, "any": boolean, "not": me}
        properties |= {key: field_test(f) for key, f in rel.columns.items()}
        defs[f"related_{name}"] = {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": properties,
        }
    return defs
