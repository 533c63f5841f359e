"""Effect measurement: the statistics against published values, and every goal kind measured
on hand-built stores (SQLite and PostgreSQL) with the edges of the window."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert
from support import (
    AS_OF_DATE,
    SETTINGS,
    TZ,
    dictionary,
    playbook_from_text,
    validator,
)

from engine.playbook.model import Playbook
from engine.reports.effect import effect_report
from engine.reports.lift import MIN_ARM, Rate, lift, newcombe, verdict, wilson
from engine.store.db import create_all
from engine.store.models import (
    action_ledger,
    aum_snapshots,
    branches,
    customer_tags,
    customers,
    holdings,
    runs,
    transactions,
)

# --- statistics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("met", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 10, 0.0, 0.2775)],
)
def test_wilson_matches_newcombes_worked_values(met: int, n: int, low: float, high: float) -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I
    ci = wilson(met, n)
    assert ci is not None
    assert ci == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "low", "high"),
    [
        # Newcombe (1998), "Interval estimation for the difference between independent
        # proportions", Table II, method 10 (hybrid score)
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_matches_the_papers_examples(
    a: int, m: int, b: int, n: int, low: float, high: float
) -> None:
    ci = newcombe(Rate(a, m), Rate(b, n))
    assert ci is not None
    assert ci == pytest.approx((low, high), abs=5e-5)


def test_lift_relative_and_empty_arms() -> None:
    found = lift(Rate(30, 100), Rate(10, 100))
    assert found is not None
    assert found.difference == pytest.approx(0.2) and found.relative == pytest.approx(2.0)
    zero = lift(Rate(3, 10), Rate(0, 10))
    assert zero is not None and zero.relative is None  # no rate to be relative to
    assert lift(Rate(0, 0), Rate(1, 5)) is None and wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(6, 5)


def test_verdicts() -> None:
    big, small = Rate(60, 100), Rate(20, 100)
    assert verdict(big, small, lift(big, small)) == "lift"
    assert verdict(small, big, lift(small, big)) == "harm"
    assert verdict(Rate(50, 100), Rate(48, 100), lift(Rate(50, 100), Rate(48, 100))) == (
        "no_clear_effect"
    )
    few = Rate(5, MIN_ARM - 1)
    assert verdict(big, few, lift(big, few)) == "not_enough_data"
    assert verdict(big, None, None) == "no_holdout"


@given(
    st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_intervals_hold_their_estimate_and_mirror(a: tuple[int, int], b: tuple[int, int]) -> None:
    one, two = Rate(*a), Rate(*b)
    w = wilson(*a)
    assert w is not None and 0 <= w[0] <= a[0] / a[1] <= w[1] <= 1
    ci, mirrored = newcombe(one, two), newcombe(two, one)
    assert ci is not None and mirrored is not None
    d = a[0] / a[1] - b[0] / b[1]
    assert -1 - 1e-12 <= ci[0] <= d + 1e-12 and d - 1e-12 <= ci[1] <= 1 + 1e-12
    assert math.isclose(ci[0], -mirrored[1], abs_tol=1e-12)
    assert math.isclose(ci[1], -mirrored[0], abs_tol=1e-12)


# --- goals measured on a store -------------------------------------------------------------

RUN_AT = dt.datetime(2026, 10, 1, 9, 0)  # local time of the run that recorded everyone
RUN_UTC = RUN_AT - dt.timedelta(hours=8)
AS_OF = dt.datetime(2026, 12, 31, 12, 0, tzinfo=TZ)

BASE = """id: {id}
title: t
trigger: {{schedule: "0 9 * * *"}}
audience: everyone
actions:
  - task: {{title: call}}
"""


def _playbook(tmp_path: Path, pid: str, goal: str, holdout: int = 10) -> Playbook:
    text = BASE.format(id=pid) + f"holdout_percent: {holdout}\ngoal:\n{goal}"
    return playbook_from_text(tmp_path, text, f"{pid}.yaml")


def _store(
    store: Engine, people: dict[str, bool], when: dict[str, dt.datetime] | None = None
) -> None:
    """Customers C… recorded by one run of playbook pb-one (held out or not)."""
    create_all(store)
    with store.begin() as conn:
        conn.execute(insert(branches).values(id="B1", name="b", city="c"))
        for cid in people:
            conn.execute(
                insert(customers).values(
                    id=cid,
                    name="x",
                    branch_id="B1",
                    tier="vip",
                    aum=0,
                    avg_daily_deposit=0,
                    opened_on=dt.date(2020, 1, 1),
                    lifecycle_stage="mature",
                    last_active_at=dt.datetime(2026, 6, 1),
                )
            )
        run_id = conn.execute(
            insert(runs)
            .values(
                playbook_id="pb-one",
                window="w",
                as_of=RUN_UTC,
                content_hash="h",
                started_at=RUN_UTC,
                status="done",
                matched=len(people),
                acted=len(people),
                suppressed={"cooldown": 3, "held_out": 1},
            )
            .returning(runs.c.id)
        ).scalar_one()
        for cid, held in people.items():
            at = (when or {}).get(cid, RUN_UTC)
            conn.execute(
                insert(action_ledger).values(
                    playbook_id="pb-one",
                    customer_id=cid,
                    window=at.isoformat(),
                    run_id=run_id,
                    content_hash="h",
                    created_at=at,
                    held_out=held,
                )
            )


def _goal(store: Engine, playbook: Playbook, as_of: dt.datetime = AS_OF) -> dict[str, Any]:
    doc = effect_report(
        store, dictionary(), [playbook], as_of=as_of, since=None, until=as_of.date(), tz=TZ
    )
    goal = doc["playbooks"][0]["goal"]
    assert goal is not None
    return goal


def _pb(tmp_path: Path, goal: str, holdout: int = 10) -> Playbook:
    return _playbook(tmp_path, "pb-one", goal, holdout)


def test_activity_counts_after_the_action_up_to_exactly_the_window_end(
    store: Engine, tmp_path: Path
) -> None:
    people = {f"C{i}": False for i in range(1, 6)} | {"H1": True, "H2": True}
    _store(store, people)
    end = RUN_AT + dt.timedelta(days=30)
    with store.begin() as conn:
        rows = [
            ("C1", end),  # exactly at the window's end: counts
            ("C2", RUN_AT),  # at the very moment of the action: not after it
            ("C3", end + dt.timedelta(seconds=1)),  # one second late
            ("H1", RUN_AT + dt.timedelta(days=3)),
        ]
        for cid, at in rows:
            conn.execute(
                insert(transactions).values(
                    customer_id=cid, occurred_at=at, kind="deposit", amount=10, channel="mobile"
                )
            )
        # a login inside the window, seen only in last_active_at
        conn.execute(
            customers.update()
            .where(customers.c.id == "C4")
            .values(last_active_at=RUN_AT + dt.timedelta(days=10))
        )
    goal = _goal(store, _pb(tmp_path, "  within: 30d\n  activity_resumed: true\n"))
    assert goal["treated"] | {"ci95": None} == {
        "n": 5, "met": 2, "rate": 0.4, "ci95": None, "pending": 0
    }  # fmt: skip
    assert (goal["holdout"]["n"], goal["holdout"]["met"]) == (2, 1)
    assert goal["verdict"] == "not_enough_data"  # 5 and 2 customers
    assert goal["lift"]["difference"] == pytest.approx(0.4 - 0.5)


def test_windows_not_ended_are_pending_and_each_customer_counts_once(
    store: Engine, tmp_path: Path
) -> None:
    later = RUN_UTC + dt.timedelta(days=80)  # window ends 2027-01-19, after AS_OF
    _store(store, {"C1": False, "C2": False, "H1": True}, when={"C2": later, "H1": later})
    with store.begin() as conn:  # C1 recorded again later: its first record is what counts
        conn.execute(
            insert(action_ledger).values(
                playbook_id="pb-one",
                customer_id="C1",
                window="again",
                run_id=1,
                content_hash="h",
                created_at=later,
                held_out=False,
            )
        )
    goal = _goal(store, _pb(tmp_path, "  within: 30d\n  activity_resumed: true\n"))
    assert (goal["treated"]["n"], goal["treated"]["pending"]) == (1, 1)
    assert (goal["holdout"]["n"], goal["holdout"]["pending"]) == (0, 1)
    assert goal["holdout"]["rate"] is None and goal["lift"] is None
    assert goal["verdict"] == "not_enough_data"


def test_product_bought_with_a_filter_counts_whole_days(store: Engine, tmp_path: Path) -> None:
    _store(store, {"C1": False, "C2": False, "C3": False, "C4": False})
    end_day = (RUN_AT + dt.timedelta(days=30)).date()
    with store.begin() as conn:
        for cid, kind, day in [
            ("C1", "wealth", end_day),  # on the last day of the window
            ("C2", "fund", RUN_AT.date()),  # not what the goal asks for
            ("C3", "wealth", RUN_AT.date() - dt.timedelta(days=1)),  # the day before
            ("C4", "wealth", RUN_AT.date()),  # the action's own day counts
        ]:
            conn.execute(
                insert(holdings).values(
                    customer_id=cid, product_type=kind, product_name="x", amount=1, opened_on=day
                )
            )
    goal = _goal(
        store, _pb(tmp_path, "  within: 30d\n  product_bought: {product_type: wealth}\n", 0)
    )
    assert (goal["treated"]["n"], goal["treated"]["met"]) == (4, 2)
    assert goal["holdout"] is None and goal["verdict"] == "no_holdout"


def test_aum_recovered_compares_the_history_at_both_ends(store: Engine, tmp_path: Path) -> None:
    _store(store, {"C1": False, "C2": False, "C3": False, "C4": False})
    snapshots = {
        "C1": [(dt.date(2026, 10, 1), 100.0), (dt.date(2026, 11, 1), 100.0)],  # back to level
        "C2": [(dt.date(2026, 10, 1), 100.0), (dt.date(2026, 11, 1), 99.0)],  # short of it
        "C3": [(dt.date(2026, 12, 1), 500.0)],  # nothing known at the action
        "C4": [(dt.date(2026, 9, 1), 100.0), (dt.date(2026, 11, 1), 111.0)],
    }
    with store.begin() as conn:
        for cid, rows in snapshots.items():
            for month, value in rows:
                conn.execute(insert(aum_snapshots).values(customer_id=cid, month=month, aum=value))
    plain = _goal(store, _pb(tmp_path, "  within: 60d\n  aum_recovered: true\n", 0))
    assert (plain["treated"]["n"], plain["treated"]["met"]) == (4, 2)  # C1, C4
    higher = _goal(store, _pb(tmp_path, "  within: 60d\n  aum_recovered: {percent: 110}\n", 0))
    assert higher["treated"]["met"] == 1  # C4: 111 ≥ 110% of 100


def test_condition_goal_is_evaluated_at_the_window_end(store: Engine, tmp_path: Path) -> None:
    _store(store, {"C1": False, "C2": False, "C3": False})
    with store.begin() as conn:
        conn.execute(insert(customer_tags).values(customer_id="C1", tag="已评价"))
        conn.execute(insert(customer_tags).values(customer_id="C2", tag="已评价"))
        # active 5 days before the window's end: 'within_last: 10d' counts from that end
        conn.execute(
            customers.update()
            .where(customers.c.id == "C2")
            .values(last_active_at=RUN_AT + dt.timedelta(days=25))
        )
    tagged = "  within: 30d\n  condition: {tags: {contains: 已评价}}\n"
    assert _goal(store, _pb(tmp_path, tagged, 0))["treated"]["met"] == 2
    both = (
        "  within: 30d\n  condition:\n    all:\n      - tags: {contains: 已评价}\n"
        "      - last_active_at: {within_last: 10d}\n"
    )
    assert _goal(store, _pb(tmp_path, both, 0))["treated"]["met"] == 1


def test_report_counts_and_an_empty_playbook(store: Engine, tmp_path: Path) -> None:
    _store(store, {"C1": False, "H1": True})
    other = _playbook(tmp_path, "never-ran", "  within: 30d\n  activity_resumed: true\n")
    doc = effect_report(
        store,
        dictionary(),
        [_pb(tmp_path, "  within: 30d\n  activity_resumed: true\n"), other],
        as_of=AS_OF,
        since=dt.date(2026, 10, 1),
        until=dt.date(2026, 10, 1),
        tz=TZ,
    )
    p, empty = doc["playbooks"]
    assert p["runs"] == 1 and p["suppressed"] == {"cooldown": 3}  # held_out is its own count
    assert p["triggered"] == {"customers": 1, "held_out": 1, "ledger_rows": 2}
    assert empty["runs"] == 0 and empty["goal"]["treated"]["n"] == 0
    assert empty["goal"]["verdict"] == "not_enough_data"
    # a period that excludes the run: nothing
    doc = effect_report(
        store,
        dictionary(),
        [_pb(tmp_path, "  within: 30d\n  activity_resumed: true\n")],
        as_of=AS_OF,
        since=dt.date(2026, 10, 2),
        until=dt.date(2026, 12, 31),
        tz=TZ,
    )
    assert doc["playbooks"][0]["triggered"]["ledger_rows"] == 0


def test_a_window_ending_exactly_at_as_of_is_measured(store: Engine, tmp_path: Path) -> None:
    _store(store, {"C1": False})
    playbook = _pb(tmp_path, "  within: 30d\n  activity_resumed: true\n")
    end = (RUN_AT + dt.timedelta(days=30)).replace(tzinfo=TZ)
    at_end = _goal(store, playbook, as_of=end)["treated"]
    assert (at_end["n"], at_end["pending"]) == (1, 0)
    before = _goal(store, playbook, as_of=end - dt.timedelta(seconds=1))["treated"]
    assert (before["n"], before["pending"]) == (0, 1)


# --- the SQL count against a plain Python reading of the same rows --------------------------

_OFFSETS = st.lists(st.integers(-3 * 86400, 33 * 86400), max_size=3)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _OFFSETS, st.none() | _OFFSETS), min_size=1, max_size=8))
def test_activity_counts_agree_with_a_python_reference(
    tmp_path_factory: Any, people: list[tuple[bool, list[int], list[int] | None]]
) -> None:
    """Transactions (and a last-activity time) scattered around the window, down to the
    second, with its two edges drawn on purpose: SQL and the definition must agree."""
    from engine.store.db import open_store

    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    store = open_store(url)
    try:
        ids = {f"C{i}": held for i, (held, _, _) in enumerate(people)}
        _store(store, ids)
        window = 30 * 86400
        expected = {True: 0, False: 0}
        with store.begin() as conn:
            for (cid, held), (_, offsets, last) in zip(ids.items(), people, strict=True):
                # a quarter land exactly on the action, a quarter exactly on the window's end
                moments = [{0: 0, 1: window}.get(o % 4, o) for o in offsets]
                for o in moments:
                    conn.execute(
                        insert(transactions).values(
                            customer_id=cid,
                            occurred_at=RUN_AT + dt.timedelta(seconds=o),
                            kind="deposit",
                            amount=1,
                            channel="atm",
                        )
                    )
                latest = max(last) if last else None
                if latest is not None:
                    conn.execute(
                        customers.update()
                        .where(customers.c.id == cid)
                        .values(last_active_at=RUN_AT + dt.timedelta(seconds=latest))
                    )
                seen = [*moments, *([latest] if latest is not None else [])]
                expected[held] += any(0 < o <= window for o in seen)
        doc = effect_report(
            store,
            dictionary(),
            [_playbook(tmp_path_factory.mktemp("pb"), "pb-one", GOAL_ACTIVITY)],
            as_of=AS_OF,
            since=None,
            until=AS_OF.date(),
            tz=TZ,
        )
        goal = doc["playbooks"][0]["goal"]
        assert goal["treated"]["met"] == expected[False]
        assert goal["holdout"]["met"] == expected[True]
    finally:
        store.dispose()


GOAL_ACTIVITY = "  within: 30d\n  activity_resumed: true\n"


# --- the simulated month through the engine's API, on both backends -----------------------


def test_simulated_days_write_real_runs_and_outcomes_on_both_backends(demo_url: str) -> None:
    from engine.demo.outcomes import simulate
    from engine.store.db import mark_demo_store, open_store

    store = open_store(demo_url)
    try:
        mark_demo_store(store)
        v = validator()
        shipped = v.validate_paths([SETTINGS.playbooks_dir]).playbooks
        playbooks = [p for p in shipped if p.id == "vip-inactive-60d"]
        start = AS_OF_DATE  # the demo store's anchor, a Monday
        sim = simulate(
            store, SETTINGS, dictionary(), v.renderer, playbooks, start=start, days=5, seed=1,
            rates={"treated": 1.0, "holdout": 0.0},
        )  # fmt: skip
        assert sim.runs == 5 and sim.recorded["treated"] > 0  # vip-inactive-60d, Mon to Fri
        assert sim.outcomes["activity_resumed"] == sim.recorded["treated"]
        assert sum(sim.tasks_done.values()) > 0
        doc = effect_report(
            store,
            dictionary(),
            playbooks,
            as_of=dt.datetime(2027, 1, 31, tzinfo=TZ),
            since=start,
            until=start + dt.timedelta(days=4),
            tz=TZ,
        )
        goal = doc["playbooks"][0]["goal"]
        # every treated customer met the goal, no held-out one did: the chances are honoured
        assert goal["treated"]["met"] == goal["treated"]["n"] == sim.recorded["treated"]
        assert goal["holdout"]["met"] == 0 and goal["holdout"]["n"] == sim.recorded["holdout"]
        assert doc["simulated"][0]["rates"] == {"treated": 1.0, "holdout": 0.0}
        assert doc["playbooks"][0]["tasks"]["done"] == sum(sim.tasks_done.values())
    finally:
        store.dispose()
