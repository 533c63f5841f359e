"""The shipped playbook pack, as a whole, on the demo store (SQLite and PostgreSQL).

A playbook that never acts on realistic data is broken or was never tried against it, so every
shipped scheduled playbook must act (at least one action) on the demo store on at least one
of ``PACK_DATES``, previewed exactly as ``dry-run --as-of DATE`` previews a day: each playbook
at its scheduled time that day, in priority order, frequency caps shared between them. Event
playbooks act when events arrive, not on a date; they are left out by their trigger type and
tested with events (tests/events/test_events.py, their playbook unit tests).

The demo store is anchored on ``AS_OF_DATE`` (2026-11-23); dates before it read the same
customers, which is all a greeting or a calendar condition needs.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter

import pytest
from support import AS_OF_DATE, REPO, SETTINGS, validator

from engine.actions.compliance import load_texts
from engine.actions.sms import SmsAction
from engine.commands.preview import execute_selected
from engine.core import calendar as cal
from engine.core.workcalendar import LIBRARY
from engine.execution.executor import Outcome
from engine.playbook.model import Playbook
from engine.triggers.event import EventTrigger
from engine.triggers.schedule import Schedule

# the signature and opt-out texts the shipped contact policy configures
TEXTS = load_texts(SETTINGS.policy_path)

PACK_DATES: list[str] = [
    AS_OF_DATE.isoformat(),  # a Monday: the demo store's own day (most playbooks)
    "2026-02-14",  # a make-up Saturday, the last workday before 春节 2026
    "2026-09-24",  # the last workday before 中秋 2026
    "2026-12-31",  # the last workday before 元旦 2027
    "2026-10-12",  # a Monday of a quarter's first month (the satisfaction survey)
]
"""Days previewed over the whole pack; add the day a new playbook is meant to fire on."""


def _pack() -> list[Playbook]:
    catalog = validator().validate_paths([SETTINGS.playbooks_dir])
    assert not catalog.errors, [f"{d.file}:{d.line}: {d.code} {d.message}" for d in catalog.errors]
    return catalog.playbooks


def _scheduled(pack: list[Playbook]) -> list[Playbook]:
    return [p for p in pack if isinstance(p.trigger, Schedule)]


@pytest.fixture(scope="module")
def previews(demo_url: str) -> dict[str, list[Outcome]]:
    """The dry-run of every scheduled playbook (disabled ones too, as if named with
    --playbook) on each pack date, with personal data masked as the command masks it."""
    wanted = [p.id for p in _scheduled(_pack())]
    out: dict[str, list[Outcome]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # the command reads playbooks/, templates/ and config/ from here
        for day in PACK_DATES:
            selected = execute_selected(demo_url, day, wanted, dry_run=True, mask=True)
            assert not selected.failed and not selected.left_out
            out[day] = selected.outcomes
    return out


def test_validate_passes_for_the_whole_pack() -> None:
    files = sorted((REPO / "playbooks").glob("*.yaml"))
    result = subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "validate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(files)} file(s): {len(files)} valid, 0 error(s)" in result.stdout
    assert len(_pack()) == len(files)


def test_event_playbooks_are_left_out_by_trigger_type(previews: dict[str, list[Outcome]]) -> None:
    """Only two kinds of trigger exist; the event kind is what this test leaves out."""
    pack = _pack()
    events = {p.id for p in pack if isinstance(p.trigger, EventTrigger)}
    assert {p.id for p in pack} == {p.id for p in _scheduled(pack)} | events
    previewed = {o.playbook.id for outcomes in previews.values() for o in outcomes}
    assert not previewed & events


def test_every_scheduled_playbook_fires_on_some_pack_date(
    previews: dict[str, list[Outcome]],
) -> None:
    fired: dict[str, list[str]] = {}
    for day, outcomes in previews.items():
        for o in outcomes:
            if any(d.effects for d in o.decisions):
                fired.setdefault(o.playbook.id, []).append(day)
    scheduled = {p.id for p in _scheduled(_pack())}
    silent = sorted(scheduled - fired.keys())
    assert not silent, f"never act on the demo store on any of {PACK_DATES}: {silent}"


def test_sms_carry_the_opt_out_and_keep_their_budgets(previews: dict[str, list[Outcome]]) -> None:
    """Marketing SMS end with the opt-out, service SMS do not; every SMS starts with the
    signature and fits its playbook's max_segments; the daily marketing cap (one SMS a day
    in config/policy.yaml) holds across the whole pack."""
    seen = 0
    for day, outcomes in previews.items():
        per_customer: Counter[str] = Counter()
        for o in outcomes:
            budgets = {i: a.max_segments for i, a in enumerate(o.playbook.actions)
                       if isinstance(a, SmsAction)}  # fmt: skip
            marketing = o.playbook.category == "marketing"
            for decision in o.decisions:
                for effect in decision.effects:
                    if effect.kind != "sms":
                        continue
                    seen += 1
                    body = effect.row["body"]
                    where = f"{day} {o.playbook.id} {decision.customer_id}"
                    assert body.startswith(TEXTS.sms_signature), where
                    assert body.endswith(TEXTS.sms_opt_out) is marketing, where
                    assert effect.row["segments"] <= budgets[effect.action_index], where
                    if marketing:
                        per_customer[decision.customer_id] += 1
        assert all(n <= 1 for n in per_customer.values()), day
    assert seen > 0


def test_festival_greetings_go_on_the_last_workday_before_only(
    previews: dict[str, list[Outcome]],
) -> None:
    """Each festival playbook acts on a pack date exactly when it is the last workday before
    its festival (by the holiday calendar), and at least once: make-up Saturday included."""
    festivals = {
        "festival-spring-greeting": "春节",
        "festival-mid-autumn-greeting": "中秋",
        "festival-new-year-greeting": "元旦",
    }
    for playbook_id, name in festivals.items():
        festival = cal.find_festival(name)
        assert festival is not None
        acting, due = set(), set()
        for day, outcomes in previews.items():
            today = dt.date.fromisoformat(day)
            upcoming = festival.date.next_after(today)
            if upcoming is not None and LIBRARY.last_workday_before(upcoming) == today:
                due.add(day)
            if any(o.playbook.id == playbook_id and o.acted for o in outcomes):
                acting.add(day)
        assert acting == due and due, (playbook_id, sorted(acting), sorted(due))
    assert dt.date(2026, 2, 14).weekday() == 5 and "2026-02-14" in PACK_DATES


def test_the_funnel_adds_up_in_numbers_and_in_the_text(
    previews: dict[str, list[Outcome]],
) -> None:
    """matched − held out − customers held back (by reason) = customers acted, for every
    playbook on every date, and the text report's lines say the same sums; an action held
    back for a customer who still got another one is listed apart, not subtracted."""
    from engine.reports.dryrun import report_text

    with_single_actions_held = 0
    for day, outcomes in previews.items():
        for o in outcomes:
            held_back = sum(o.held_back_by.values())
            assert held_back == o.customers_suppressed, (day, o.playbook.id)
            assert o.held_out + held_back + o.acted == o.matched_count, (day, o.playbook.id)
            per_action = Counter(
                (kind, reason) for d in o.decisions for kind, reason in d.suppressed if kind
            )
            assert per_action == o.actions_held_back, (day, o.playbook.id)
            with_single_actions_held += any(d.effects for d in o.decisions) and bool(per_action)
            text = report_text(o.as_of, [o], [])
            numbers: list[int] = []
            for line in text.splitlines():
                if "actions held back" in line:
                    break
                value = (
                    line.rsplit("... ", 1)[-1].split()[0].replace(",", "") if "..." in line else ""
                )
                if value.isdigit():
                    numbers.append(int(value))
            matched, *minus, acted = numbers
            assert matched - sum(minus) == acted == o.acted, (day, o.playbook.id, text)
    assert with_single_actions_held, "no date shows an action held back beside another"
