"""The service and retention part of the standard pack, over the demo store.

Every scheduled playbook of this part must act on someone in the demo store on one of
``PACK_B_DATES`` (the demo store is anchored on 2026-11-23, a Monday, when the weekly ones run
too), and what it does must follow the practice: marketing SMS carry the opt-out and service
ones do not, every SMS fits its billed-parts budget, tasks go to the role the practice names.
The referral thank-you is an event playbook: a referral event for a demo customer fires it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import Engine, text
from support import AS_OF_DATE, SETTINGS, TZ, dictionary, validator

from engine.actions.compliance import load_texts
from engine.actions.sms import SmsAction
from engine.core.clock import Clock
from engine.events.processor import EventProcessor
from engine.execution.executor import Executor, by_priority, slot_on
from engine.execution.sinks import RecordingSink
from engine.playbook.model import Playbook
from engine.triggers.schedule import Schedule

# the signature and opt-out texts the shipped contact policy configures
TEXTS = load_texts(SETTINGS.policy_path)

PACK_B_DATES = [AS_OF_DATE]  # 2026-11-23, the demo store's own day
# playbook id -> the role its tasks go to (None: it sends messages only)
PACK_B_SCHEDULED: dict[str, str | None] = {
    "lifecycle-churn-warning": None,
    "dormant-winback-call": "manager",
    "dormant-account-notice": None,
    "wealth-maturity-call": "manager",
    "complaint-overdue-escalation": "senior_manager",
    "complaint-overdue-critical": "branch_leader",
    "service-survey-sms": None,
    "tier-upgrade-opportunity": "manager",
}
PACK_B_EVENTS = {"referral-thank-you"}


def pack() -> dict[str, Playbook]:
    catalog = validator().validate_paths([SETTINGS.playbooks_dir])
    assert not catalog.errors, [f"{d.code} {d.message}" for d in catalog.errors]
    wanted = set(PACK_B_SCHEDULED) | PACK_B_EVENTS
    found = {p.id: p for p in catalog.playbooks if p.id in wanted}
    assert set(found) == wanted, sorted(wanted - set(found))
    return found


def test_every_scheduled_playbook_fires_on_a_pack_date_as_its_practice_says(
    shared_demo_store: Engine,
) -> None:
    playbooks = [p for p in pack().values() if isinstance(p.trigger, Schedule)]
    assert {p.id for p in playbooks} == set(PACK_B_SCHEDULED)
    executor = Executor(shared_demo_store, SETTINGS, dictionary(), validator().renderer)
    fired: dict[str, list[dt.date]] = defaultdict(list)
    for day in PACK_B_DATES:
        previewed: Counter[tuple[str, str]] = Counter()  # frequency caps across the pack
        for playbook in by_priority(playbooks):
            at = slot_on(playbook, day, TZ)
            if at is None:
                continue
            sink = RecordingSink(mask=False, contacts=previewed)
            outcome = executor.execute(playbook, Clock.at(at, TZ), sink, keep_details=True)
            effects = [e for d in outcome.decisions for e in d.effects]
            if effects:
                fired[playbook.id].append(day)
            budgets = [a.max_segments for a in playbook.actions if isinstance(a, SmsAction)]
            for effect in effects:
                if effect.kind == "sms":
                    body = str(effect.row["body"])
                    assert body.startswith(TEXTS.sms_signature), (playbook.id, body)
                    opt_out = body.endswith(TEXTS.sms_opt_out)
                    assert opt_out == (playbook.category == "marketing"), (playbook.id, body)
                    assert effect.row["segments"] <= max(budgets), (playbook.id, body)
                elif effect.kind == "task":
                    assert effect.row["assignee_role"] == PACK_B_SCHEDULED[playbook.id]
                    assert effect.row["assignee_id"], (playbook.id, effect.customer_id)
    assert sorted(fired) == sorted(PACK_B_SCHEDULED), {
        pid: fired.get(pid) for pid in PACK_B_SCHEDULED
    }


def test_tasks_reach_someone_of_the_named_role_in_the_customers_branch(
    shared_demo_store: Engine,
) -> None:
    """The branch-leader escalation on the demo store lands on the customer's own branch."""
    playbook = pack()["complaint-overdue-critical"]
    at = slot_on(playbook, AS_OF_DATE, TZ)
    assert at is not None
    executor = Executor(shared_demo_store, SETTINGS, dictionary(), validator().renderer)
    outcome = executor.execute(playbook, Clock.at(at, TZ), RecordingSink(), keep_details=True)
    tasks = [e for d in outcome.decisions for e in d.effects if e.kind == "task"]
    assert tasks
    with shared_demo_store.connect() as conn:
        for task in tasks:
            row = conn.execute(
                text(
                    "SELECT m.role, m.branch_id = c.branch_id FROM managers m, customers c "
                    "WHERE m.id = :m AND c.id = :c"
                ),
                {"m": task.row["assignee_id"], "c": task.customer_id},
            ).one()
            assert tuple(row) == ("branch_leader", True)


def test_a_referral_event_for_a_demo_customer_is_thanked(shared_demo_store: Engine) -> None:
    playbook = pack()["referral-thank-you"]
    with shared_demo_store.connect() as conn:
        referrer = conn.execute(
            text(
                "SELECT c.id FROM customers c JOIN consents s ON s.customer_id = c.id "
                "AND s.channel = 'sms' AND s.purpose = 'marketing' "
                "JOIN consents p ON p.customer_id = c.id "  # the thank-you call: phone consent
                "AND p.channel = 'phone' AND p.purpose = 'marketing' "
                "WHERE s.given_at IS NOT NULL AND s.withdrawn_at IS NULL "
                "AND p.given_at IS NOT NULL AND p.withdrawn_at IS NULL "
                "AND c.manager_id IS NOT NULL ORDER BY c.id"
            )
        ).scalar()
    assert referrer is not None
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    processor = EventProcessor(
        shared_demo_store,
        SETTINGS,
        dictionary(),
        validator().renderer,
        persist=False,
        mask=False,
        keep_details=True,
    )
    processor.restore([playbook], now)
    event = {
        "id": "RF-PACK-1",
        "type": "referral",
        "customer_id": referrer,
        "occurred_at": "2026-11-23T09:30:00+08:00",
        "referred_customer_id": "C9999999999",
        "channel": "mobile",
    }
    report = processor.process([("pack", event)], now)
    outcomes = [h.outcome for h in report.handled if h.outcome is not None]
    assert [o.matched for o in outcomes] == [[referrer]]
    kinds = {e.kind: e for d in outcomes[0].decisions for e in d.effects}
    assert set(kinds) == {"sms", "task"}
    assert str(kinds["sms"].row["body"]).endswith(TEXTS.sms_opt_out)
    assert kinds["task"].row["assignee_role"] == "manager"
