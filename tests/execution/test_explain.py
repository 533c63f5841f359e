"""``explain``: one customer traced through every playbook, and always the same verdict as
dry-run. The agreement tests compare explain with a real whole-store preview (the executor
over every customer, as ``dry-run`` runs it) for hundreds of customers, on SQLite and
PostgreSQL, after a real run has left cooldowns, caps and open tasks behind."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine
from support import AS_OF, SETTINGS, TZ, assert_no_traceback, cli, dictionary, validator

from engine.conditions.ast import EVERYONE
from engine.conditions.evaluate import evaluate
from engine.conditions.explain import Step
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.execution.executor import Executor, Outcome, by_priority
from engine.execution.explain import Explainer, Explanation, UnknownCustomer
from engine.execution.sinks import Decision, RecordingSink, StoreSink
from engine.playbook.model import Playbook
from engine.reports.explain import explanation_json, explanation_text, outcome_of
from engine.store.db import open_store
from engine.triggers.schedule import Schedule

DICTIONARY = dictionary()
EARLIER_RUN = dt.datetime(2026, 11, 20, 9, 0, tzinfo=TZ)  # the Friday before AS_OF
SAMPLE = 200

# every kind of condition explain has to trace, in one audience
RICH = """\
id: %(id)s
title: 各类条件
category: marketing
holdout_percent: 10
trigger: {schedule: "0 9 * * *"}
audience:
  any:
    - all:
        - segment: high-value
        - not: {tags: {contains: 已流失}}
        - last_active_at: {older_than: 30d}
    - holdings: {count: {where: {product_type: {in: [wealth, fund]}}, gte: 2}}
    - holdings: {sum: {of: amount, where: {maturity_date: {within_next: 30d}}, gte: 100000}}
    - aum_change: {over: 60d, percent: {lte: -20}}
    - all:
        - birth_date: {anniversary: {calendar: customer}}
        - calendar: {workday: true}
    - aum: {between: [1000000, 2000000]}
    - email: {is_null: true}
actions:
  - task: {assignee: manager, kind: call, title: "回访 {{ customer.name }}", due_in: 3d}
  - sms: {template: vip_inactive_60d.sms.j2}
limits:
  once_per_customer: 30d
  max_per_run: %(cap)d
"""


@pytest.fixture(scope="module")
def playbooks(tmp_path_factory: Any) -> list[Playbook]:
    """The shipped playbooks plus one with every kind of condition, and the same again with
    a run cap its audience exceeds."""
    folder = tmp_path_factory.mktemp("pb")
    (folder / "rich.yaml").write_text(RICH % {"id": "rich-audience", "cap": 5000}, "utf-8")
    (folder / "capped.yaml").write_text(RICH % {"id": "rich-capped", "cap": 40}, "utf-8")
    catalog = validator().validate_paths([SETTINGS.playbooks_dir, folder])
    assert not catalog.errors, [f"{d.code} {d.message}" for d in catalog.errors]
    return catalog.playbooks


@pytest.fixture(scope="module")
def store(demo_url: str, playbooks: list[Playbook]) -> Iterator[Engine]:
    """The demo store after a real run three days earlier for half of the customers: ledger,
    outbox and open tasks give the cooldown, frequency-cap and open-task gates something to
    find."""
    engine = open_store(demo_url)
    executor = Executor(engine, SETTINGS, DICTIONARY, validator().renderer)
    clock = Clock.at(EARLIER_RUN, TZ)
    half = all_ids(engine)[::2]  # the other half has no history: their actions go ahead
    for p in by_priority([p for p in playbooks if isinstance(p.trigger, Schedule)]):
        executor.execute(p, clock, StoreSink(engine), customer_ids=half)
    yield engine
    engine.dispose()


def preview(engine: Engine, playbooks: Sequence[Playbook]) -> dict[str, Outcome]:
    """A whole-store dry-run at AS_OF, exactly as `dry-run` runs it."""
    executor = Executor(engine, SETTINGS, DICTIONARY, validator().renderer)
    previewed: Counter[tuple[str, str]] = Counter()
    out = {}
    for p in by_priority([p for p in playbooks if isinstance(p.trigger, Schedule)]):
        sink = RecordingSink(mask=True, contacts=previewed)
        out[p.id] = executor.execute(p, Clock.at(AS_OF, TZ), sink, keep_details=True)
    return out


def all_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = SqlCompiler(DICTIONARY, Clock.at(AS_OF, TZ)).audience(EVERYONE, [])
        return [str(r[0]) for r in conn.execute(query)]


def sample_ids(engine: Engine, outcomes: dict[str, Outcome], size: int) -> list[str]:
    """Everyone any playbook matches, those matched by several first (where frequency caps
    and earlier playbooks' messages meet), topped up at random with the others."""
    hits = Counter(cid for o in outcomes.values() for cid in o.matched)
    interesting = sorted(hits, key=lambda cid: (-hits[cid], cid))
    rest = sorted(set(all_ids(engine)) - set(interesting))
    random.Random(7).shuffle(rest)
    return interesting[:size] + rest[: max(0, size - len(interesting))]


def summary(decision: Decision | None) -> tuple[Any, ...] | None:
    if decision is None:
        return None
    effects = tuple((e.kind, e.action_index, e.not_before, e.expires_at) for e in decision.effects)
    return effects, decision.suppressed, decision.held_out


def walk(step: Step) -> Iterator[Step]:
    yield step
    for child in step.children:
        yield from walk(child)


def check_agreement(
    store: Engine, playbooks: list[Playbook], ids: Sequence[str], outcomes: dict[str, Outcome]
) -> tuple[Counter[str], Counter[str], bool]:
    """Explain each customer; every scheduled playbook's verdict, trace and decision must be
    the whole-store preview's. Returns the outcomes and reasons seen, and whether explain
    had to run whole audiences."""
    explainer = Explainer(store, SETTINGS, DICTIONARY, validator().renderer)
    seen: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    whole = False
    for cid in ids:
        exp = explainer.explain(cid, playbooks, AS_OF)
        whole |= exp.whole_run
        for entry in exp.playbooks:
            p = entry.playbook
            assert entry.audience is not None
            if p.id not in outcomes:  # event playbooks: see the test below
                continue
            o = outcomes[p.id]
            matched = cid in o.matched
            assert entry.matched is matched, (cid, p.id)
            assert entry.audience.holds is matched, (cid, p.id)
            assert entry.agrees
            mine = [d for d in o.decisions if d.customer_id == cid]
            assert summary(entry.decision) == summary(mine[0] if mine else None), (cid, p.id)
            # the gates in the executor's order, the holdout bucket last and only when reached
            names = [g.name for g in entry.gates]
            assert names[:3] == ["already_done", "cooldown", "max_per_run"], names
            hold = entry.gates[-1]
            assert hold.name == "holdout" and names.count("holdout") == 1, names
            d = entry.decision
            assert (hold.verdict == "fail") is bool(d is not None and d.held_out), (cid, p.id)
            if d is None or not (d.effects or d.held_out):
                assert hold.verdict == "n/a", (cid, p.id, hold)
            seen[outcome_of(entry)["verdict"]] += 1
            reasons.update(r for _, r in (entry.decision.suppressed if entry.decision else ()))
    return seen, reasons, whole


def test_explain_agrees_with_dry_run_for_every_sampled_customer(
    store: Engine, playbooks: list[Playbook]
) -> None:
    chosen = [p for p in playbooks if p.id != "rich-capped"]
    outcomes = preview(store, chosen)
    size = SAMPLE if store.dialect.name == "sqlite" else SAMPLE // 2  # PostgreSQL: slower
    ids = sample_ids(store, outcomes, size)
    assert len(ids) == size
    seen, reasons, whole = check_agreement(store, chosen, ids, outcomes)
    # the sample really exercised the funnel, or the agreement would prove little
    assert {"acts", "not_matched", "held_out", "suppressed"} <= set(seen), seen
    assert {"cooldown", "no_consent_sms", "frequency_cap_sms"} <= set(reasons), reasons
    assert not whole  # no cap could bind: one customer at a time is exact


def test_a_binding_run_cap_is_decided_over_the_whole_audience(
    store: Engine, playbooks: list[Playbook]
) -> None:
    chosen = [p for p in playbooks if p.id in ("rich-capped", "vip-inactive-60d")]
    outcomes = preview(store, chosen)
    capped = outcomes["rich-capped"]
    over = [d.customer_id for d in capped.decisions if (None, "max_per_run") in d.suppressed]
    acted = [d.customer_id for d in capped.decisions if d.effects]
    assert over and acted
    ids = acted[-10:] + over[:10]
    seen, reasons, whole = check_agreement(store, chosen, ids, outcomes)
    assert whole and reasons["max_per_run"] == 10 and seen["acts"] >= 10


def test_event_playbooks_follow_the_sql_audience(store: Engine, playbooks: list[Playbook]) -> None:
    events = [p for p in playbooks if not isinstance(p.trigger, Schedule)]
    assert events
    executor = Executor(store, SETTINGS, DICTIONARY, validator().renderer)
    clock = Clock.at(AS_OF, TZ)
    explainer = Explainer(store, SETTINGS, DICTIONARY, validator().renderer)
    ids = all_ids(store)[:120]
    discriminating = 0
    for p in events:
        with store.connect() as conn:
            members = {
                str(r["_key"])
                for r in conn.execute(executor.audience_query(p, clock, ids)).mappings()
            }
        assert members
        discriminating += members != set(ids)  # some event audiences are everyone (referral)
        for cid in ids:
            entry = explainer.explain(cid, [p], AS_OF).playbooks[0]
            assert entry.matched is (cid in members)
            assert entry.audience is not None and entry.audience.holds is (cid in members)
    assert discriminating, "no event playbook's audience tells customers apart"


def test_every_node_is_the_reference_evaluators_verdict(
    store: Engine, playbooks: list[Playbook]
) -> None:
    """The rich audience's trace: each leaf's verdict equals evaluating that leaf alone,
    and the kinds of node a person sees are all there."""
    rich = next(p for p in playbooks if p.id == "rich-audience")
    explainer = Explainer(store, SETTINGS, DICTIONARY, validator().renderer)
    kinds: Counter[str] = Counter()
    clock = Clock.at(AS_OF, TZ)
    for cid in all_ids(store)[:60]:
        entry = explainer.explain(cid, [rich], AS_OF).playbooks[0]
        assert entry.audience is not None
        steps = list(walk(entry.audience))
        kinds.update(s.kind for s in steps)
        with store.connect() as conn:
            values = explainer.customer_values(conn, cid, clock)
        assert values is not None
        # the anniversary + workday branch: its verdict is the evaluator's on that branch
        branch = rich.audience.items[4]  # type: ignore[union-attr]
        node = entry.audience.children[4]
        assert node.holds is evaluate(branch, values, DICTIONARY, clock)
    assert {"any", "all", "not", "segment", "test", "related", "change", "calendar"} <= set(kinds)


def explain_one(store: Engine, playbooks: list[Playbook], cid: str, **kw: Any) -> Explanation:
    return Explainer(store, SETTINGS, DICTIONARY, validator().renderer).explain(
        cid, playbooks, AS_OF, **kw
    )


def test_text_shows_values_thresholds_gates_and_outcome(
    store: Engine, playbooks: list[Playbook]
) -> None:
    outcomes = preview(store, playbooks)
    vip = outcomes["vip-inactive-60d"]
    acting = next(d for d in vip.decisions if d.effects and not d.suppressed)
    shipped = [p for p in playbooks if p.id != "rich-audience"]
    text = explanation_text(explain_one(store, shipped, acting.customer_id), DICTIONARY)
    assert "vip-inactive-60d  贵宾客户60天未活跃电话回访" in text
    assert "✓ last_active_at 最近活跃时间 older_than 60d: true — " in text
    assert " is before 2026-09-24 09:00" in text  # as_of − 60 days, the threshold itself
    assert "✓ tier 客户等级 in [vip, private]: true — " in text
    assert "授权 consent sms/marketing: pass — given " in text
    assert "frequency cap sms 1/1d: pass — 0 marketing sms queued or sent since" in text
    assert "outcome 结果: would get 将执行: 任务 task, 短信 sms" in text
    assert "(personal data masked)" in text


def test_cooldown_gate_names_the_last_action(store: Engine, playbooks: list[Playbook]) -> None:
    outcomes = preview(store, playbooks)
    cooling = next(
        d for d in outcomes["vip-inactive-60d"].decisions if (None, "cooldown") in d.suppressed
    )
    exp = explain_one(store, playbooks, cooling.customer_id, mask=False)
    entry = next(e for e in exp.playbooks if e.playbook.id == "vip-inactive-60d")
    gate = next(g for g in entry.gates if g.name == "cooldown")
    assert gate.verdict == "fail"
    assert "last acted 2026-11-20 09:00" in gate.detail
    assert "would not 不执行: cooldown" in explanation_text(exp, DICTIONARY)


def test_personal_data_masked_unless_asked(store: Engine, playbooks: list[Playbook]) -> None:
    cid = all_ids(store)[0]
    with store.connect() as conn:
        values = Explainer(store, SETTINGS, DICTIONARY, validator().renderer).customer_values(
            conn, cid, Clock.at(AS_OF, TZ)
        )
    assert values is not None and values["phone"] and values["name"]
    masked = json.dumps(explanation_json(explain_one(store, playbooks, cid), DICTIONARY))
    shown = json.dumps(
        explanation_json(explain_one(store, playbooks, cid, mask=False), DICTIONARY),
        ensure_ascii=False,
    )
    for key in ("phone", "name", "email"):
        if values.get(key):
            assert json.dumps(values[key]).strip('"') not in masked
            assert values[key] in shown


def test_unknown_customer_is_an_engine_error(store: Engine, playbooks: list[Playbook]) -> None:
    with pytest.raises(UnknownCustomer) as info:
        explain_one(store, playbooks, "C9999999999")
    assert info.value.code == "E0304"


# --- the command, as staff run it ------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: Any) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'demo.db'}"
    result = cli(
        "demo-data", "--db", url, "--customers", "300", "--seed", "5", "--as-of", "2026-11-23"
    )
    assert result.returncode == 0, result.stderr
    return url


def test_cli_explain_text_and_json(cli_store: str) -> None:
    dry = cli("dry-run", "--db", cli_store, "--as-of", "2026-11-23T09:00", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    matched = {p["id"]: set(p["matched"]) for p in report["playbooks"]}
    cid = sorted(matched["vip-inactive-60d"])[0]
    result = cli(
        "explain", cid, "--db", cli_store, "--as-of", "2026-11-23T09:00", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["customer_id"] == cid and doc["personal_data_masked"] is True
    by_id = {p["id"]: p for p in doc["playbooks"]}
    for pid, members in matched.items():
        assert by_id[pid]["matched"] is (cid in members)
        assert by_id[pid]["audience"]["holds"] is (cid in members)
    text = cli(
        "explain",
        cid,
        "--db",
        cli_store,
        "--as-of",
        "2026-11-23T09:00",
        "--playbook",
        "vip-inactive-60d",
    )
    assert text.returncode == 0, text.stderr
    assert "audience 目标客户: true" in text.stdout and "care-survey-email" not in text.stdout


def test_cli_explain_a_date_alone_uses_each_schedule(cli_store: str) -> None:
    result = cli("explain", "C0000000001", "--db", cli_store, "--as-of", "2026-11-22")  # a Sunday
    assert result.returncode == 0, result.stderr
    assert "not scheduled on this day 当日不运行" in result.stdout


def test_cli_unknown_customer_one_line_exit_1(cli_store: str) -> None:
    result = cli("explain", "NOPE", "--db", cli_store)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert result.stderr.startswith("error[E0304]: no customer with id 'NOPE'")


def test_cli_unknown_playbook_exit_2_with_did_you_mean(cli_store: str) -> None:
    result = cli("explain", "C0000000001", "--db", cli_store, "--playbook", "vip-inactive-06d")
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "error[E0302]" in result.stderr
    assert "did you mean vip-inactive-60d?" in result.stderr
