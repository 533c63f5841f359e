"""A change over a window whose values are zero or negative, in SQL and in the reference
evaluator, on SQLite and PostgreSQL.

The rule (engine.conditions.ast.Change, docs/playbooks.md "Change over a window"): ``amount``
is ``now - then`` whatever the signs; ``percent`` is measured against a positive earlier value,
whatever the sign of the later one, and is undefined (every comparison false) when the earlier
value is zero or negative. Regression: a balance from 55,741.80 to -3,221.20 was not "a drop
of at least 30%", because any negative value made a change false.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from support import AS_OF, BACKENDS, TZ, dictionary

from engine.conditions.ast import EVERYONE, Change, Condition, Not
from engine.conditions.ast import Test as FieldTest
from engine.conditions.evaluate import evaluate
from engine.conditions.explain import trace
from engine.conditions.facts import load_related
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary
from engine.store.db import open_store
from engine.store.models import aum_snapshots, branches, customers, metadata

SHIPPED = dictionary()
# the shipped dictionary bounds AUM at 0 (valid: {min: 0}); a bank's balance may be negative
BALANCE = dataclasses.replace(
    SHIPPED,
    fields={**SHIPPED.fields, "aum": dataclasses.replace(SHIPPED.fields["aum"], valid=None)},
)
CLOCK = Clock.at(AS_OF, TZ)  # 2026-11-23: 30 days back is 2026-10-24
THEN_DAY = dt.date(2026, 10, 1)

# customer -> (value on THEN_DAY or None for no history, current value)
VALUES: dict[str, tuple[float | None, float]] = {
    "into_red": (55_741.80, -3_221.20),  # the customer: -105.8%
    "to_zero": (1_000.0, 0.0),  # -100%
    "from_zero": (0.0, 1_000.0),  # percent undefined, amount +1,000
    "from_red": (-500.0, 100.0),  # percent undefined, amount +600
    "deeper_red": (-500.0, -800.0),  # percent undefined, amount -300
    "small_drop": (1_000.0, 900.0),  # -10%
    "no_history": (None, 5_000.0),
}


UNDEFINED_PERCENT = {"from_zero", "from_red", "deeper_red"}


def fill(store: Engine, values: dict[str, tuple[float | None, float]]) -> None:
    with store.begin() as conn:
        metadata.create_all(conn)
        conn.execute(branches.insert(), [{"id": "B1", "name": "一支行", "city": "北京"}])
        conn.execute(
            customers.insert(),
            [{"id": cid, "name": cid, "branch_id": "B1", "tier": "mass", "aum": now,
              "opened_on": dt.date(2020, 1, 1), "lifecycle_stage": "mature"}
             for cid, (_then, now) in values.items()],
        )  # fmt: skip
        snapshots = [
            {"customer_id": cid, "month": THEN_DAY, "aum": then}
            for cid, (then, _now) in values.items()
            if then is not None
        ]
        if snapshots:
            conn.execute(aum_snapshots.insert(), snapshots)


def percent(op: str, value: Any, days: int = 30) -> Change:
    return Change("aum_change", dt.timedelta(days=days), "percent", FieldTest("percent", op, value))


def amount(op: str, value: Any, days: int = 30) -> Change:
    return Change("aum_change", dt.timedelta(days=days), "amount", FieldTest("amount", op, value))


def decided(
    store: Engine, d: DataDictionary, condition: Condition, clock: Clock = CLOCK
) -> tuple[set[str], set[str]]:
    """(the SQL audience, the reference evaluator's) over every customer of ``store``."""
    compiler = SqlCompiler(d, clock)
    with store.connect() as conn:
        sql = {str(r[0]) for r in conn.execute(compiler.audience(condition, []))}
        everyone = compiler.audience(EVERYONE, [d.fields["aum"]])
        rows = [dict(r) for r in conn.execute(everyone).mappings()]
        ids = [str(r["_key"]) for r in rows]
        facts = load_related(conn, d, condition, ids, clock)
    python = {str(r["_key"]) for r in rows if evaluate(condition, r, d, clock, facts[r["_key"]])}
    return sql, python


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (percent("lte", -30), {"into_red", "to_zero"}),
        (percent("lt", -100), {"into_red"}),
        (percent("between", (-106, -105)), {"into_red"}),
        (percent("eq", -100), {"to_zero"}),
        (percent("gte", -50), {"small_drop"}),  # undefined percentages are never true …
        (percent("ne", -10), {"into_red", "to_zero"}),  # … not even for ne
        (Not(percent("lte", -30)), UNDEFINED_PERCENT | {"small_drop", "no_history"}),
        (amount("lte", -50_000), {"into_red"}),
        (amount("eq", 600), {"from_red"}),
        (amount("gte", 1_000), {"from_zero"}),
        (amount("eq", -300), {"deeper_red"}),
        (amount("lt", 0), {"into_red", "to_zero", "deeper_red", "small_drop"}),
        (percent("lte", -30, days=90), set()),  # no snapshot on or before 2026-08-25
    ],
    # sorted: a set's repr follows string hashing, which differs between processes, and the
    # workers that share the suite out must name the same tests
    ids=lambda v: repr(sorted(v)) if isinstance(v, set) else repr(v),
)
def test_change_with_zero_or_negative_values(
    store: Engine, condition: Condition, expected: set[str]
) -> None:
    fill(store, VALUES)
    sql, python = decided(store, BALANCE, condition)
    assert sql == expected
    assert python == expected


def test_plausibility_bounds_still_come_first(store: Engine) -> None:
    """With the shipped dictionary's ``aum: valid: {min: 0}`` a negative current AUM is
    implausible, reads as empty, and so no change is measured from it."""
    fill(store, VALUES)
    sql, python = decided(store, SHIPPED, percent("lte", -30))
    assert sql == python == {"to_zero"}


def test_explain_shows_the_drop_into_the_red_and_why_a_percentage_is_undefined(
    store: Engine,
) -> None:
    fill(store, VALUES)
    details = {}
    with store.connect() as conn:
        condition = percent("lte", -30)
        facts = load_related(conn, BALANCE, condition, list(VALUES), CLOCK)
    for cid, (_then, now) in VALUES.items():
        step = trace(condition, {"aum": now}, BALANCE, CLOCK, facts[cid])
        details[cid] = (step.holds, step.detail)
    assert details["into_red"] == (True, "55,741.80 on 2026-10-01 → -3,221.20 now: -105.8%")
    holds, detail = details["from_red"]
    assert not holds and "percent change undefined" in detail and "-500 on 2026-10-01" in detail
    holds, detail = details["no_history"]
    assert not holds and "no AUM change value on or before 2026-10-24" in detail


# --- SQL and the reference evaluator agree on signs ------------------------------------------

SIGNED = [-55_741.8, -3_221.2, -1.0, -0.01, 0.0, 0.01, 1.0, 3_221.2, 55_741.8]


@pytest.fixture(scope="module", params=BACKENDS)
def signed_store(request: Any, tmp_path_factory: Any) -> Iterator[Engine]:
    """Every pair of earlier and current values drawn from SIGNED, one customer each."""
    cleanup = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('signed') / 's.db'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = cluster.create_database()
        url, cleanup = cluster.url(name), (cluster, name)
    engine = open_store(url)
    values: dict[str, tuple[float | None, float]] = {
        f"C{i:02d}{j:02d}": (then, now)
        for i, then in enumerate(SIGNED)
        for j, now in enumerate(SIGNED)
    }
    values |= {f"N{j:02d}": (None, now) for j, now in enumerate(SIGNED)}
    fill(engine, values)
    yield engine
    engine.dispose()
    if cleanup:
        cleanup[0].drop_database(cleanup[1])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_signed_changes_sql_and_python_agree(signed_store: Engine, data: st.DataObject) -> None:
    measure = data.draw(st.sampled_from(["percent", "amount"]), label="measure")
    op = data.draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "between"]), label="op")
    pool = [-200, -105.78, -100, -30, 0, 30, 100] if measure == "percent" else [-58_963, -1, 0, 1]
    a, b = data.draw(st.sampled_from(pool)), data.draw(st.sampled_from(pool))
    value = (min(a, b), max(a, b)) if op == "between" else a
    condition: Condition = Change(
        "aum_change", dt.timedelta(days=30), measure, FieldTest(measure, op, value)
    )
    if data.draw(st.booleans(), label="negated"):
        condition = Not(condition)
    sql, python = decided(signed_store, BALANCE, condition)
    assert sql == python
