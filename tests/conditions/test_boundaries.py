"""Relative-date operators on their boundary day (date fields) and boundary instant (datetime
fields), on SQLite and PostgreSQL, in SQL and in the reference evaluator.

The table in docs/playbooks.md ("Boundaries") is this module's expectations written out:
``older_than`` excludes the boundary, ``at_least`` includes it, ``within_last`` / ``at_most``
and ``within_next`` include both their ends. Existing operators keep their meaning: a playbook
written against them decides as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from support import AS_OF, BACKENDS, TZ

from engine.conditions.ast import EVERYONE, RELATIVE_OPERATORS, Condition, Not, Related
from engine.conditions.ast import Test as FieldTest
from engine.conditions.evaluate import evaluate
from engine.conditions.explain import trace
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary, Field, RelatedTable
from engine.store.db import open_store
from engine.store.models import branches, customers, metadata, transactions

CLOCK = Clock.at(AS_OF, TZ)  # 2026-11-23 09:00 local
TODAY, NOW = CLOCK.today, CLOCK.now
N = 60
SPAN = dt.timedelta(days=N)

# one date field and one datetime field, over the customers table, without plausibility
# bounds: dates after the run date are needed for within_next
BOUNDARY = DataDictionary(
    fields={
        "day": Field(key="day", type="date", label="日期", name="Day", column="opened_on"),
        "moment": Field(
            key="moment", type="datetime", label="时刻", name="Moment", column="last_active_at"
        ),
    },
    related={
        "transactions": RelatedTable(
            key="transactions",
            label="交易",
            name="Transactions",
            table="transactions",
            link="customer_id",
            columns={
                "occurred_on": Field(
                    key="occurred_on", type="datetime", label="交易时间", name="At",
                    column="occurred_at",
                ),
            },
        )
    },
)  # fmt: skip


def fill(store: Engine, rows: list[tuple[str, dt.date, dt.datetime | None]]) -> None:
    """Customers (id, day, moment): only the columns the test reads, the rest required fill."""
    with store.begin() as conn:
        metadata.create_all(conn)  # foreign keys need their tables
        conn.execute(branches.insert(), [{"id": "B1", "name": "一支行", "city": "北京"}])
        conn.execute(
            customers.insert(),
            [
                {"id": cid, "name": cid, "branch_id": "B1", "tier": "mass", "opened_on": day,
                 "last_active_at": moment, "lifecycle_stage": "mature"}
                for cid, day, moment in rows
            ],
        )  # fmt: skip


def sql_ids(store: Engine, condition: Condition, clock: Clock = CLOCK) -> set[str]:
    query = SqlCompiler(BOUNDARY, clock).audience(condition, [])
    with store.connect() as conn:
        return {str(r[0]) for r in conn.execute(query)}


def python_ids(
    rows: list[tuple[str, dt.date, dt.datetime | None]], condition: Condition, clock: Clock = CLOCK
) -> set[str]:
    return {
        cid
        for cid, day, moment in rows
        if evaluate(condition, {"day": day, "moment": moment}, BOUNDARY, clock)
    }


# (customer, days before the run date) for date fields: day N-1, N and N+1 before today, and
# the same after today for within_next
DAYS = {"before_59": -59, "before_60": -60, "before_61": -61, "today": 0,
        "after_59": 59, "after_60": 60, "after_61": 61}  # fmt: skip
# datetime: the boundary instant now - 60d, a second either side, and whole days either side
MOMENTS = {
    "before_59d": NOW - dt.timedelta(days=59),
    "before_60d_plus_1s": NOW - SPAN + dt.timedelta(seconds=1),
    "before_60d": NOW - SPAN,
    "before_60d_minus_1s": NOW - SPAN - dt.timedelta(seconds=1),
    "before_61d": NOW - dt.timedelta(days=61),
    "now": NOW,
    "after_60d_minus_1s": NOW + SPAN - dt.timedelta(seconds=1),
    "after_60d": NOW + SPAN,
    "after_60d_plus_1s": NOW + SPAN + dt.timedelta(seconds=1),
}

# operator -> the customers it selects with 60d; what docs/playbooks.md's table says
DATE_EXPECTED = {
    "older_than": {"before_61"},
    "at_least": {"before_60", "before_61"},
    "at_most": {"before_59", "before_60", "today"},
    "within_last": {"before_59", "before_60", "today"},
    "within_next": {"today", "after_59", "after_60"},
}
DATETIME_EXPECTED = {
    "older_than": {"before_60d_minus_1s", "before_61d"},
    "at_least": {"before_60d", "before_60d_minus_1s", "before_61d"},
    "at_most": {"before_59d", "before_60d_plus_1s", "before_60d", "now"},
    "within_last": {"before_59d", "before_60d_plus_1s", "before_60d", "now"},
    "within_next": {"now", "after_60d_minus_1s", "after_60d"},
}


def test_expectations_cover_every_relative_operator() -> None:
    assert set(DATE_EXPECTED) == set(DATETIME_EXPECTED) == set(RELATIVE_OPERATORS)


@pytest.mark.parametrize("op", RELATIVE_OPERATORS)
def test_date_field_on_the_boundary_day(store: Engine, op: str) -> None:
    rows = [(cid, TODAY + dt.timedelta(days=d), None) for cid, d in DAYS.items()]
    fill(store, rows)
    condition = FieldTest("day", op, SPAN)
    assert sql_ids(store, condition) == DATE_EXPECTED[op]
    assert python_ids(rows, condition) == DATE_EXPECTED[op]


@pytest.mark.parametrize("op", RELATIVE_OPERATORS)
def test_datetime_field_on_the_boundary_instant(store: Engine, op: str) -> None:
    rows = [(cid, TODAY, moment) for cid, moment in MOMENTS.items()]
    fill(store, rows)
    condition = FieldTest("moment", op, SPAN)
    assert sql_ids(store, condition) == DATETIME_EXPECTED[op]
    assert python_ids(rows, condition) == DATETIME_EXPECTED[op]


def test_at_least_is_older_than_one_day_less_on_dates(store: Engine) -> None:
    """The workaround staff used (``older_than: 59d`` for "60 days or more") and the new
    words select the same customers; and ``at_least`` is the negation of ``at_most`` one day
    shorter, among days up to today."""
    rows = [(f"d{k:+04d}", TODAY + dt.timedelta(days=k), None) for k in range(-65, 1)]
    fill(store, rows)
    at_least = sql_ids(store, FieldTest("day", "at_least", SPAN))
    assert at_least == sql_ids(store, FieldTest("day", "older_than", dt.timedelta(days=59)))
    shorter = sql_ids(store, FieldTest("day", "at_most", dt.timedelta(days=59)))
    assert at_least == {cid for cid, _, _ in rows} - shorter
    assert len(at_least) == 6  # 60 … 65 days ago


def test_no_transaction_for_60_days_or_more(store: Engine) -> None:
    """The issue's case: a transaction exactly 60 days ago is recent for ``within_last: 60d``
    (both ends included) and not for ``at_most: 59d``; ``max … at_least: 60d`` says "the last
    one was 60 days ago or more" directly."""
    moments = {"last_60d_ago": NOW - SPAN, "last_61d_ago": NOW - dt.timedelta(days=61),
               "last_59d_ago": NOW - dt.timedelta(days=59)}  # fmt: skip
    fill(store, [(cid, TODAY, None) for cid in moments])
    with store.begin() as conn:
        conn.execute(
            transactions.insert(),
            [{"customer_id": cid, "occurred_at": at, "kind": "deposit", "amount": 1.0,
              "channel": "counter"} for cid, at in moments.items()],
        )  # fmt: skip

    def none_within(op: str, days: int) -> Condition:
        test = FieldTest("occurred_on", op, dt.timedelta(days=days))
        return Related("transactions", "none", test)

    assert sql_ids(store, none_within("within_last", 60)) == {"last_61d_ago"}
    assert sql_ids(store, none_within("at_most", 59)) == {"last_60d_ago", "last_61d_ago"}
    last = Related(
        "transactions", "max", EVERYONE, "occurred_on",
        FieldTest("occurred_on", "at_least", SPAN),
    )  # fmt: skip
    assert sql_ids(store, last) == {"last_60d_ago", "last_61d_ago"}


# --- SQL and the reference evaluator agree near the boundary ----------------------------------

OFFSETS = range(-75, 76)
CLOCKS = st.tuples(st.integers(-36, 36), st.sampled_from([0, 1, 59, 3599])).map(
    lambda p: Clock.at(AS_OF + dt.timedelta(hours=p[0], seconds=p[1]), TZ)
)
SPANS = st.one_of(
    st.integers(1, 75).map(lambda d: dt.timedelta(days=d)),
    st.integers(1, 72).map(lambda h: dt.timedelta(hours=h)),
)


def near_boundaries() -> list[tuple[str, dt.date, dt.datetime | None]]:
    """A customer for every day from 75 before to 75 after the run date, its moment on that
    day at a time that falls a second either side of midnight or at the run's own minute."""
    times = [dt.time(0, 0), dt.time(0, 0, 1), dt.time(9, 0), dt.time(23, 59, 59)]
    rows: list[tuple[str, dt.date, dt.datetime | None]] = []
    for i, k in enumerate(OFFSETS):
        day = TODAY + dt.timedelta(days=k)
        moment = dt.datetime.combine(day, times[i % len(times)]) if i % 9 else None
        rows.append((f"C{i:04d}", day, moment))
    return rows


@pytest.fixture(scope="module", params=BACKENDS)
def boundary_store(request: Any, tmp_path_factory: Any) -> Iterator[Engine]:
    """A store of :func:`near_boundaries` customers, once per backend for the whole module
    (Hypothesis runs its examples inside one test call)."""
    cleanup = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('boundary') / 'b.db'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = cluster.create_database()
        url, cleanup = cluster.url(name), (cluster, name)
    engine = open_store(url)
    fill(engine, near_boundaries())
    yield engine
    engine.dispose()
    if cleanup:
        cleanup[0].drop_database(cleanup[1])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_relative_operators_sql_and_python_agree(
    boundary_store: Engine, data: st.DataObject
) -> None:
    """The new ``at_least`` / ``at_most`` beside the old operators, negated or not, at run
    times around midnight: the database and the reference evaluator pick the same rows."""
    op = data.draw(st.sampled_from(RELATIVE_OPERATORS), label="op")
    field = data.draw(st.sampled_from(["day", "moment"]), label="field")
    span = data.draw(SPANS, label="span")
    if field == "day":
        span = dt.timedelta(days=max(span.days, 1))
    clock = data.draw(CLOCKS, label="clock")
    condition: Condition = FieldTest(field, op, span)
    if data.draw(st.booleans(), label="negated"):
        condition = Not(condition)
    rows = near_boundaries()
    assert sql_ids(boundary_store, condition, clock) == python_ids(rows, condition, clock)


def test_explain_says_whether_the_boundary_counts() -> None:
    day = {"day": TODAY - SPAN, "moment": None}
    at_least = trace(FieldTest("day", "at_least", SPAN), day, BOUNDARY, CLOCK)
    older = trace(FieldTest("day", "older_than", SPAN), day, BOUNDARY, CLOCK)
    assert at_least.holds and at_least.detail == "2026-09-24 is on or before 2026-09-24"
    assert not older.holds and older.detail == "2026-09-24 is not before 2026-09-24"
    recent = trace(FieldTest("day", "at_most", SPAN), day, BOUNDARY, CLOCK)
    assert recent.holds and recent.detail.endswith("2026-09-24 … 2026-11-23 (both included)")
