"""The durable-rules side of event playbooks: compiled single-event rules agree with the
Python meaning of ``where``, unmatched events are "no match", names are versioned, errors
inside an action surface, and the event format's two checkers agree."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import REPO, TZ

from engine.events.rules import SESSION, RuleError, RulesHost
from engine.triggers.event import CONSTANT_OPS, FieldTest, Step
from engine.triggers.event_catalog import EVENT_TYPES
from engine.triggers.event_model import Event, Rejected, read_event
from engine.triggers.event_schema import event_schema

NOW = dt.datetime(2026, 11, 23, 1, 0)  # UTC
AMOUNTS = [0.0, 999.5, 1000.0, 50000.0, 50000.01, 800000.0]
CHANNELS = ["counter", "mobile", "atm", "online"]


def _test_strategy() -> st.SearchStrategy[FieldTest]:
    amount = st.builds(
        FieldTest,
        st.just("amount"),
        st.sampled_from([op for op in CONSTANT_OPS if op not in ("in", "not_in", "between")]),
        st.sampled_from(AMOUNTS),
    )
    amount_set = st.builds(
        FieldTest,
        st.just("amount"),
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(AMOUNTS), min_size=1, max_size=3, unique=True).map(tuple),
    )
    between = st.builds(
        FieldTest,
        st.just("amount"),
        st.just("between"),
        st.lists(st.sampled_from(AMOUNTS), min_size=2, max_size=2).map(lambda v: tuple(sorted(v))),
    )
    channel = st.builds(
        FieldTest,
        st.just("channel"),
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(CHANNELS),
    )
    channel_set = st.builds(
        FieldTest,
        st.just("channel"),
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True).map(tuple),
    )
    return st.one_of(amount, amount_set, between, channel, channel_set)


def _event_strategy() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["deposit", "withdrawal", "login"])},
        optional={"amount": st.sampled_from(AMOUNTS), "channel": st.sampled_from(CHANNELS)},
    )


@settings(max_examples=150, deadline=None)
@given(
    types=st.lists(
        st.sampled_from(["deposit", "withdrawal"]), min_size=1, max_size=2, unique=True
    ).map(tuple),
    tests=st.lists(_test_strategy(), max_size=3),
    stream=st.lists(_event_strategy(), min_size=1, max_size=8),
)
def test_event_where_in_durable_rules_agrees_with_python_reference(
    types: tuple[str, ...], tests: list[FieldTest], stream: list[dict[str, Any]]
) -> None:
    step = Step(types, tuple(tests))
    host = RulesHost()
    name = host.register("prop", step)
    for i, values in enumerate(stream):
        message = {"sid": SESSION, "id": f"e{i}", **values}
        assert host.post(name, message) == step.holds(values), (step, values)
    host.drop(name)


def test_event_no_match_is_not_an_error_and_rulesets_are_versioned() -> None:
    host = RulesHost()
    step = Step(("withdrawal",), (FieldTest("amount", "gte", 500000.0),))
    first, second = host.register("p__abc", step), host.register("p__abc", step)
    assert first != second and len(host) == 2  # never replaced in place
    small = {"sid": SESSION, "id": "a", "type": "withdrawal", "amount": 10.0}
    assert host.post(first, small) is False  # MessageNotHandledException inside
    assert host.post(first, {"sid": SESSION, "id": "b", "type": "login"}) is False
    big = {"sid": SESSION, "id": "c", "type": "withdrawal", "amount": 600000.0}
    assert host.post(first, big) is True
    assert host.post(first, {**big, "id": "d"}) is True  # one match per event, no state
    definition = host.definition(first)
    assert definition[first]["r"]["all"] == [
        {"m": {"$and": [{"type": "withdrawal"}, {"$gte": {"amount": 500000.0}}]}}
    ]
    host.drop(first)
    assert first not in host and second in host


class _FailingOnceHost(RulesHost):
    """A failure inside the action lifecycle, once."""

    failed = False

    def _matched(self, action_json: str, message: str, event_id: Any) -> bool:
        if not self.failed:
            self.failed = True
            raise ValueError("boom")
        return super()._matched(action_json, message, event_id)


def test_event_action_error_is_surfaced_not_swallowed() -> None:
    host = _FailingOnceHost()
    name = host.register("fail", Step(("login",)))
    login = {"sid": SESSION, "id": "x", "type": "login", "channel": "mobile"}
    with pytest.raises(RuleError, match="boom"):
        host.post(name, login)
    # the session was released: the next event is matched normally
    assert host.post(name, {**login, "id": "y"}) is True


SAMPLES: list[Any] = [
    {
        "id": "E1",
        "type": "deposit",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "amount": 10,
    },
    {
        "id": "E2",
        "type": "deposit",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00",
        "amount": "10",
    },
    {"id": "E3", "type": "login", "customer_id": "C1", "occurred_at": "2026-11-23T08:00:00+08:00"},
    {
        "id": "E4",
        "type": "login",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "channel": "mobile",
    },
    {
        "id": "E5",
        "type": "redemption",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "amount": 5,
        "product_type": "gold",
    },
    {
        "id": "E6",
        "type": "redemption",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "amount": 5,
        "product_type": "wealth",
        "product_name": "稳健",
    },
    {
        "id": "E 7",
        "type": "login",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "channel": "mobile",
    },
    {
        "id": "E8",
        "type": "login",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "channel": "mobile",
        "extra": 1,
    },
    {
        "id": "E9",
        "type": "complaint_opened",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "complaint_id": "K1",
        "category": "fee",
        "severity": "high",
    },
    {
        "id": "E10",
        "type": "teleport",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T08:00:00+08:00",
    },
]


@pytest.mark.parametrize("raw", SAMPLES, ids=[str(s["id"]) for s in SAMPLES])
def test_event_schema_and_reader_agree(raw: dict[str, Any]) -> None:
    by_schema = not list(jsonschema.Draft202012Validator(event_schema()).iter_errors(raw))
    by_reader = isinstance(read_event(raw, TZ, NOW), Event)
    assert by_schema == by_reader


def test_event_schema_file_is_current() -> None:
    shipped = json.loads((REPO / "schemas" / "event.schema.json").read_text(encoding="utf-8"))
    assert shipped == event_schema(), "run `python runner.py events schema`"


def test_event_reader_reads_local_time_and_never_raises() -> None:
    read = read_event(SAMPLES[1] | {"amount": 10}, TZ, NOW)
    assert isinstance(read, Event) and read.occurred_at == dt.datetime(2026, 11, 23, 0, 0)
    for junk in (None, 3, "x", [], {"id": None}, {"id": "a", "type": {"x": 1}}):
        assert isinstance(read_event(junk, TZ, NOW), Rejected)
    assert set(EVENT_TYPES) >= {
        "deposit",
        "withdrawal",
        "purchase",
        "redemption",
        "login",
        "complaint_opened",
        "complaint_resolved",
        "referral",
    }


# --- event.* in templates ----------------------------------------------------------------

EVENT_PLAYBOOK = """id: big-out
title: 大额转出
category: service
trigger:
  event: [withdrawal, transfer_out]
  where: {{amount: {{gte: 500000}}}}
audience: everyone
actions:
  - task:
      assignee: manager
      kind: call
      title: "{title}"
"""


def _diagnostics(tmp_path: Path, text: str) -> list[Any]:
    from support import validator

    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return validator().validate_paths([path]).errors


def test_event_fields_in_templates_are_render_checked_with_did_you_mean(tmp_path: Path) -> None:
    good = EVENT_PLAYBOOK.format(
        title="{{ event.amount | wan }} {{ event.occurred_at | cn_datetime }}"
    )
    assert _diagnostics(tmp_path, good) == []
    [typo] = _diagnostics(tmp_path, EVENT_PLAYBOOK.format(title="{{ event.amuont | wan }}"))
    assert typo.code == "PB0122" and (typo.line, typo.path[-1]) == (12, "title")
    assert "event 'withdrawal' has no field 'amuont'" in typo.message
    assert typo.hint is not None and "did you mean 'event.amount'?" in typo.hint
    # product_type is a field of purchase/redemption, not of withdrawal or transfer_out
    [other] = _diagnostics(tmp_path, EVENT_PLAYBOOK.format(title="{{ event.product_type }}"))
    assert other.code == "PB0122" and "product_type" in other.message


def test_event_variable_in_a_scheduled_playbook_is_a_clear_error(tmp_path: Path) -> None:
    text = EVENT_PLAYBOOK.format(title="{{ event.amount }}").replace(
        "  event: [withdrawal, transfer_out]\n  where: {amount: {gte: 500000}}\n",
        '  schedule: "0 9 * * 1-5"\n',
    )
    [d] = _diagnostics(tmp_path, text)
    assert d.code == "PB0128" and d.line == 11
    assert "only available in event playbooks" in d.message


def test_event_values_reach_the_rendered_task(tmp_path: Path) -> None:
    """At run time ``event`` is the match's first event, in bank time; an optional field the
    event left out is None, not a failure."""
    from engine.rendering.renderer import Renderer

    tz = ZoneInfo("Asia/Shanghai")
    raw = {
        "id": "W-9",
        "type": "withdrawal",
        "customer_id": "C1",
        "occurred_at": "2026-11-23T09:30:00+08:00",
        "amount": 600000,
    }
    event = read_event(raw, tz, dt.datetime(2026, 11, 24))
    assert not isinstance(event, Rejected)
    values = event.template_values(tz)
    renderer = Renderer(tmp_path)
    text = "{{ event.type_label }} {{ event.amount | wan }} {{ event.occurred_at | cn_datetime }}"
    shown = renderer.render(renderer.inline(text), {"event": values})
    assert shown == "取款 60.00万元 2026年11月23日 09:30"
    assert values["channel"] is None
