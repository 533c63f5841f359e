"""The SQL compiler and the Python reference evaluator agree on every condition tree.

Hypothesis draws condition trees over the data dictionary, with values taken from the demo
store so equalities and thresholds actually hit, and a run time near the store's anchor date.
Both sides run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from support import AS_OF, BACKENDS, TZ, demo_store_url, dictionary

from engine.conditions.ast import EVERYONE, All, AnyOf, Condition, Not
from engine.conditions.ast import Test as FieldTest
from engine.conditions.clock import Clock
from engine.conditions.evaluate import evaluate
from engine.conditions.sql import SqlCompiler
from engine.dictionary import DataDictionary
from engine.store.db import open_store
from engine.store.models import customer_tags

DICTIONARY = dictionary()
SCALARS = [f for f in DICTIONARY if f.type != "tags"]


@pytest.fixture(scope="module", params=BACKENDS)
def demo_url(request: Any, tmp_path_factory: Any) -> Iterator[str]:
    yield from demo_store_url(request, tmp_path_factory)


@pytest.fixture(scope="module")
def store(demo_url: str) -> Iterator[Engine]:
    engine = open_store(demo_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def customers(store: Engine) -> list[dict[str, Any]]:
    """Every customer's values, read once (fine for a 1,500-customer test store)."""
    query = SqlCompiler(DICTIONARY, Clock(AS_OF)).audience(EVERYONE, SCALARS)
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        tags: dict[str, set[str]] = {}
        for cid, tag in conn.execute(select(customer_tags.c.customer_id, customer_tags.c.tag)):
            tags.setdefault(cid, set()).add(tag)
    for r in rows:
        r["tags"] = tags.get(r["_key"], set())
    return rows


def sql_ids(store: Engine, condition: Condition, clock: Clock) -> list[str]:
    query = SqlCompiler(DICTIONARY, clock).audience(condition, [])
    with store.connect() as conn:
        return [r[0] for r in conn.execute(query)]


def python_ids(rows: list[dict[str, Any]], condition: Condition, clock: Clock) -> list[str]:
    return sorted(r["_key"] for r in rows if evaluate(condition, r, DICTIONARY, clock))


# --- strategies ---------------------------------------------------------------------------------

DURATIONS = st.integers(1, 400).map(lambda d: dt.timedelta(days=d)) | st.integers(1, 72).map(
    lambda h: dt.timedelta(hours=h)
)


def pick(values: list[Any]) -> st.SearchStrategy[Any]:
    """Like sampled_from, but without putting the whole list into every repr."""
    return st.integers(0, len(values) - 1).map(lambda i: values[i])


def field_tests(rows: list[dict[str, Any]], d: DataDictionary) -> st.SearchStrategy[FieldTest]:
    options = []
    for f in d:
        seen = [r[f.key] for r in rows if r.get(f.key) is not None]
        if f.type == "tags":
            vocabulary = sorted({t for r in rows for t in r["tags"]} | {"不存在的标签"})
            tag = pick(vocabulary)
            options.append(
                st.one_of(
                    tag.map(lambda v, k=f.key: FieldTest(k, "contains", v)),
                    st.lists(tag, min_size=1, max_size=3).map(
                        lambda vs, k=f.key: FieldTest(k, "in", tuple(vs))
                    ),
                    st.lists(tag, min_size=1, max_size=3).map(
                        lambda vs, k=f.key: FieldTest(k, "not_in", tuple(vs))
                    ),
                )
            )
            continue
        if not seen:
            continue
        value = pick(seen)
        null = st.booleans().map(lambda b, k=f.key: FieldTest(k, "is_null", b))
        if f.type in ("enum", "string"):
            choices = pick(sorted(set(f.values) | set(map(str, seen))))
            ops = [
                choices.map(lambda v, k=f.key: FieldTest(k, "eq", v)),
                choices.map(lambda v, k=f.key: FieldTest(k, "ne", v)),
                st.lists(choices, min_size=1, max_size=3).map(
                    lambda vs, k=f.key: FieldTest(k, "in", tuple(vs))
                ),
                st.lists(choices, min_size=1, max_size=3).map(
                    lambda vs, k=f.key: FieldTest(k, "not_in", tuple(vs))
                ),
                null,
            ]
            if f.type == "string":
                ops.append(
                    value.map(lambda v, k=f.key: FieldTest(k, "contains", str(v)[1:3] or str(v)))
                )
            options.append(st.one_of(*ops))
        elif f.type in ("integer", "money", "number", "date", "datetime"):
            ops = [
                value.map(lambda v, k=f.key, o=o: FieldTest(k, o, v))
                for o in ("eq", "ne", "gt", "gte", "lt", "lte")
            ]
            ops.append(
                st.tuples(value, value).map(
                    lambda p, k=f.key: FieldTest(k, "between", (min(p), max(p)))
                )
            )
            ops.append(null)
            if f.type in ("date", "datetime"):
                span = (
                    DURATIONS
                    if f.type == "datetime"
                    else DURATIONS.filter(lambda s: s % dt.timedelta(days=1) == dt.timedelta(0))
                )
                for o in ("older_than", "within_last", "within_next"):
                    ops.append(span.map(lambda s, k=f.key, o=o: FieldTest(k, o, s)))
            options.append(st.one_of(*ops))
    return st.one_of(*options)


def conditions(rows: list[dict[str, Any]]) -> st.SearchStrategy[Condition]:
    leaves = field_tests(rows, DICTIONARY)
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda cs: All(tuple(cs))),
            st.lists(children, min_size=1, max_size=3).map(lambda cs: AnyOf(tuple(cs))),
            children.map(Not),
        ),
        max_leaves=6,
    )


CLOCKS = st.integers(-3 * 24, 3 * 24).map(
    lambda h: Clock.at(AS_OF + dt.timedelta(hours=h, minutes=17), TZ)
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_sql_and_python_agree(
    store: Engine, customers: list[dict[str, Any]], data: st.DataObject
) -> None:
    condition = data.draw(conditions(customers), label="condition")
    clock = data.draw(CLOCKS, label="clock")
    assert sql_ids(store, condition, clock) == python_ids(customers, condition, clock)


def test_shipped_audience_hits_and_agrees(store: Engine, customers: list[dict[str, Any]]) -> None:
    """The first playbook's audience: non-empty on the demo store, and both sides agree."""
    condition = All(
        (
            FieldTest("tier", "in", ("vip", "private")),
            FieldTest("last_active_at", "older_than", dt.timedelta(days=60)),
            Not(FieldTest("tags", "contains", "已流失")),
        )
    )
    clock = Clock(AS_OF)
    ids = sql_ids(store, condition, clock)
    assert ids == python_ids(customers, condition, clock)
    assert len(ids) > 0


def test_empty_field_semantics(store: Engine, customers: list[dict[str, Any]]) -> None:
    """An empty e-mail fails 'eq' and passes 'ne' and 'not: eq' alike."""
    clock = Clock(AS_OF)
    no_email = {r["_key"] for r in customers if r["email"] is None}
    assert no_email, "the demo store should have customers without e-mail"
    ne = set(sql_ids(store, FieldTest("email", "ne", "x@example.com"), clock))
    negated = set(sql_ids(store, Not(FieldTest("email", "eq", "x@example.com")), clock))
    assert no_email <= ne and ne == negated
    assert not no_email & set(sql_ids(store, FieldTest("email", "contains", "@"), clock))


def test_values_are_bound_parameters_not_sql_text(store: Engine) -> None:
    query = SqlCompiler(DICTIONARY, Clock(AS_OF)).audience(
        FieldTest("occupation", "eq", "'; DROP TABLE customers; --"), []
    )
    compiled = query.compile(store)
    assert "DROP TABLE" not in str(compiled)
    assert "'; DROP TABLE customers; --" in compiled.params.values()
    assert (
        sql_ids(store, FieldTest("occupation", "eq", "'; DROP TABLE customers; --"), Clock(AS_OF))
        == []
    )
