"""The playbook JSON Schema (draft 2020-12), generated from the model the validator uses.

The schema's field names, operators and action kinds come from the data dictionary, the
operator table and the action registry, so the editor (yaml-language-server) and the
validator cannot disagree. ``python runner.py schema`` writes it to
``schemas/playbook.schema.json``; a test keeps the shipped file equal to this output.
"""

from __future__ import annotations

import json
from typing import Any

from engine.actions import REGISTRY
from engine.conditions.ast import OPERATOR_HELP, OPERATORS, RELATIVE_OPERATORS
from engine.conditions.context import DEFAULT_LIMIT as CONTEXT_DEFAULT_LIMIT
from engine.conditions.context import MAX_LIMIT as CONTEXT_MAX_LIMIT
from engine.conditions.context import NAME_PATTERN as CONTEXT_NAME_PATTERN
from engine.conditions.goals import goal_schema
from engine.conditions.schema_parts import extra_defs, extra_properties, special_operand
from engine.core.dictionary import DataDictionary, Field
from engine.triggers.event_schema import trigger_properties as event_trigger_properties

SCHEMA_ID = "https://care-playbooks.invalid/schemas/playbook.schema.json"
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
_JSON_SCALAR = {
    "string": "string",
    "enum": "string",
    "tags": "string",
    "integer": "integer",
    "number": "number",
    "money": "number",
    "date": "string",
    "datetime": "string",
    "boolean": "boolean",
}


def _text(zh: str, en: str) -> str:
    return f"{zh}。{en}"


def _scalar(f: Field) -> dict[str, Any]:
    if f.type == "enum":
        return {"enum": [*f.values, *f.values.values()]}
    out: dict[str, Any] = {"type": _JSON_SCALAR[f.type]}
    if f.type == "date":
        out["format"] = "date"
    return out


def _operand(f: Field, op: str) -> dict[str, Any]:
    special = special_operand(op)
    if special is not None:
        return special
    if op == "is_null":
        return {"type": "boolean"}
    if op in RELATIVE_OPERATORS:
        return {"type": "string", "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$", "examples": ["30d"]}
    if op in ("in", "not_in"):
        return {"type": "array", "minItems": 1, "items": _scalar(f)}
    if op == "between":
        return {"type": "array", "minItems": 2, "maxItems": 2, "items": _scalar(f)}
    if op == "contains":
        return {"type": "string", "minLength": 1}
    return _scalar(f)


def field_test(f: Field) -> dict[str, Any]:
    """A field's test: a bare value (equals / has tag), a list (one of), or ``{op: value}``."""
    ops = [op for op, types in OPERATORS.items() if f.type in types]
    description = _text(f.label, f.name)
    if f.type == "enum":
        description += " — " + ", ".join(f"{code}={label}" for code, label in f.values.items())
    operators = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {
            op: {**_operand(f, op), "description": _text(*OPERATOR_HELP[op])} for op in ops
        },
    }
    bare: dict[str, Any] = _scalar(f)
    return {
        "description": description,
        "if": {"type": "object"},
        "then": operators,
        "else": {
            "if": {"type": "array"},
            "then": {"type": "array", "minItems": 1, "items": bare},
            "else": bare,
        },
    }


def condition_schema(dictionary: DataDictionary) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "all": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/$defs/condition"},
            "description": _text("全部满足", "All of these hold"),
        },
        "any": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/$defs/condition"},
            "description": _text("满足其一", "At least one of these holds"),
        },
        "not": {"$ref": "#/$defs/condition", "description": _text("不满足", "This does not hold")},
    }
    for f in dictionary:
        properties[f.key] = field_test(f)
    properties |= extra_properties(dictionary)
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": properties,
    }


def duration_schema(zh: str, en: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$",
        "description": _text(zh, en),
        "examples": ["30d", "2w", "12h"],
    }


def context_schema(dictionary: DataDictionary) -> dict[str, Any]:
    """``context:``: named selections of related rows the templates may use."""
    by_table = [
        {
            "if": {"properties": {"from": {"const": name}}, "required": ["from"]},
            "then": {"properties": {"where": {"$ref": f"#/$defs/related_{name}"}}},
        }
        for name in dictionary.related
    ]
    return {
        "type": "object",
        "description": _text(
            "模板可用的关联记录:每个名称选出客户的若干行(如到期的理财),模板中写"
            " {{ 名称[0].列 }} 或循环",
            "Related rows the templates may name: each entry selects up to 'limit' rows per "
            "customer; templates use {{ name[0].column }} or loop over them",
        ),
        "propertyNames": {"pattern": CONTEXT_NAME_PATTERN},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "required": ["from"],
            "properties": {
                "from": {
                    "type": "string",
                    "description": _text(
                        "关联表:" + " / ".join(dictionary.related),
                        "The related table (data dictionary 'related:')",
                    ),
                    "examples": list(dictionary.related),
                },
                "where": {
                    "type": "object",
                    "description": _text(
                        "行的条件,写法与 audience 的关联记录条件相同",
                        "Which rows: the same conditions as a related-record filter",
                    ),
                },
                "order": {
                    "type": "string",
                    "description": _text(
                        "排序列;前加 - 为降序", "Column to order by; a leading '-' = descending"
                    ),
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": CONTEXT_MAX_LIMIT,
                    "default": CONTEXT_DEFAULT_LIMIT,
                    "description": _text("每位客户最多几行", "Most rows per customer"),
                },
            },
            "allOf": by_table,
        },
    }


def playbook_schema(dictionary: DataDictionary) -> dict[str, Any]:
    actions = {
        key: {**kind.schema(), "description": _text(*kind.label)}
        for key, kind in sorted(REGISTRY.items())
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Playbook 客户维护剧本",
        "description": _text(
            "一个剧本说明:对谁(audience)、何时(trigger)、做什么(actions)",
            "A playbook says who (audience), when (trigger) and what (actions)",
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "title", "trigger", "audience", "actions"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": ID_PATTERN,
                "description": _text(
                    "唯一编号,小写字母、数字和连字符", "Unique id: lower-case letters, digits, '-'"
                ),
            },
            "title": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": _text("标题", "Title"),
            },
            "owner": {
                "type": "string",
                "maxLength": 100,
                "description": _text("负责部门", "Owning team"),
            },
            "description": {
                "type": "string",
                "maxLength": 10_000,
                "description": _text(
                    "实施哪项业务实践、阈值为何如此", "Which practice this implements and why"
                ),
            },
            "enabled": {
                "type": "boolean",
                "default": True,
                "description": _text("是否启用", "Whether the daemon runs it"),
            },
            "category": {
                "enum": ["marketing", "service"],
                "default": "marketing",
                "description": _text(
                    "marketing 营销类(受营销同意与频次限制) / service 服务类",
                    "marketing (needs marketing consent, counts toward caps) or service",
                ),
            },
            "priority": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": 50,
                "description": _text("优先级,数值越大越优先", "Priority; higher wins"),
            },
            "trigger": {
                "type": "object",
                "additionalProperties": False,
                # 'schedule' or 'event': the validator words that choice better than anyOf
                "description": _text(
                    "何时运行:定时(schedule)或事件(event)",
                    "When it runs: on a schedule, or when an event arrives",
                ),
                "properties": {
                    "schedule": {
                        "type": "string",
                        "description": _text(
                            "cron 表达式(分 时 日 月 周),按配置时区",
                            "Cron expression (minute hour day month weekday), local time",
                        ),
                        "examples": ["0 9 * * 1-5"],
                    },
                    **event_trigger_properties(),
                },
            },
            "audience": {
                "description": _text(
                    "目标客户条件,或 everyone 表示全部客户",
                    "Who: conditions over customer fields, or 'everyone'",
                ),
                "if": {"type": "string"},
                "then": {"const": "everyone"},
                "else": {"$ref": "#/$defs/condition"},
            },
            "actions": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10,
                "description": _text("执行的动作", "What to do for each customer"),
                "items": {"$ref": "#/$defs/action"},
            },
            "holdout_percent": {
                "type": "number",
                "minimum": 0,
                "maximum": 50,
                "default": 0,
                "description": _text(
                    "对照组比例(%):按客户稳定抽取,不执行任何动作,用于效果评估",
                    "Percent of the audience held out (stable per customer) to measure effect",
                ),
            },
            "goal": goal_schema(dictionary),
            "context": context_schema(dictionary),
            "limits": {
                "type": "object",
                "additionalProperties": False,
                "description": _text("限制", "Limits"),
                "properties": {
                    "once_per_customer": duration_schema(
                        "同一客户在此期间内只执行一次", "At most once per customer in this period"
                    ),
                    "max_per_run": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 100_000_000,
                        "description": _text("每次运行最多客户数", "Most customers per run"),
                    },
                    "quiet_hours": {
                        "enum": ["wait", "expire"],
                        "default": "wait",
                        "description": _text(
                            "消息在渠道允许时段外:wait 等到下一个时段 / expire 作废",
                            "Outside the channel's allowed hours (config/policy.yaml): wait for "
                            "the next window, or expire",
                        ),
                    },
                },
            },
        },
        "$defs": {
            "condition": condition_schema(dictionary),
            **extra_defs(dictionary, field_test),
            "action": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "additionalProperties": False,
                "description": _text(
                    "一个动作,以类型为键:" + " / ".join(REGISTRY),
                    "One action, keyed by its kind",
                ),
                "properties": actions,
            },
        },
    }


def render_schema(dictionary: DataDictionary) -> str:
    return json.dumps(playbook_schema(dictionary), ensure_ascii=False, indent=2) + "\n"
