"""The event schema: which event types exist and what each carries.

One place declares them (like the data dictionary declares customer fields): the validator
of incoming events, the playbook validator (``where`` over event fields), the editor schema and
the docs all read this table. Adding a type is one entry here.

Every event has the envelope ``id``, ``type``, ``customer_id`` and ``occurred_at``; the fields
below come beside them, flat, in the same JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

FieldType = Literal["money", "integer", "string", "enum"]

CHANNELS = ("counter", "mobile", "atm", "online")
PRODUCT_TYPES = ("demand_deposit", "time_deposit", "wealth", "fund", "insurance", "bond")
COMPLAINT_CATEGORIES = ("service", "fee", "product", "fraud", "other")
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class EventField:
    name: str
    type: FieldType
    label: str  # Chinese label, shown in docs and the editor
    required: bool = False
    values: tuple[str, ...] = ()  # for enum fields

    @property
    def numeric(self) -> bool:
        return self.type in ("money", "integer")


@dataclass(frozen=True)
class EventType:
    name: str
    label: str
    fields: Mapping[str, EventField]


def _type(name: str, label: str, *fields: EventField) -> EventType:
    return EventType(name, label, MappingProxyType({f.name: f for f in fields}))


def _amount() -> EventField:
    return EventField("amount", "money", "金额(元)", required=True)


def _channel(required: bool = False) -> EventField:
    return EventField("channel", "enum", "渠道", required, CHANNELS)


def _product(required: bool = True) -> tuple[EventField, ...]:
    return (
        EventField("product_type", "enum", "产品类型", required, PRODUCT_TYPES),
        EventField("product_name", "string", "产品名称"),
    )


_TYPES = (
    _type("deposit", "存款", _amount(), _channel()),
    _type("withdrawal", "取款", _amount(), _channel()),
    _type("transfer_in", "转入", _amount(), _channel()),
    _type("transfer_out", "转出", _amount(), _channel()),
    _type("purchase", "购买产品", _amount(), *_product(), _channel()),
    _type("redemption", "赎回产品", _amount(), *_product(), _channel()),
    _type("login", "登录", _channel(required=True)),
    _type(
        "complaint_opened",
        "投诉受理",
        EventField("complaint_id", "string", "投诉编号", required=True),
        EventField("category", "enum", "投诉类别", True, COMPLAINT_CATEGORIES),
        EventField("severity", "enum", "严重程度", True, SEVERITIES),
    ),
    _type(
        "complaint_resolved",
        "投诉办结",
        EventField("complaint_id", "string", "投诉编号", required=True),
        EventField("category", "enum", "投诉类别", False, COMPLAINT_CATEGORIES),
        EventField("severity", "enum", "严重程度", False, SEVERITIES),
    ),
    _type(
        "referral",
        "转介绍",
        EventField("referred_customer_id", "string", "被推荐客户编号"),
        _channel(),
    ),
)

EVENT_TYPES: Mapping[str, EventType] = MappingProxyType({t.name: t for t in _TYPES})
ENVELOPE = ("id", "type", "customer_id", "occurred_at")
MAX_ID_LENGTH = 64
MAX_CUSTOMER_ID_LENGTH = 20
MAX_STRING_LENGTH = 200
MAX_MONEY = 9_999_999_999_999_999.99
"""The largest amount a NUMERIC(18,2) column holds; amounts are never negative (the event
type says the direction: deposit, withdrawal, transfer_in, transfer_out, …)."""
MAX_INTEGER = 2**53
"""Integers beyond this are not exact in JSON numbers read as floats."""


def common_fields(types: tuple[str, ...]) -> dict[str, EventField]:
    """Fields every one of ``types`` carries (a ``where`` over several types may use only
    these), with the first type's declaration."""
    first = EVENT_TYPES[types[0]].fields
    return {
        name: f
        for name, f in first.items()
        if all(
            name in EVENT_TYPES[t].fields and EVENT_TYPES[t].fields[name].type == f.type
            for t in types[1:]
        )
    }
