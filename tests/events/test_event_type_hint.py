"""A misspelt event type is rejected with the type it was probably meant to be."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from engine.triggers.event_model import Rejected, read_event

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 1, 0)


def event(kind: object) -> dict[str, object]:
    return {
        "id": "e-1",
        "type": kind,
        "customer_id": "C0000000043",
        "occurred_at": "2026-11-23T09:00:00+08:00",
        "amount": 60000,
    }


def test_a_misspelt_type_gets_a_did_you_mean() -> None:
    found = read_event(event("withdrawl"), TZ, NOW)
    assert isinstance(found, Rejected) and found.reason == "unknown_type"
    assert "did you mean 'withdrawal'?" in found.message


def test_a_type_like_none_gets_the_list_only() -> None:
    found = read_event(event("zzzz"), TZ, NOW)
    assert isinstance(found, Rejected) and "did you mean" not in found.message
    assert "withdrawal" in found.message
