"""企业微信 (WeCom) messages as manager tasks, on SQLite and PostgreSQL: the task carries the
rendered text, the per-customer limits of the contact policy hold back a second message within
a day (a counted suppression, in dry-run as in a run), and closing the task records whether it
was sent, which decides whether it keeps counting."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, select
from support import AS_OF, REPO, TZ, dictionary

from engine.core.clock import Clock
from engine.core.settings import Settings
from engine.delivery.tasklist import complete
from engine.execution.executor import Executor, Outcome
from engine.execution.sinks import RecordingSink, Sink, StoreSink
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator
from engine.policy import default_policy
from engine.policy.rules import Cap
from engine.reports.dryrun import outcome_json, report_text
from engine.store.models import suppressions, tasks

TEMPLATE = "{{ customer.name }}您好,我是您的客户经理。本周网点有理财讲座,欢迎报名。\n"


def deployment(tmp_path: Path) -> Settings:
    """The shipped dictionary, policy and segments, with a WeCom template of the test's own."""
    root = tmp_path / "bank"
    root.mkdir()
    for name in ("schemas", "config", "segments"):
        (root / name).symlink_to(REPO / name)
    (root / "templates").mkdir()
    (root / "templates" / "lecture.wecom.j2").write_text(TEMPLATE, encoding="utf-8")
    return Settings(root=root)


def playbook(settings: Settings, pid: str, tmp_path: Path) -> Playbook:
    path = tmp_path / f"{pid}.yaml"
    path.write_text(
        f"""id: {pid}
title: 企业微信 {pid}
trigger: {{schedule: "0 9 * * *"}}
audience:
  tier: [vip, private]
actions:
  - wecom: {{template: lecture.wecom.j2, title: "企业微信邀约 {{{{ customer.name }}}}"}}
""",
        encoding="utf-8",
    )
    catalog = Validator(settings, dictionary()).validate_paths([path])
    assert not catalog.errors, [f"{d.code} {d.message}" for d in catalog.errors]
    return catalog.playbooks[0]


def executor(store: Engine, settings: Settings) -> Executor:
    checker = Validator(settings, dictionary())
    return Executor(store, settings, checker.dictionary, checker.renderer, default_policy())


def run(ex: Executor, p: Playbook, at: dt.datetime, sink: Sink) -> Outcome:
    return ex.execute(p, Clock.at(at, TZ), sink, keep_details=True)


def test_a_wecom_action_is_a_manager_task_with_the_rendered_text(
    demo_store: Engine, tmp_path: Path
) -> None:
    settings = deployment(tmp_path)
    ex = executor(demo_store, settings)
    outcome = run(ex, playbook(settings, "wecom-a", tmp_path), AS_OF, StoreSink(demo_store))
    assert outcome.acted > 0
    with demo_store.connect() as conn:
        rows = conn.execute(select(tasks).where(tasks.c.playbook_id == "wecom-a")).mappings().all()
        names = dict(conn.exec_driver_sql("SELECT id, name FROM customers").all())
        owners = dict(conn.exec_driver_sql("SELECT id, manager_id FROM customers").all())
    assert len(rows) == outcome.acted
    for row in rows:
        assert row["kind"] == "wecom" and row["status"] == "open"
        assert row["assignee_role"] == "manager"
        assert row["assignee_id"] == owners[row["customer_id"]]
        assert row["body"] == TEMPLATE.strip().replace(
            "{{ customer.name }}", names[row["customer_id"]]
        )


def test_the_per_customer_limit_holds_back_the_second_message_within_a_day(
    demo_store: Engine, tmp_path: Path
) -> None:
    settings = deployment(tmp_path)
    ex = executor(demo_store, settings)
    first, second = playbook(settings, "wecom-a", tmp_path), playbook(settings, "wecom-b", tmp_path)

    # dry-run: the second playbook sees what the first would send (one shared tally)
    planned: Counter[tuple[str, str]] = Counter()
    one = run(ex, first, AS_OF, RecordingSink(contacts=planned))
    two = run(ex, second, AS_OF, RecordingSink(contacts=planned))
    assert one.acted > 0 and two.acted == 0
    assert two.held_back_by["wecom_limit"] == one.acted
    shown = outcome_json(two)
    assert {s["reason"] for s in shown["suppressed"]} == {"wecom_limit"}
    assert "WeCom per-customer limit" in report_text(AS_OF, [two], [])

    # a run: the first playbook's tasks are in the store, and the second is held back
    run(ex, first, AS_OF, StoreSink(demo_store))
    held = run(ex, second, AS_OF + dt.timedelta(hours=2), StoreSink(demo_store))
    assert held.acted == 0 and held.held_back_by["wecom_limit"] == one.acted
    with demo_store.connect() as conn:
        kept = conn.execute(
            select(suppressions.c.reason).where(suppressions.c.playbook_id == "wecom-b")
        ).scalars()
        assert set(kept) == {"wecom_limit"}
    # a day later the daily limit has room again; the 30-day one (4) does too
    later = run(ex, second, AS_OF + dt.timedelta(days=1, hours=1), RecordingSink())
    assert later.acted == one.acted


def test_closing_a_wecom_task_records_the_outcome_and_not_sent_frees_the_place(
    demo_store: Engine, tmp_path: Path
) -> None:
    settings = deployment(tmp_path)
    # one WeCom message per customer per 30 days, so a closed task's outcome decides alone
    policy = dataclasses.replace(
        default_policy(), wecom_limits=(Cap("wecom", 1, dt.timedelta(days=30)),)
    )
    checker = Validator(settings, dictionary())
    ex = Executor(demo_store, settings, checker.dictionary, checker.renderer, policy)
    first, second = playbook(settings, "wecom-a", tmp_path), playbook(settings, "wecom-b", tmp_path)
    run(ex, first, AS_OF, StoreSink(demo_store))
    with demo_store.connect() as conn:
        made = conn.execute(
            select(tasks.c.id, tasks.c.customer_id).where(tasks.c.playbook_id == "wecom-a")
        ).all()
    sent, not_sent = made[0], made[1]
    now = AS_OF + dt.timedelta(hours=3)
    complete(demo_store, sent.id, "sent", None, now)
    complete(demo_store, not_sent.id, "not-sent", "客户已退出企业微信", now)
    with demo_store.connect() as conn:
        closed = dict(
            conn.execute(
                select(tasks.c.id, tasks.c.outcome).where(tasks.c.id.in_([sent.id, not_sent.id]))
            ).all()
        )
    assert closed == {sent.id: "sent", not_sent.id: "not_sent"}
    later = run(ex, second, AS_OF + dt.timedelta(days=2), RecordingSink())
    acted = {d.customer_id for d in later.decisions if d.effects}
    held = {d.customer_id for d in later.decisions if ("wecom", "wecom_limit") in d.suppressed}
    assert not_sent.customer_id in acted  # not sent: the customer never received it
    assert sent.customer_id in held
