"""JSON Schema pieces for event triggers and for events themselves, from the catalog.

``trigger_properties`` joins the playbook schema's ``trigger`` (editor completion for event
types, fields and operators); ``event_schema`` documents one incoming event for the bank's IT,
who can check their feed with any JSON Schema tool.
"""

from __future__ import annotations

from typing import Any

from engine.triggers.event import CONSTANT_OPS, OP_HELP, RELATIVE_OPS
from engine.triggers.event_catalog import (
    ENVELOPE,
    EVENT_TYPES,
    MAX_CUSTOMER_ID_LENGTH,
    MAX_ID_LENGTH,
    MAX_INTEGER,
    MAX_MONEY,
    MAX_STRING_LENGTH,
    EventField,
)

DURATION = {"type": "string", "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$", "examples": ["7d", "24h"]}


def _text(zh: str, en: str) -> str:
    return f"{zh}。{en}"


def _value(f: EventField) -> dict[str, Any]:
    if f.type == "enum":
        return {"enum": list(f.values)}
    if f.type == "money":
        return {"type": "number", "minimum": 0, "maximum": MAX_MONEY}
    if f.numeric:
        return {"type": "number", "minimum": -MAX_INTEGER, "maximum": MAX_INTEGER}
    return {"type": "string", "maxLength": MAX_STRING_LENGTH}


def _field_test(fields: list[EventField]) -> dict[str, Any]:
    f = fields[0]
    numeric = f.numeric
    ops: dict[str, Any] = {}
    for op in CONSTANT_OPS + RELATIVE_OPS:
        if not numeric and op not in ("eq", "ne", "in", "not_in"):
            continue
        if op in ("in", "not_in"):
            operand: dict[str, Any] = {"type": "array", "minItems": 1}
        elif op == "between":
            operand = {"type": "array", "minItems": 2, "maxItems": 2}
        elif op in RELATIVE_OPS:
            operand = {"type": "number", "exclusiveMinimum": 0}
        else:
            operand = {}
        ops[op] = {**operand, "description": _text(*OP_HELP[op])}
    labels = sorted({x.label for x in fields})
    return {
        "description": _text("/".join(labels), f.name),
        "if": {"type": "object"},
        "then": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": ops,
        },
    }


def _where() -> dict[str, Any]:
    by_name: dict[str, list[EventField]] = {}
    for t in EVENT_TYPES.values():
        for f in t.fields.values():
            by_name.setdefault(f.name, []).append(f)
    return {
        "type": "object",
        "additionalProperties": False,
        "description": _text(
            "事件字段条件,全部满足;值可以是一个值、一个列表(其一)或 {运算符: 值}",
            "Conditions over the event's fields, all must hold",
        ),
        "properties": {name: _field_test(fs) for name, fs in sorted(by_name.items())},
    }


def _event_ref() -> dict[str, Any]:
    names = list(EVENT_TYPES)
    one = {"enum": names}
    return {
        "description": _text(
            "事件类型(或列表,任一):"
            + ", ".join(f"{t.name}={t.label}" for t in EVENT_TYPES.values()),
            "Event type, or a list of types (any of them)",
        ),
        "if": {"type": "array"},
        "then": {"type": "array", "minItems": 1, "items": one},
        "else": one,
    }


def _follow(zh: str, en: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["event", "within"],
        "description": _text(zh, en),
        "properties": {
            "event": _event_ref(),
            "where": _where(),
            "within": {
                **DURATION,
                "description": _text("在第一个事件之后多久之内", "Window after the first event"),
            },
        },
    }


def trigger_properties() -> dict[str, Any]:
    """The event keys of ``trigger`` (beside ``schedule``)."""
    return {
        "event": {
            **_event_ref(),
            "description": _text("事件触发:事件类型", "Event trigger: the event type"),
        },
        "where": _where(),
        "count": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at_least", "within"],
            "description": _text(
                "在时间窗口内至少发生N次", "At least N such events within a window"
            ),
            "properties": {
                "at_least": {"type": "integer", "minimum": 2, "maximum": 20},
                "within": DURATION,
            },
        },
        "then": _follow("之后在窗口内又发生", "Followed by this event within the window"),
        "then_not": _follow(
            "之后在窗口内没有发生(窗口结束时判断)",
            "NOT followed by this event within the window (decided when the window closes)",
        ),
    }


def event_schema() -> dict[str, Any]:
    """One incoming event (draft 2020-12): the envelope plus the fields of its type."""
    branches = []
    for t in EVENT_TYPES.values():
        props: dict[str, Any] = {"type": {"const": t.name}}
        props.update({f.name: {**_value(f), "description": f.label} for f in t.fields.values()})
        branches.append(
            {
                "if": {"properties": {"type": {"const": t.name}}},
                "then": {
                    "properties": props,
                    "required": [f.name for f in t.fields.values() if f.required],
                    "propertyNames": {"enum": [*ENVELOPE, *t.fields]},
                },
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://care-playbooks.invalid/schemas/event.schema.json",
        "title": "Event 客户事件",
        "type": "object",
        "required": list(ENVELOPE),
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ID_LENGTH,
                "pattern": r"^[A-Za-z0-9_.:\-]+$",
                "description": "事件唯一编号 (dedup key)",
            },
            "type": {"enum": list(EVENT_TYPES), "description": "事件类型"},
            "customer_id": {"type": "string", "minLength": 1, "maxLength": MAX_CUSTOMER_ID_LENGTH},
            "occurred_at": {"type": "string", "description": "ISO 8601; without offset: bank time"},
        },
        "allOf": branches,
    }
