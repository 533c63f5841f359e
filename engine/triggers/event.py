"""The typed event trigger a playbook validates into, and its tests over event fields.

A trigger has a first step (``event`` + ``where``) and at most one follow-up:

- nothing: every matching event fires once;
- ``count``: at least N matching events within a window (e.g. 3 withdrawals in 24h);
- ``then``: a second event within a window after the first;
- ``then_not``: no such second event within the window (absence, decided when it closes).

A :class:`FieldTest` either compares a field with a constant, which durable-rules evaluates
on each event, or with the same field of the first event (``*_ratio``), which only the
window layer can evaluate because it needs both events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.core.durations import format_duration

Op = Literal[
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "gte_ratio", "lte_ratio"
]
CONSTANT_OPS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between")
RELATIVE_OPS: tuple[str, ...] = ("gte_ratio", "lte_ratio")
ORDERED_OPS = ("gt", "gte", "lt", "lte", "between", "gte_ratio", "lte_ratio")
OP_HELP: dict[str, tuple[str, str]] = {
    "eq": ("等于", "equals"),
    "ne": ("不等于", "does not equal"),
    "in": ("属于其中之一", "is one of"),
    "not_in": ("不属于其中任何一个", "is none of"),
    "gt": ("大于", "greater than"),
    "gte": ("大于等于", "at least"),
    "lt": ("小于", "less than"),
    "lte": ("小于等于", "at most"),
    "between": ("介于两值之间(含两端)", "between two values, inclusive"),
    "gte_ratio": (
        "不少于第一个事件同一字段的该比例",
        "at least this share of the first event's same field (0.8 = 80%)",
    ),
    "lte_ratio": (
        "不超过第一个事件同一字段的该比例",
        "at most this share of the first event's same field",
    ),
}


@dataclass(frozen=True)
class FieldTest:
    field: str
    op: Op
    value: Any  # str | float | tuple of them

    @property
    def relative(self) -> bool:
        return self.op in RELATIVE_OPS

    def holds(self, event: Mapping[str, Any], first: Mapping[str, Any] | None = None) -> bool:
        """The reference meaning; an absent field fails every test except ``ne``/``not_in``."""
        have = event.get(self.field)
        if self.op == "ne":
            return bool(have != self.value)
        if self.op == "not_in":
            return bool(have not in self.value)
        if have is None:
            return False
        if self.op == "eq":
            return bool(have == self.value)
        if self.op == "in":
            return bool(have in self.value)
        if self.op == "between":
            return bool(self.value[0] <= have <= self.value[1])
        if self.relative:
            base = None if first is None else first.get(self.field)
            if base is None:
                return False
            limit = base * self.value
            return bool(have >= limit) if self.op == "gte_ratio" else bool(have <= limit)
        return bool(
            {
                "gt": have > self.value,
                "gte": have >= self.value,
                "lt": have < self.value,
                "lte": have <= self.value,
            }[self.op]
        )


@dataclass(frozen=True)
class Step:
    """One kind of event the trigger waits for: its types and its tests."""

    types: tuple[str, ...]
    where: tuple[FieldTest, ...] = ()

    @property
    def constant_tests(self) -> tuple[FieldTest, ...]:
        return tuple(t for t in self.where if not t.relative)

    @property
    def relative_tests(self) -> tuple[FieldTest, ...]:
        return tuple(t for t in self.where if t.relative)

    def holds(self, event: Mapping[str, Any], first: Mapping[str, Any] | None = None) -> bool:
        return event.get("type") in self.types and all(t.holds(event, first) for t in self.where)


@dataclass(frozen=True)
class Count:
    at_least: int
    within: dt.timedelta


@dataclass(frozen=True)
class FollowUp:
    step: Step
    within: dt.timedelta
    absent: bool  # then_not: fire when no such event comes within the window


Kind = Literal["single", "count", "then", "then_not"]


@dataclass(frozen=True)
class EventTrigger:
    first: Step
    count: Count | None = None
    follow: FollowUp | None = None

    @property
    def kind(self) -> Kind:
        if self.count is not None:
            return "count"
        if self.follow is not None:
            return "then_not" if self.follow.absent else "then"
        return "single"

    @property
    def window(self) -> dt.timedelta:
        """How long a first event can still take part in a match."""
        if self.count is not None:
            return self.count.within
        if self.follow is not None:
            return self.follow.within
        return dt.timedelta(0)

    @property
    def summary(self) -> str:
        """One line for reports: ``event redemption then_not [purchase, deposit] within 7d``."""

        text = f"event {_types(self.first.types)}"
        if self.count is not None:
            text += f" ×{self.count.at_least} within {format_duration(self.count.within)}"
        elif self.follow is not None:
            word = "then_not" if self.follow.absent else "then"
            text += f" {word} {_types(self.follow.step.types)}"
            text += f" within {format_duration(self.follow.within)}"
        return text


def _types(types: tuple[str, ...]) -> str:
    return types[0] if len(types) == 1 else "[" + ", ".join(types) + "]"
