"""The contact policy on a real demo store: holdout, frequency caps with priority, quiet hours,
open-task dedup, routing by role, persisted suppressions, and the funnel adding up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from support import (
    AS_OF,
    SETTINGS,
    TZ,
    clear_engine_tables,
    dictionary,
    playbook_from_text,
    validator,
)

from engine.core.clock import Clock
from engine.core.configfile import ConfigError
from engine.core.deadlines import Deadline
from engine.core.workcalendar import LIBRARY
from engine.delivery.tasklist import complete
from engine.execution.executor import Executor, Outcome, by_priority
from engine.execution.sinks import RecordingSink, Sink, StoreSink
from engine.playbook.model import Playbook
from engine.policy import AllowedHours, Policy, default_policy, held_out, load_policy
from engine.rendering.renderer import Renderer
from engine.reports.history import run_holds_of
from engine.store.models import (
    action_ledger,
    consents,
    engine_tags,
    managers,
    outbox,
    runs,
    suppressions,
    tasks,
)

DICTIONARY = dictionary()
VALIDATOR = validator()
RENDERER = Renderer(SETTINGS.templates_dir, DICTIONARY)


def executor(store: Engine, policy: Policy | None = None) -> Executor:
    return Executor(store, SETTINGS, DICTIONARY, RENDERER, policy or default_policy())


def playbook(tmp_path: Path, pid: str, body: str, **top: Any) -> Playbook:
    head = "\n".join(f"{k}: {v}" for k, v in top.items())
    text = f"""id: {pid}
title: 测试 {pid}
trigger: {{schedule: "0 9 * * *"}}
audience:
  tier: [vip, private]
{head}
actions:
{body}
"""
    return playbook_from_text(tmp_path, text, name=f"{pid}.yaml")


SMS = "  - sms: {template: vip_inactive_60d.sms.j2}\n"
CALL = '  - task: {title: "回访 {{ customer.name }}", kind: call}\n'


def count(store: Engine, table: Any, *where: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def run(ex: Executor, p: Playbook, at: dt.datetime, sink: Sink | None = None) -> Outcome:
    return ex.execute(p, Clock.at(at, TZ), sink or StoreSink(ex.store), keep_details=True)


# --- the file --------------------------------------------------------------------------------


def test_shipped_policy_file_is_the_builtin_default() -> None:
    shipped = load_policy(SETTINGS.policy_path)
    default = default_policy()
    assert dataclasses.replace(shipped, source=None) == default


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("version: 1\nquiet_hours:\n  sms: {marketing: '21:00-08:00'}\n", 3, "ends before"),
        ("version: 1\nquiet_hours:\n  sms: {marketing: 'daytime'}\n", 3, "not a time window"),
        ("version: 1\nfrequency_caps:\n  sms: {max: 2, per: 1m}\n", 3, "per"),
        ("version: 1\nfrequncy_caps: {}\n", 2, "frequncy_caps"),  # at the key itself
        ("version: 1\ntasks:\n  escalation_ladder: [manager, boss]\n", 3, "boss"),
    ],
)
def test_policy_mistakes_are_one_error_with_file_line_col(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert caught.value.code == "E0401"
    assert caught.value.where is not None and caught.value.where.startswith(f"{path}:{line}:")
    assert words in caught.value.render()


def test_allowed_hours_arithmetic() -> None:
    day = AllowedHours(dt.time(8), dt.time(21))
    assert day.allows(dt.datetime(2026, 11, 23, 8, 0))
    assert not day.allows(dt.datetime(2026, 11, 23, 21, 0))
    assert day.next_open(dt.datetime(2026, 11, 23, 6, 0)) == dt.datetime(2026, 11, 23, 8, 0)
    assert day.next_open(dt.datetime(2026, 11, 23, 22, 0)) == dt.datetime(2026, 11, 24, 8, 0)
    assert day.closes(dt.datetime(2026, 11, 23, 10, 0)) == dt.datetime(2026, 11, 23, 21, 0)


def test_holdout_is_stable_independent_and_near_its_percentage() -> None:
    ids = [f"C{i:07d}" for i in range(20_000)]
    group = {c for c in ids if held_out("p1", c, 10)}
    assert 0.09 < len(group) / len(ids) < 0.11
    assert group == {c for c in ids if held_out("p1", c, 10)}  # stable
    other = {c for c in ids if held_out("p2", c, 10)}
    assert 0.005 < len(group & other) / len(ids) < 0.015  # independent draws (~1%)
    assert not any(held_out("p1", c, 0) for c in ids[:100])


# --- on the demo store ---------------------------------------------------------------------


def test_funnel_adds_up_with_holdout_and_every_action(demo_store: Engine, tmp_path: Path) -> None:
    body = (
        SMS + CALL + '  - email: {subject: "{{ customer | polite_name }},邀请您评价服务",'
        " template: care_survey.email.j2}\n"
        + "  - tag: {add: 已邀请评价}\n"
        + "  - webhook: {endpoint: crm-followup, fields: [tier, aum]}\n"
    )
    p = playbook(tmp_path, "funnel", body, holdout_percent=20)
    outcome = run(executor(demo_store), p, AS_OF, RecordingSink())
    d = outcome
    assert d.matched_count == d.acted + d.customers_suppressed + d.held_out
    assert 0.1 < d.held_out / d.matched_count < 0.3
    whole = sum(1 for x in d.decisions if any(k is None for k, _ in x.suppressed))
    for kind in ("sms", "task", "email", "tag", "webhook"):
        per_action = sum(1 for x in d.decisions for k, _ in x.suppressed if k == kind)
        assert d.effects[kind] + per_action + whole == d.matched_count - d.held_out, kind


def test_held_out_customers_are_recorded_and_get_nothing(
    demo_store: Engine, tmp_path: Path
) -> None:
    p = playbook(tmp_path, "holdout", SMS + CALL, holdout_percent=30)
    ex = executor(demo_store)
    first = run(ex, p, AS_OF)
    held = {d.customer_id for d in first.decisions if d.held_out}
    assert held and first.held_out == len(held)
    with demo_store.connect() as conn:
        ledger = {
            r.customer_id: r.held_out
            for r in conn.execute(select(action_ledger.c.customer_id, action_ledger.c.held_out))
        }
        recipients = {r[0] for r in conn.execute(select(outbox.c.customer_id))}
        suppressed = conn.execute(select(runs.c.suppressed)).scalar_one()
    assert {c for c, h in ledger.items() if h} == held
    assert not held & recipients
    assert count(demo_store, tasks, tasks.c.customer_id.in_(held)) == 0
    assert suppressed["held_out"] == len(held)
    again = run(ex, p, AS_OF)  # the same window: nobody twice, held out or not
    assert again.acted == again.held_out == 0
    # customers held back by consent on every action were not acted on: decided again
    assert again.suppressed["already_done"] == first.acted + first.held_out


def test_the_holdout_is_drawn_only_among_customers_who_would_be_acted_on(
    demo_store: Engine, tmp_path: Path
) -> None:
    """Consent and every other gate first, the holdout bucket last: the held out are a random
    share of the would-be treated, so both arms have the same consent mix."""
    percent = 30
    measured = playbook(tmp_path, "measured", SMS + CALL, holdout_percent=percent)
    plain = playbook(tmp_path, "measured", SMS + CALL)  # the same id: the same buckets
    ex = executor(demo_store)
    would = run(ex, plain, AS_OF, RecordingSink())
    outcome = run(ex, measured, AS_OF)
    assert outcome.matched == would.matched
    acted_without = {d.customer_id for d in would.decisions if d.effects}
    held = {d.customer_id for d in outcome.decisions if d.held_out}
    treated = {d.customer_id for d in outcome.decisions if d.effects}
    # customers with nothing left (no consent for either action…) whose bucket is in the
    # holdout: the old order held them out; now they are held back, in neither arm
    left_alone = {d.customer_id for d in would.decisions if not d.effects}
    assert {c for c in left_alone if held_out("measured", c, percent)}, "the test needs them"
    assert not held & left_alone and not treated & left_alone
    assert held == {c for c in acted_without if held_out("measured", c, percent)}
    assert treated == acted_without - held
    assert outcome.matched_count == outcome.acted + outcome.held_out + outcome.customers_suppressed
    # the consent mix of the two arms: no held-out customer lacks what the treated have
    with demo_store.connect() as conn:
        sms = {
            r[0]
            for r in conn.execute(
                select(consents.c.customer_id).where(
                    consents.c.channel == "sms",
                    consents.c.purpose == "marketing",
                    consents.c.given_at.is_not(None),
                    consents.c.withdrawn_at.is_(None),
                )
            )
        }
    no_sms = {d.customer_id for d in would.decisions if ("sms", "no_consent_sms") in d.suppressed}
    assert no_sms & {c for c in would.matched if held_out("measured", c, percent)}
    assert not held & no_sms - acted_without  # without consent and nothing else: not held out
    share = {arm: len(ids & sms) / len(ids) for arm, ids in (("held", held), ("treated", treated))}
    assert abs(share["held"] - share["treated"]) < 0.15, share


def test_held_out_customers_use_up_no_cap_and_displace_nothing(
    demo_store: Engine, tmp_path: Path
) -> None:
    low = playbook(tmp_path, "low", SMS, priority=20)
    high = playbook(tmp_path, "high", SMS, priority=90, holdout_percent=40)
    ex = executor(demo_store)
    queued = {d.customer_id for d in run(ex, low, AS_OF).decisions if d.effects}
    outcome = run(ex, high, AS_OF)
    held = {d.customer_id for d in outcome.decisions if d.held_out}
    treated = {d.customer_id for d in outcome.decisions if d.effects}
    assert held and treated and held <= queued
    with demo_store.connect() as conn:
        status = {
            (r.playbook_id, r.customer_id): r.status
            for r in conn.execute(
                select(outbox.c.playbook_id, outbox.c.customer_id, outbox.c.status)
            )
        }
    # the treated displaced the low playbook's waiting SMS; the held out left it waiting
    assert {status[("low", c)] for c in held} == {"pending"}
    assert {status[("low", c)] for c in treated & queued} == {"cancelled"}
    assert not any(("high", c) in status for c in held)
    # and in a preview, a held-out customer leaves room under the cap for a later playbook
    clear_engine_tables(demo_store)
    shared: Counter[tuple[str, str]] = Counter()
    preview = {
        p.id: run(ex, p, AS_OF, RecordingSink(contacts=shared)) for p in by_priority([low, high])
    }
    got_low = {d.customer_id for d in preview["low"].decisions if d.effects}
    assert got_low == {d.customer_id for d in preview["high"].decisions if d.held_out}


def test_frequency_cap_lets_the_higher_priority_playbook_win(
    demo_store: Engine, tmp_path: Path
) -> None:
    low = playbook(tmp_path, "low", SMS, priority=20)
    high = playbook(tmp_path, "high", SMS, priority=90)
    service = playbook(tmp_path, "service", SMS, priority=10, category="service")
    ex = executor(demo_store)
    outcomes = {p.id: run(ex, p, AS_OF) for p in by_priority([low, service, high])}
    sent_high = {d.customer_id for d in outcomes["high"].decisions if d.effects}
    assert sent_high and outcomes["low"].effects["sms"] == 0
    assert outcomes["low"].suppressed["frequency_cap_sms"] == len(sent_high)
    assert outcomes["service"].effects["sms"] > 0  # service messages are exempt
    assert "frequency_cap_sms" not in outcomes["service"].suppressed
    # the cap is per period: a week later (the 1-day cap has passed) the low one may send
    later = run(ex, low, AS_OF + dt.timedelta(days=7))
    assert later.effects["sms"] > 0
    # dry-run sees the same: one tally shared by the preview's sinks
    clear_engine_tables(demo_store)
    shared: Counter[tuple[str, str]] = Counter()
    preview = {
        p.id: run(ex, p, AS_OF, RecordingSink(contacts=shared)) for p in by_priority([low, high])
    }
    assert preview["low"].effects["sms"] == 0 and preview["high"].effects["sms"] == len(sent_high)


def test_quiet_hours_at_run_time_wait_or_expire(demo_store: Engine, tmp_path: Path) -> None:
    evening = dt.datetime(2026, 11, 23, 22, 30, tzinfo=TZ)
    waiting = playbook(tmp_path, "waits", SMS)
    expiring = playbook(tmp_path, "expires", SMS, limits="{quiet_hours: expire}")
    ex = executor(demo_store, Policy(quiet_hours=default_policy().quiet_hours))
    w = run(ex, waiting, evening)
    e = run(ex, expiring, evening)
    assert w.effects["sms"] > 0 and e.effects["sms"] == 0
    assert e.suppressed["quiet_hours_sms"] == w.effects["sms"]
    with demo_store.connect() as conn:
        not_before = {r[0] for r in conn.execute(select(outbox.c.not_before))}
    assert not_before == {dt.datetime(2026, 11, 24, 0, 0)}  # 08:00 tomorrow, in UTC
    morning = run(ex, expiring, AS_OF + dt.timedelta(days=1))
    with demo_store.connect() as conn:
        expires = {
            r[0]
            for r in conn.execute(
                select(outbox.c.expires_at).where(outbox.c.playbook_id == "expires")
            )
        }
    assert morning.effects["sms"] > 0 and expires == {dt.datetime(2026, 11, 24, 13, 0)}


def test_no_second_open_task_for_the_same_reason(demo_store: Engine, tmp_path: Path) -> None:
    p = playbook(tmp_path, "calls", CALL)
    ex = executor(demo_store)
    first = run(ex, p, AS_OF)
    created = count(demo_store, tasks)
    assert created == first.effects["task"] > 0
    second = run(ex, p, AS_OF + dt.timedelta(days=1))  # a new window, no cooldown
    assert second.effects["task"] == 0 and second.suppressed["open_task"] == created
    assert count(demo_store, tasks) == created
    with demo_store.connect() as conn:
        one = conn.execute(select(tasks.c.id, tasks.c.customer_id).limit(1)).one()
    complete(demo_store, one.id, "reached", None, AS_OF + dt.timedelta(days=1))
    third = run(ex, p, AS_OF + dt.timedelta(days=2))
    assert {d.customer_id for d in third.decisions if d.effects} == {one.customer_id}


def test_tasks_route_by_role_and_to_team_queues(demo_store: Engine, tmp_path: Path) -> None:
    body = (
        '  - task: {assignee: senior_manager, kind: visit, title: "季度拜访",'
        " reason: quarterly-visit, checklist: [带上资产报告, 了解需求]}\n"
        '  - task: {queue: 财富顾问团队, kind: follow_up, title: "资产配置建议"}\n'
    )
    # a service playbook: a marketing visit would need phone consent (tested below)
    p = playbook(tmp_path, "routing", body, category="service")
    run(executor(demo_store), p, AS_OF)
    with demo_store.connect() as conn:
        senior = {
            r.id: r.branch_id
            for r in conn.execute(
                select(managers.c.id, managers.c.branch_id).where(
                    managers.c.role == "senior_manager"
                )
            )
        }
        rows = conn.execute(select(tasks)).mappings().all()
    visits = [r for r in rows if r["kind"] == "visit"]
    queued = [r for r in rows if r["kind"] == "follow_up"]
    assert visits and len(visits) == len(queued)
    assert all(
        r["assignee_id"] in senior and r["assignee_role"] == "senior_manager" for r in visits
    )
    assert all(r["checklist"] == ["带上资产报告", "了解需求"] for r in visits)
    assert all(r["reason"] == "quarterly-visit" for r in visits)
    assert all(r["assignee_id"] is None and r["queue"] == "财富顾问团队" for r in queued)


def test_tag_action_writes_engine_tags_only(demo_store: Engine, tmp_path: Path) -> None:
    add = playbook(tmp_path, "tagger", "  - tag: {add: 已关怀}\n")
    outcome = run(executor(demo_store), add, AS_OF)
    assert count(demo_store, engine_tags, engine_tags.c.tag == "已关怀") == outcome.acted > 0
    remove = playbook(tmp_path, "untagger", "  - tag: {remove: 已关怀}\n")
    run(executor(demo_store), remove, AS_OF)
    assert count(demo_store, engine_tags) == 0


def test_suppressions_of_real_runs_are_persisted(demo_store: Engine, tmp_path: Path) -> None:
    p = playbook(tmp_path, "persist", SMS + CALL, limits="{max_per_run: 5}")
    outcome = run(executor(demo_store), p, AS_OF)
    assert outcome.run_id is not None
    found = run_holds_of(demo_store, outcome.run_id)
    assert found is not None
    stored = Counter({reason: len(ids) for reason, ids in found.listed.items()})
    assert stored == outcome.suppressed and stored["max_per_run"] > 0
    with demo_store.connect() as conn:  # the run's own limit is listed compactly, not per row
        rows = conn.execute(
            select(suppressions.c.reason).where(suppressions.c.run_id == outcome.run_id)
        ).scalars()
        assert "max_per_run" not in set(rows)


def test_two_runs_racing_write_each_customer_once(demo_store: Engine, tmp_path: Path) -> None:
    p = playbook(tmp_path, "race", SMS + CALL)
    results: list[Outcome] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(run(executor(demo_store), p, AS_OF))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ledger = count(demo_store, action_ledger)
    acted = Counter(d.customer_id for o in results for d in o.decisions if d.effects)
    assert ledger == sum(o.acted for o in results) == len(acted) > 0
    with demo_store.connect() as conn:
        dupes = conn.execute(
            select(outbox.c.customer_id).group_by(outbox.c.customer_id).having(func.count() > 1)
        ).all()
    assert dupes == []
    assert count(demo_store, outbox) == sum(o.effects["sms"] for o in results)


def test_overdue_tasks_climb_the_ladder_once_per_level(demo_store: Engine, tmp_path: Path) -> None:
    from engine.delivery.tasklist import escalate_overdue
    from engine.policy import TaskPolicy

    p = playbook(
        tmp_path, "ladder", '  - task: {title: "回访", due_in: 1d}\n', limits="{max_per_run: 3}"
    )
    run(executor(demo_store), p, AS_OF)
    ladder = TaskPolicy(  # calendar time, as an SLA that runs through nights may be written
        escalate_after=Deadline(span=dt.timedelta(hours=12)),
        escalation_due_in=Deadline(span=dt.timedelta(days=1)),
    )

    def escalate(now: dt.datetime) -> int:
        return escalate_overdue(demo_store, ladder, now, tz=TZ, calendar=LIBRARY)

    assert escalate(AS_OF + dt.timedelta(days=1)) == 0  # due, not late
    day2 = AS_OF + dt.timedelta(days=1, hours=13)
    assert escalate(day2) == 3
    assert escalate(day2) == 0  # once per level, however often it runs
    with demo_store.connect() as conn:
        roles = dict(conn.execute(select(managers.c.id, managers.c.role)).all())
        level1 = conn.execute(select(tasks).where(tasks.c.escalation_level == 1)).mappings().all()
    assert {roles[r["assignee_id"]] for r in level1} == {"senior_manager"}
    assert all(r["kind"] == "escalation" and r["priority"] == "urgent" for r in level1)
    # a day and a half later the escalations are late too: the branch leader hears of them
    assert escalate(day2 + dt.timedelta(days=1, hours=13)) == 3
    with demo_store.connect() as conn:
        top = conn.execute(select(tasks.c.assignee_id).where(tasks.c.escalation_level == 2))
        assert {roles[r[0]] for r in top} == {"branch_leader"}
        original = conn.execute(
            select(tasks.c.id).where(tasks.c.escalation_level == 0).limit(1)
        ).scalar_one()
    # done at the bottom resolves the escalations above it
    assert complete(demo_store, original, "reached", "客户已接通", day2) == 2
    assert count(demo_store, tasks, tasks.c.status == "open") == 9 - 3  # 3 tasks × 3 levels


def phone_consenting(store: Engine, purpose: str) -> set[str]:
    """Customers whose phone consent for ``purpose`` holds at AS_OF, read row by row."""
    now = AS_OF.replace(tzinfo=None)
    with store.connect() as conn:
        rows = conn.execute(
            select(consents).where(consents.c.channel == "phone", consents.c.purpose == purpose)
        ).all()
    return {
        r.customer_id
        for r in rows
        if r.given_at is not None
        and r.given_at <= now
        and (r.withdrawn_at is None or r.withdrawn_at < r.given_at)
    }


def test_marketing_calls_and_visits_need_phone_consent(demo_store: Engine, tmp_path: Path) -> None:
    body = (
        '  - task: {queue: 电话团队, kind: call, title: "回访", reason: r-call}\n'
        '  - task: {queue: 拜访团队, kind: visit, title: "拜访", reason: r-visit}\n'
        '  - task: {queue: 后台团队, kind: follow_up, title: "跟进", reason: r-follow}\n'
    )
    marketing = playbook(tmp_path, "phone-marketing", body)
    service = playbook(tmp_path, "phone-service", body, category="service")
    ex = executor(demo_store)
    preview = run(ex, marketing, AS_OF, RecordingSink())
    outcome = run(ex, marketing, AS_OF)
    matched = set(outcome.matched)
    allowed = phone_consenting(demo_store, "marketing") & matched
    refused = matched - allowed
    assert allowed and refused  # the demo store has both
    with demo_store.connect() as conn:
        made = conn.execute(select(tasks.c.kind, tasks.c.customer_id)).all()
        stored = conn.execute(
            select(suppressions.c.customer_id, suppressions.c.action, suppressions.c.reason)
        ).all()
    by_kind: dict[str, set[str]] = {}
    for kind, cid in made:
        by_kind.setdefault(kind, set()).add(cid)
    assert by_kind == {"call": allowed, "visit": allowed, "follow_up": matched}
    assert Counter(stored) == Counter({(cid, "task", "no_consent_phone"): 2 for cid in refused})
    assert outcome.suppressed == Counter({"no_consent_phone": 2 * len(refused)})
    # the dry-run decided the same, customer by customer
    assert [(d.customer_id, d.suppressed) for d in preview.decisions] == [
        (d.customer_id, d.suppressed) for d in outcome.decisions
    ]
    # a service playbook's tasks are the customer's own matter: not held back by consent
    withdrawn_service = matched - phone_consenting(demo_store, "service")
    assert withdrawn_service  # some have no phone consent for service either
    clear_engine_tables(demo_store)  # else the open tasks of the same reasons hold them back
    served = run(ex, service, AS_OF)
    assert served.suppressed == Counter() and served.effects["task"] == 3 * len(matched)


# --- business time ----------------------------------------------------------------------------

FRIDAY_BEFORE_SPRING = dt.datetime(2026, 2, 13, 9, tzinfo=TZ)  # 14 Feb: make-up Saturday


@pytest.mark.parametrize(
    ("due_in", "due_local"),
    [
        # the make-up Saturday counts, 春节 (15–23 Feb) does not; due when work ends
        ("1 workday", "2026-02-14T17:30+08:00"),
        ("2 workdays", "2026-02-24T17:30+08:00"),
        ("3个工作日", "2026-02-25T17:30+08:00"),
        # calendar time runs through the holiday, as a complaint SLA may
        ("48h", "2026-02-15T09:00+08:00"),
        ("3d", "2026-02-16T09:00+08:00"),
    ],
)
def test_task_deadlines_in_workdays_or_calendar_time(
    shared_demo_store: Engine, tmp_path: Path, due_in: str, due_local: str
) -> None:
    p = playbook(tmp_path, "due", f'  - task: {{title: "回访", due_in: "{due_in}"}}\n')
    outcome = run(executor(shared_demo_store), p, FRIDAY_BEFORE_SPRING, RecordingSink())
    rows = [e.row for d in outcome.decisions for e in d.effects]
    assert rows and {r["due_local"] for r in rows} == {due_local}


@pytest.mark.parametrize("text", ["3 wrkdays", "0 workdays", "3 workday later", "三天"])
def test_a_deadline_that_is_neither_is_located(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        'id: bad\ntitle: t\ntrigger: {schedule: "0 9 * * *"}\naudience: {tier: vip}\n'
        f'actions:\n  - task: {{title: x, due_in: "{text}"}}\n',
        encoding="utf-8",
    )
    found = [(d.code, d.line) for d in VALIDATOR.validate_paths([path]).diagnostics]
    assert found == [("PB0110", 6)]


def test_escalation_waits_for_the_end_of_the_next_workday() -> None:
    """A task due on the Friday before 春节 escalates when the make-up Saturday's work ends,
    not that morning; one due on the holiday's first Sunday waits for the first workday after
    the holiday (24 Feb), not a night in the middle of it. Calendar time escalates on time."""
    from engine.delivery.tasklist import escalation_cutoff
    from engine.policy import TaskPolicy

    business = TaskPolicy()  # 1 workday, 09:00-17:30

    def overdue(due: dt.datetime, now: dt.datetime, policy: TaskPolicy = business) -> bool:
        cutoff = escalation_cutoff(policy, utc(now), TZ, LIBRARY)
        return utc(due) <= cutoff

    def utc(local: dt.datetime) -> dt.datetime:
        return local.replace(tzinfo=TZ).astimezone(dt.UTC).replace(tzinfo=None)

    friday = dt.datetime(2026, 2, 13, 17, 30)
    assert not overdue(friday, dt.datetime(2026, 2, 14, 10))
    assert overdue(friday, dt.datetime(2026, 2, 14, 17, 30))
    sunday = dt.datetime(2026, 2, 15, 12)
    assert not overdue(sunday, dt.datetime(2026, 2, 21, 23))  # a Saturday night in 春节
    assert not overdue(sunday, dt.datetime(2026, 2, 24, 17))
    assert overdue(sunday, dt.datetime(2026, 2, 24, 17, 30))
    two = TaskPolicy(escalate_after=Deadline(workdays=2))
    # two workdays after Friday: the make-up Saturday, then Tuesday 24 Feb
    assert not overdue(friday, dt.datetime(2026, 2, 24, 17), two)
    assert overdue(friday, dt.datetime(2026, 2, 24, 17, 30), two)
    sla = TaskPolicy(escalate_after=Deadline(span=dt.timedelta(hours=24)))
    assert overdue(sunday, dt.datetime(2026, 2, 16, 12), sla)
