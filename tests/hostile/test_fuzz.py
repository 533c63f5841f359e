"""Hypothesis fuzzers: mutated shipped playbooks and mutated customer rows.

A mutated playbook is validated from its text as an editor would save it: whatever the mutation
(a value of the wrong type, a payload, infinity, a deleted key, deeper nesting), the validator
returns a playbook or located diagnostics, never an exception. A mutated customer row is run
through the real executor beside its neighbours: the run never fails, and the neighbours are
decided exactly as before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from corpus import ESCAPES, PAYLOADS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from support import AS_OF, AS_OF_DATE, SETTINGS, dictionary, validator

from engine.core.clock import Clock
from engine.core.yamlfile import load_text
from engine.demo.generator import generate
from engine.execution.executor import Executor
from engine.execution.sinks import RecordingSink
from engine.playbook.model import Playbook
from engine.store.db import open_store

SHIPPED = sorted(SETTINGS.playbooks_dir.glob("*.yaml"))

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(PAYLOADS + ESCAPES[:12] + ["{{ 1/0 }}", "{% include 'x.j2' %}", "0755"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    if not path:
        return value if how == "replace" else {"not": data} if how == "wrap" else [data]
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if how == "replace":
        parent[key] = value
    elif how == "delete":
        del parent[key]
    elif how == "wrap":
        parent[key] = {"not": parent[key]} if isinstance(parent, dict) else [parent[key]]
    else:  # nest: the same value many levels down
        inner = parent[key]
        for _ in range(20):
            inner = {"all": [inner]}
        parent[key] = inner
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    file=st.sampled_from(SHIPPED),
    pick=st.integers(min_value=0, max_value=10_000),
    how=st.sampled_from(["replace", "delete", "wrap", "nest"]),
    value=junk,
)
def test_a_mutated_playbook_is_a_playbook_or_located_errors(
    file: Path, pick: int, how: str, value: Any
) -> None:
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    paths = _paths(data)
    path = paths[pick % len(paths)]
    mutated = _mutate(copy.deepcopy(data), path, how, value)
    text_ = yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False)
    playbook, diagnostics = VALIDATOR.validate_document(load_text(text_, str(file)))
    errors = [d for d in diagnostics if d.severity == "error"]
    assert (playbook is None) == bool(errors)
    for d in errors:
        assert d.file == str(file) and d.line >= 1 and d.col >= 1
        assert d.code != "PB0099", (path, how, value, d.message)


VALIDATOR = validator()
DICTIONARY = dictionary()

# --- rows --------------------------------------------------------------------------------------

COLUMNS = [
    "aum", "avg_daily_deposit", "phone", "email", "name", "gender", "birth_date", "tier",
    "birthday_calendar", "last_active_at", "opened_on", "lifecycle_stage", "relationship_level",
]  # fmt: skip
FUZZED_PLAYBOOKS = (
    "vip-inactive-60d",
    "birthday-greeting",
    "tier-upgrade-opportunity",
    "new-customer-welcome",
    "dormant-winback-call",
)


FUZZED = [
    p
    for p in VALIDATOR.validate_paths([SETTINGS.playbooks_dir]).playbooks
    if p.id in FUZZED_PLAYBOOKS
]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'demo.db'}"
    engine = open_store(url)
    generate(engine, customers=400, seed=5, as_of=AS_OF_DATE)
    yield engine
    engine.dispose()


def _decide(executor: Executor, playbooks: list[Playbook], ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in playbooks:
        sink = RecordingSink(mask=False)
        outcome = executor.execute(
            p, Clock.at(AS_OF, SETTINGS.timezone), sink, keep_details=True, customer_ids=ids
        )
        assert outcome.error is None
        for d in outcome.decisions:
            out[f"{p.id}/{d.customer_id}"] = (
                sorted((e.kind, repr(sorted(e.row.items()))) for e in d.effects),
                sorted(d.suppressed, key=str),
            )
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(row=st.integers(min_value=0, max_value=399), column=st.sampled_from(COLUMNS), value=junk)
def test_a_mutated_row_changes_no_neighbours_decision(
    small_store: Engine, row: int, column: str, value: Any
) -> None:
    if isinstance(value, list | dict):
        value = repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
        value = str(value)  # SQLite's integers are 64-bit: as text, the way an export would
    with small_store.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM customers ORDER BY id")]
    if value is None or (isinstance(value, float) and value != value):
        value = ""  # the demo store's columns are mostly NOT NULL (SQLite stores NaN as NULL)
    victim = ids[row]
    neighbours = ids[max(0, row - 3) : row] + ids[row + 1 : row + 4]
    executor = Executor(small_store, SETTINGS, DICTIONARY, VALIDATOR.renderer)
    before = _decide(executor, FUZZED, [victim, *neighbours])
    with small_store.begin() as conn:
        original = conn.execute(
            text(f"SELECT {column} FROM customers WHERE id = :id"), {"id": victim}
        ).scalar_one()
        conn.execute(text(f"UPDATE customers SET {column} = :v WHERE id = :id"),
                     {"v": value, "id": victim})  # fmt: skip
    try:
        after = _decide(executor, FUZZED, [victim, *neighbours])
    finally:
        with small_store.begin() as conn:
            conn.execute(text(f"UPDATE customers SET {column} = :v WHERE id = :id"),
                         {"v": original, "id": victim})  # fmt: skip

    def others(decisions: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in decisions.items() if not k.endswith(f"/{victim}")}

    assert others(after) == others(before)
