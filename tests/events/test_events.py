"""Event playbooks end to end on a real store (SQLite and PostgreSQL): dedup, order, restart
in the middle of a window, unknown customers, malformed events, counts and reloads."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from support import (
    REPO,
    SETTINGS,
    TZ,
    clear_engine_tables,
    dictionary,
    playbook_from_text,
    validator,
    valued_customers,
)

from engine.events.ingest import ingest, read_jsonl
from engine.events.processor import EventProcessor, ledger_window
from engine.events.server import EventServer
from engine.playbook.model import Playbook
from engine.store.db import open_store
from engine.store.models import action_ledger, event_matches, event_rejections, events, tasks
from engine.triggers.event import EventTrigger

DAY0 = dt.datetime(2026, 11, 16, 10, 0, tzinfo=TZ)


def shipped() -> list[Playbook]:
    catalog = validator().validate_paths([SETTINGS.playbooks_dir])
    return [p for p in catalog.playbooks if isinstance(p.trigger, EventTrigger)]


def processor(store: Engine, playbooks: list[Playbook], now: dt.datetime) -> EventProcessor:
    p = EventProcessor(store, SETTINGS, dictionary(), validator().renderer)
    p.restore(playbooks, now)
    return p


def ev(eid: str, kind: str, cid: str, at: dt.datetime, **fields: Any) -> tuple[str, Any]:
    return (
        eid,
        {"id": eid, "type": kind, "customer_id": cid, "occurred_at": at.isoformat(), **fields},
    )


def count(store: Engine, table: Any, *where: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_event_duplicate_id_fires_once_from_jsonl(demo_store: Engine, tmp_path: Path) -> None:
    cid = valued_customers(demo_store, 1)[0]
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    line = {
        "id": "W-1",
        "type": "withdrawal",
        "customer_id": cid,
        "occurred_at": "2026-11-23T08:30:00+08:00",
        "amount": 800000,
        "channel": "counter",
    }
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    p = processor(demo_store, shipped(), now)
    report = ingest(p, read_jsonl(path), lambda: now, batch=1)  # the twin in its own batch
    assert (report.accepted, report.duplicates) == (1, 1)
    assert [h.result for h in report.handled] == ["acted"]
    again = ingest(processor(demo_store, shipped(), now), read_jsonl(path), lambda: now)
    assert (again.accepted, again.duplicates, again.handled) == (0, 2, [])
    window = ledger_window("W-1")
    assert count(demo_store, action_ledger, action_ledger.c.window == window) == 1
    assert count(demo_store, tasks, tasks.c.playbook_id == "large-withdrawal-alert") == 1


def test_event_restart_in_the_middle_of_a_7_day_window(demo_store: Engine) -> None:
    """Redeemed on day 0; the process stops; a new one restarts on day 3 and again on day 8:
    the follow-up fires once, after the window closed, and never again."""
    fired, reinvested = valued_customers(demo_store, 2)
    playbooks = shipped()
    first = processor(demo_store, playbooks, DAY0)
    first.process(
        [
            ev("R-1", "redemption", fired, DAY0, amount=200000.0, product_type="wealth"),
            ev("R-2", "redemption", reinvested, DAY0, amount=200000.0, product_type="wealth"),
        ],
        DAY0,
    )
    del first  # the daemon stops; only the store remains

    day3 = DAY0 + dt.timedelta(days=3)
    second = processor(demo_store, playbooks, day3)
    assert second.held() == 2  # both redemptions are pending again
    report = second.process([ev("D-2", "deposit", reinvested, day3, amount=170000.0)], day3)
    assert report.handled == []
    assert second.tick(DAY0 + dt.timedelta(days=6)) == []
    del second

    day8 = DAY0 + dt.timedelta(days=8)
    third = processor(demo_store, playbooks, day8)  # the window closed while nobody ran
    done = count(
        demo_store, event_matches, event_matches.c.playbook_id == "redemption-not-reinvested"
    )
    assert done == 1
    assert count(demo_store, action_ledger, action_ledger.c.window == ledger_window("R-1")) == 1
    assert count(demo_store, action_ledger, action_ledger.c.window == ledger_window("R-2")) == 0
    assert third.tick(day8 + dt.timedelta(hours=1)) == []
    processor(demo_store, playbooks, day8 + dt.timedelta(days=1))  # and another restart
    assert (
        count(demo_store, action_ledger, action_ledger.c.customer_id.in_([fired, reinvested])) == 1
    )


def test_event_out_of_order_follow_up_still_counts(demo_store: Engine) -> None:
    early, small = valued_customers(demo_store, 2)
    p = processor(demo_store, shipped(), DAY0)
    later = DAY0 + dt.timedelta(days=1)
    report = p.process(
        [
            # the deposit (day 1) arrives before the redemption it follows (day 0)
            ev("D-1", "deposit", early, later, amount=190000.0),
            ev("R-1", "redemption", early, DAY0, amount=200000.0, product_type="wealth"),
            # a deposit below 80% does not count as reinvested
            ev("D-2", "deposit", small, later, amount=100000.0),
            ev("R-2", "redemption", small, DAY0, amount=200000.0, product_type="wealth"),
        ],
        later,
    )
    assert report.handled == []
    closed = p.tick(DAY0 + dt.timedelta(days=7, minutes=1))
    assert [(h.match.customer_id, h.match.key) for h in closed] == [(small, "R-2")]


def test_event_count_three_withdrawals_within_24h(demo_store: Engine, tmp_path: Path) -> None:
    playbook = playbook_from_text(
        tmp_path,
        """
id: withdrawals-3-in-24h
title: 24小时内3笔5万以上取款
category: service
trigger:
  event: withdrawal
  where: {amount: {gt: 50000}}
  count: {at_least: 3, within: 24h}
audience: everyone
actions:
  - task: {assignee: manager, kind: call, title: "连续大额取款 {{ customer.name }}", due_in: 1d}
""",
    )
    burst, spread = valued_customers(demo_store, 2)
    h = dt.timedelta(hours=1)
    now = DAY0 + 40 * h
    p = processor(demo_store, [playbook], now)
    report = p.process(
        [
            ev("A3", "withdrawal", burst, DAY0 + 20 * h, amount=60000.0),  # out of order
            ev("A1", "withdrawal", burst, DAY0, amount=60000.0),
            ev("A0", "withdrawal", burst, DAY0, amount=1000.0),  # too small
            ev("A2", "withdrawal", burst, DAY0 + 10 * h, amount=70000.0),
            ev("A4", "withdrawal", burst, DAY0 + 21 * h, amount=70000.0),  # 4th: no 2nd alert
            ev("S1", "withdrawal", spread, DAY0, amount=60000.0),
            ev("S2", "withdrawal", spread, DAY0 + 15 * h, amount=60000.0),
            ev("S3", "withdrawal", spread, DAY0 + 30 * h, amount=60000.0),  # 30h span
        ],
        now,
    )
    assert [(x.match.customer_id, x.match.events) for x in report.handled] == [
        (burst, ("A1", "A2", "A3"))
    ]


def _batch_outcome(store: Engine, items: list[tuple[str, Any]], now: dt.datetime, size: int) -> Any:
    clear_engine_tables(store)
    p = processor(store, shipped(), now)
    report = ingest(p, iter(items), lambda: now, batch=size)
    with store.connect() as conn:
        ledger = sorted(conn.execute(select(action_ledger.c.customer_id, action_ledger.c.window)))
        opened = sorted(conn.execute(select(tasks.c.customer_id, tasks.c.title)))
        recorded = sorted(
            conn.execute(select(event_matches.c.match_key, event_matches.c.outcome)).all()
        )
    results = sorted((h.match.key, h.result) for h in report.handled)
    return results, recorded, ledger, opened


def test_event_matches_acted_on_in_one_batch_equal_one_by_one(demo_store: Engine) -> None:
    """A batch of matches is acted on with one run per playbook (one audience query, one
    ledger transaction); each match keeps its own window and outcome, and a customer's second
    match sees the first one's cooldown, exactly as when the events come one at a time."""
    twice, once = valued_customers(demo_store, 2)
    with demo_store.connect() as conn:
        outside = conn.execute(
            text("SELECT id FROM customers WHERE tier = 'mass' ORDER BY id LIMIT 1")
        ).scalar_one()
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    at = now - dt.timedelta(hours=2)
    items = [
        ev("W-1", "withdrawal", twice, at, amount=700000.0),
        ev("W-2", "transfer_out", twice, at + dt.timedelta(minutes=5), amount=900000.0),
        ev("W-3", "withdrawal", once, at, amount=500000.0),
        ev("W-4", "withdrawal", "C9999999999", at, amount=800000.0),
        ev("W-5", "withdrawal", outside, at, amount=800000.0),
        ev("W-6", "withdrawal", once, at, amount=400000.0),  # below the threshold
    ]
    batched = _batch_outcome(demo_store, items, now, size=len(items))
    one_by_one = _batch_outcome(demo_store, items, now, size=1)
    assert batched == one_by_one
    results, recorded, ledger, opened = batched
    assert (
        results
        == recorded
        == [
            ("W-1", "acted"),
            ("W-2", "suppressed"),  # once_per_customer: 1d
            ("W-3", "acted"),
            ("W-4", "unknown_customer"),
            ("W-5", "not_in_audience"),
        ]
    )
    assert ledger == sorted([(twice, ledger_window("W-1")), (once, ledger_window("W-3"))])
    assert [c for c, _title in opened] == sorted([twice, once])


@pytest.fixture(scope="module")
def sqlite_demo(tmp_path_factory: Any) -> Iterator[Engine]:
    from engine.demo.generator import generate

    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'demo.db'}")
    generate(engine, customers=300, seed=3, as_of=dt.date(2026, 11, 23))
    yield engine
    engine.dispose()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_event_batches_of_any_size_act_as_one_by_one(sqlite_demo: Engine, data: Any) -> None:
    """Whatever the chunk size, the same events give the same matches, outcomes, ledger and
    tasks as one event per chunk: the batched run per playbook (rounds per customer,
    cooldowns, unknown and out-of-audience customers) is the one-at-a-time meaning."""
    store = sqlite_demo
    with store.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM customers ORDER BY id LIMIT 12"))]
    people = st.sampled_from([*ids, "C9999999999"])
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    raw = data.draw(
        st.lists(
            st.tuples(
                people,
                st.sampled_from(["withdrawal", "transfer_out", "redemption", "deposit"]),
                st.sampled_from([1000.0, 60000.0, 499999.0, 500000.0, 900000.0]),
                st.integers(min_value=1, max_value=3 * 24 * 60),  # minutes before now
            ),
            min_size=1,
            max_size=25,
        )
    )
    items = []
    for n, (cid, kind, amount, ago) in enumerate(raw):
        extra = {"product_type": "wealth"} if kind == "redemption" else {}
        at = now - dt.timedelta(minutes=ago)
        items.append(ev(f"P-{n}", kind, cid, at, amount=amount, **extra))
    size = data.draw(st.integers(min_value=2, max_value=30))
    assert _batch_outcome(store, items, now, size) == _batch_outcome(store, items, now, 1)


def test_event_for_unknown_customer_is_recorded_not_acted(demo_store: Engine) -> None:
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    p = processor(demo_store, shipped(), now)
    report = p.process(
        [ev("U-1", "withdrawal", "C9999999999", now - dt.timedelta(hours=1), amount=900000.0)],
        now,
    )
    assert [h.result for h in report.handled] == ["unknown_customer"]
    assert count(demo_store, events) == 1
    assert count(demo_store, event_matches, event_matches.c.outcome == "unknown_customer") == 1
    assert count(demo_store, action_ledger) == 0


def test_malformed_events_are_rejected_with_reason_and_counted(
    demo_store: Engine, tmp_path: Path
) -> None:
    cid = valued_customers(demo_store, 1)[0]
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    good = {
        "id": "OK-1",
        "type": "login",
        "customer_id": cid,
        "occurred_at": "2026-11-23T08:00:00+08:00",
        "channel": "mobile",
    }
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({**good, "id": "B-1", "type": "withdrawl"}),
        json.dumps({k: v for k, v in good.items() if k != "customer_id"} | {"id": "B-2"}),
        json.dumps({**good, "id": "B-3", "occurred_at": "yesterday"}),
        json.dumps({**good, "id": "B-4", "occurred_at": "2027-01-01T00:00:00+08:00"}),
        json.dumps({**good, "id": "B-5", "colour": "red"}),
        json.dumps({**good, "id": "B-6", "type": "deposit", "amount": "lots"}),
        json.dumps({**good, "id": "B-7", "type": "deposit"}),
        json.dumps({**good, "id": "x" * 65}),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([bad[0], json.dumps(good), *bad[1:], ""]), encoding="utf-8")
    report = ingest(processor(demo_store, shipped(), now), read_jsonl(path), lambda: now)
    reasons = [r.reason for _s, r in report.rejected]
    assert reasons == [
        "bad_json",
        "not_an_object",
        "unknown_type",
        "missing_field",
        "bad_time",
        "future",
        "unknown_field",
        "bad_value",
        "missing_field",
        "bad_id",
    ]
    assert report.accepted == 1
    assert report.rejected[0][0] == "mixed.jsonl:1"
    assert count(demo_store, event_rejections) == len(bad)
    assert count(demo_store, events) == 1


def test_event_playbook_reload_versions_rulesets_and_does_not_refire(
    demo_store: Engine, tmp_path: Path
) -> None:
    cid = valued_customers(demo_store, 1)[0]
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    text_v1 = """
id: big-deposit
title: 大额存入
category: service
trigger:
  event: deposit
  where: {amount: {gte: 100000}}
audience: everyone
actions:
  - task: {assignee: manager, kind: call, title: "大额存入 {{ customer.name }}", due_in: 1d}
"""
    v1 = playbook_from_text(tmp_path, text_v1, "v1.yaml")
    p = processor(demo_store, [v1], now)
    names_v1 = set(p.host._rulesets)
    p.process(
        [
            ev("DEP-1", "deposit", cid, now, amount=150000.0),  # acted on by v1
            ev("DEP-S", "deposit", cid, now, amount=60000.0),  # below v1's threshold
        ],
        now,
    )
    v2 = playbook_from_text(tmp_path, text_v1.replace("100000", "50000"), "v2.yaml")
    assert p.reload([v2], now) == ["big-deposit"]
    assert names_v1.isdisjoint(p.host._rulesets) and len(p.host) == 1
    with demo_store.connect() as conn:
        outcomes = dict(
            conn.execute(select(event_matches.c.match_key, event_matches.c.outcome)).all()
        )
    # v2 matches the stored 60,000 deposit, but that happened before v2 was loaded
    assert outcomes == {"DEP-1": "acted", "DEP-S": "before_load"}
    assert count(demo_store, action_ledger, action_ledger.c.playbook_id == "big-deposit") == 1
    assert p.reload([v2], now) == []  # unchanged: state kept, nothing replayed
    later = p.process([ev("DEP-2", "deposit", cid, now, amount=60000.0)], now)
    assert [h.match.key for h in later.handled] == ["DEP-2"]  # v2 is live


def _post(
    port: int, body: bytes, headers: dict[str, str], path: str = "/events"
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_event_http_endpoint_fires_and_refuses_with_reasons(demo_store: Engine) -> None:
    cid = valued_customers(demo_store, 1)[0]
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    token = "t" * 32
    server = EventServer(
        ("127.0.0.1", 0), processor(demo_store, shipped(), now), token, lambda: now, 2048
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    withdrawal = {
        "id": "H-1",
        "type": "withdrawal",
        "customer_id": cid,
        "occurred_at": "2026-11-23T08:45:00+08:00",
        "amount": 700000,
    }
    body = json.dumps(withdrawal).encode()
    try:
        assert _post(port, body, {"Content-Type": "application/json"})[0] == 401
        assert _post(port, body, {**auth, "Authorization": "Bearer wrong"})[0] == 401
        assert _post(port, b"x" * 4096, auth)[0] == 413
        status, answer = _post(port, b"{oops", auth)
        assert (status, answer["error"]) == (400, "bad_json")
        assert _post(port, body, {**auth, "Content-Type": "text/plain"})[0] == 415
        assert _post(port, body, auth, path="/other")[0] == 404
        status, answer = _post(port, json.dumps({"id": "H-0", "type": "nope"}).encode(), auth)
        assert status == 422 and answer["rejected"][0]["reason"] == "missing_field"
        status, answer = _post(port, body, auth)
        assert (status, answer["accepted"], answer["matches"]) == (200, 1, {"acted": 1})
        lines = f"{json.dumps(withdrawal)}\n{{bad\n".encode()
        status, answer = _post(port, lines, {**auth, "Content-Type": "application/x-ndjson"})
        assert (status, answer["duplicates"], len(answer["rejected"])) == (200, 1, 1)
    finally:
        server.shutdown()
        server.server_close()
    assert count(demo_store, tasks, tasks.c.playbook_id == "large-withdrawal-alert") == 1


def test_event_dry_run_command_previews_without_writing(demo_store: Engine, tmp_path: Path) -> None:
    cid = valued_customers(demo_store, 1)[0]
    path = tmp_path / "events.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "DR-1",
                "type": "withdrawal",
                "customer_id": cid,
                "occurred_at": "2026-11-23T08:45:00+08:00",
                "amount": 700000,
            }
        )
        + "\nnot json\n",
        encoding="utf-8",
    )
    url = demo_store.url.render_as_string(hide_password=False)
    run = subprocess.run(
        [
            sys.executable,
            "runner.py",
            "events",
            "dry-run",
            str(path),
            "--db",
            url,
            "--as-of",
            "2026-11-23T09:00",
            "--format",
            "json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    [entry] = report["playbooks"]
    assert (entry["id"], entry["window"], entry["matched"]) == (
        "large-withdrawal-alert",
        "event:DR-1",
        [cid],
    )
    assert entry["actions"][0]["type"] == "task" and "*" in entry["actions"][0]["title"]
    assert report["events"]["rejected_by_reason"] == {"bad_json": 1}
    assert count(demo_store, events) == 0 and count(demo_store, action_ledger) == 0
    if demo_store.dialect.name != "sqlite":
        return  # the rest does not depend on the backend: once is enough
    text_run = subprocess.run(
        [
            sys.executable,
            "runner.py",
            "events",
            "dry-run",
            str(path),
            "--db",
            url,
            "--as-of",
            "2026-11-23T09:00",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "event [withdrawal, transfer_out]  window event:DR-1" in text_run.stdout
    no_token = subprocess.run(
        [sys.executable, "runner.py", "events", "serve", "--db", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "CARE_EVENTS_TOKEN"},
    )
    assert no_token.returncode == 2 and "CARE_EVENTS_TOKEN" in no_token.stderr


def test_event_throughput_measure_reports_both_rates(demo_store: Engine) -> None:
    from engine.bench.events_measure import measure, synthetic_events

    now = dt.datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
    sample = synthetic_events(valued_customers(demo_store, 50), 400, now - dt.timedelta(days=1))
    p = EventProcessor(demo_store, SETTINGS, dictionary(), validator().renderer)
    result = measure(p, shipped(), sample, now)
    assert result.events == 400 and result.raw_rate > 0 and result.engine_rate > 0
    assert count(demo_store, events) == 400
