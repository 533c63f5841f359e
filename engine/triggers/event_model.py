"""One incoming event, checked against the catalog: a typed :class:`Event` or a
:class:`Rejected` with a stable reason. A bad event never raises; the stream goes on.

Hand-written rather than run through jsonschema: this is the per-event hot path (thousands a
second), and the reasons are worded for the bank's IT. ``schemas/event.schema.json`` says the
same in JSON Schema, and a test holds the two to the same verdicts.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.clock import utc_naive
from engine.rendering.renderer import EventFields
from engine.triggers.event_catalog import (
    ENVELOPE,
    EVENT_TYPES,
    MAX_CUSTOMER_ID_LENGTH,
    MAX_ID_LENGTH,
    MAX_INTEGER,
    MAX_MONEY,
    MAX_STRING_LENGTH,
    common_fields,
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]+$")
# clocks of the bank's systems drift; an event a little "in the future" is still accepted
FUTURE_SKEW = dt.timedelta(minutes=5)
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    customer_id: str
    occurred_at: dt.datetime  # naive UTC, the engine's convention
    fields: Mapping[str, Any]  # the type's own fields; numbers as float

    @property
    def t(self) -> float:
        """Seconds since the epoch: what windows compare."""
        return (self.occurred_at - _EPOCH).total_seconds()

    def values(self) -> dict[str, Any]:
        """What conditions see: the type and the type's fields."""
        return {"type": self.type, **self.fields}

    def template_values(self, tz: ZoneInfo) -> EventFields:
        """``event`` for templates: every field the type declares (None when this event left
        an optional one out, so a template that passed validation never fails on it), its
        Chinese type label, and ``occurred_at`` in bank time."""
        spec = EVENT_TYPES[self.type]
        values = EventFields(
            id=self.id,
            type=self.type,
            type_label=spec.label,
            customer_id=self.customer_id,
            occurred_at=self.occurred_at.replace(tzinfo=dt.UTC).astimezone(tz),
        )
        for name in spec.fields:
            values[name] = self.fields.get(name)
        return values

    def as_json(self, tz: ZoneInfo) -> dict[str, Any]:
        local = self.occurred_at.replace(tzinfo=dt.UTC).astimezone(tz)
        return {
            "id": self.id,
            "type": self.type,
            "customer_id": self.customer_id,
            "occurred_at": local.isoformat(),
            **self.fields,
        }


def sample_event(types: tuple[str, ...], tz: ZoneInfo) -> EventFields:
    """The typed stand-in ``event`` templates are render-checked against at validate time:
    the first type's envelope and the fields every one of ``types`` carries (what a template
    may rely on whichever of them arrives)."""
    common = common_fields(types)
    fields: dict[str, Any] = {}
    for name, f in common.items():
        if f.type == "money":
            fields[name] = 123456.78
        elif f.type == "integer":
            fields[name] = 3.0
        elif f.type == "enum":
            fields[name] = f.values[0]
        else:
            fields[name] = "示例"
    moment = dt.datetime(2026, 1, 31, 1, 30)  # naive UTC: 09:30 in the bank's time zone
    event = Event("SAMPLE-1", types[0], "C0000000001", moment, fields)
    values = event.template_values(tz)
    return EventFields({k: v for k, v in values.items() if k in common or k in _ENVELOPE_KEYS})


_ENVELOPE_KEYS = ("id", "type", "type_label", "customer_id", "occurred_at")


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # stable code: bad_json, missing_field, unknown_type, …
    message: str
    event_id: str | None = None


def read_event(raw: Any, tz: ZoneInfo, now_utc: dt.datetime) -> Event | Rejected:
    """Check one decoded JSON value; never raises."""
    if not isinstance(raw, dict):
        return Rejected("not_an_object", 'an event is a JSON object {"id": …, "type": …}')
    event_id = raw.get("id")
    shown_id = event_id if isinstance(event_id, str) and len(event_id) <= MAX_ID_LENGTH else None
    for key in ENVELOPE:
        if raw.get(key) in (None, ""):
            return Rejected("missing_field", f"missing '{key}'", shown_id)
    if (
        not isinstance(event_id, str)
        or len(event_id) > MAX_ID_LENGTH
        or not ID_PATTERN.match(event_id)
    ):
        return Rejected(
            "bad_id",
            f"'id' must be text of at most {MAX_ID_LENGTH} letters, digits or _.:-",
        )
    kind = raw["type"]
    spec = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if spec is None:
        close = difflib.get_close_matches(str(kind), list(EVENT_TYPES), n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return Rejected(
            "unknown_type",
            f"unknown event type {str(kind)[:40]!r}; {guess}known: {', '.join(EVENT_TYPES)}",
            event_id,
        )
    customer = raw["customer_id"]
    if not isinstance(customer, str) or len(customer) > MAX_CUSTOMER_ID_LENGTH:
        return Rejected(
            "bad_customer_id",
            f"'customer_id' must be text of at most {MAX_CUSTOMER_ID_LENGTH} characters",
            event_id,
        )
    occurred = _moment(raw["occurred_at"], tz)
    if occurred is None:
        return Rejected(
            "bad_time",
            f"'occurred_at' {raw['occurred_at']!r} is not an ISO 8601 time "
            "(e.g. 2026-11-23T09:30:00+08:00)",
            event_id,
        )
    if occurred > now_utc + FUTURE_SKEW:
        return Rejected("future", "'occurred_at' lies in the future", event_id)
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ENVELOPE:
            continue
        f = spec.fields.get(key)
        if f is None:
            return Rejected(
                "unknown_field",
                f"'{kind}' has no field '{key}'; it carries: {', '.join(spec.fields) or 'none'}",
                event_id,
            )
        if value is None:
            continue
        checked = _value(f.type, f.values, value)
        if checked is None:
            expected = (
                "one of " + ", ".join(f.values)
                if f.type == "enum"
                else {
                    "money": f"an amount from 0 to {MAX_MONEY:,.2f}",
                    "integer": f"a whole number of at most {MAX_INTEGER:,}",
                }.get(f.type, f"text of at most {MAX_STRING_LENGTH} characters")
            )
            found = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}…"
            return Rejected("bad_value", f"'{key}' must be {expected}, found {found}", event_id)
        fields[key] = checked
    for f in spec.fields.values():
        if f.required and f.name not in fields:
            return Rejected("missing_field", f"'{kind}' needs '{f.name}'", event_id)
    return Event(event_id, kind, customer, occurred, fields)


def _moment(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return utc_naive(moment)


def _value(kind: str, values: tuple[str, ...], value: Any) -> Any:
    exact = type(value)
    if kind == "money" and (exact is float or exact is int) and 0 <= value <= MAX_MONEY:
        return float(value)  # the common case, checked first (bool is not int here; NaN fails)
    if kind in ("money", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value) or (kind == "integer" and value != int(value)):
            return None
        if kind == "money" and not 0 <= value <= MAX_MONEY:
            return None
        if kind == "integer" and abs(value) > MAX_INTEGER:
            return None
        return float(value)
    if not isinstance(value, str) or len(value) > MAX_STRING_LENGTH:
        return None
    if kind == "enum" and value not in values:
        return None
    return value
