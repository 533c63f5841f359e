"""Customer data that is empty, malformed or implausible never crashes a run: the condition
is simply false for that customer (the same in SQL and in the reference evaluator), and the
run report counts such rows per field.

On both backends: no birthday, a birthday in the future and a negative AUM (outside the data
dictionary's ``valid:`` bounds). On SQLite, which keeps whatever was written, also text where
a date or a number belongs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support import AS_OF, SETTINGS, TZ, dictionary, validator

from engine.conditions.ast import EVERYONE, Condition
from engine.conditions.evaluate import evaluate
from engine.conditions.facts import load_related
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DictionaryError, Validity, load_dictionary
from engine.core.yamlfile import load_text
from engine.execution.executor import Executor, by_priority
from engine.execution.explain import Explainer
from engine.execution.sinks import RecordingSink, StoreSink
from engine.playbook.model import Playbook
from engine.reports.dryrun import report_json, report_text
from engine.store.db import open_store
from engine.store.models import run_data_issues
from engine.triggers.schedule import Schedule

DICTIONARY = dictionary()
CLOCK = Clock.at(AS_OF, TZ)
SCALARS = [f for f in DICTIONARY if f.type != "tags"]

# (customer, column, value): typed values any database can hold
IMPLAUSIBLE = [
    ("C0000000001", "birth_date", None),
    ("C0000000002", "birth_date", dt.date(2031, 11, 23)),  # a birthday in the future
    ("C0000000003", "aum", -5000.0),
    ("C0000000004", "last_active_at", None),
]
# what only SQLite keeps: text that is not a value of the column's type
MALFORMED = [
    ("C0000000005", "birth_date", "not-a-date"),
    ("C0000000006", "birth_date", "2026-02-30"),
    ("C0000000007", "aum", "abc"),
    ("C0000000008", "last_active_at", "yesterday"),
    ("C0000000009", "opened_on", "31/12/2020"),
]
BAD_IDS = sorted({c for c, _, _ in IMPLAUSIBLE + MALFORMED})


def audiences() -> dict[str, Condition]:
    return {name: p.audience for name, p in bad_data_playbooks().items()}


def bad_data_playbooks() -> dict[str, Playbook]:
    """Playbooks over the damaged fields, through the validator as staff would write them."""
    texts = {
        "birthday": "birth_date: {anniversary: true}",
        "born_before": "birth_date: {lt: 2000-01-01}",
        "born_after": "birth_date: {gte: 1900-01-01}",
        "rich": "aum: {gte: 0}",
        "aum_between": "aum: {between: [-1000000, 100000000]}",
        "aum_drop": "aum_change: {over: 60d, percent: {lte: 0}}",
        "inactive": "last_active_at: {older_than: 1d}",
        "active": "last_active_at: {within_last: 3660d}",
        "opened": "opened_on: {in_past: true}",
        "not_rich": "not: {aum: {gte: 0}}",
        "no_birthday": "birth_date: {is_null: true}",
    }
    out = {}
    for name, body in texts.items():
        source = (
            f"id: {name.replace('_', '-')}\ntitle: t\ntrigger: {{schedule: '0 9 * * *'}}\n"
            f"audience:\n  {body}\nactions:\n  - tag: {{add: x}}\n"
        )
        playbook, diagnostics = validator().validate_document(load_text(source, f"{name}.yaml"))
        assert playbook is not None, [d.message for d in diagnostics]
        out[name] = playbook
    return out


@pytest.fixture(scope="module")
def store(demo_url: str) -> Iterator[Engine]:
    """The demo store with the damage above written in, and left in: every test here wants it
    damaged, and ``demo_url`` is this module's own copy (module scope), so no other module
    ever reads these rows."""
    engine = open_store(demo_url)
    try:
        damage = IMPLAUSIBLE + (MALFORMED if engine.dialect.name == "sqlite" else [])
        with engine.begin() as conn:
            for cid, column, value in damage:
                conn.execute(
                    text(f"UPDATE customers SET {column} = :v WHERE id = :id"),
                    {"v": value, "id": cid},
                )
            if engine.dialect.name == "sqlite":  # a malformed history row and holding
                conn.execute(
                    text("UPDATE aum_snapshots SET aum = 'n/a' WHERE customer_id = 'C0000000010'")
                )
                conn.execute(
                    text(
                        "UPDATE aum_snapshots SET month = 'soon-' || month "
                        "WHERE customer_id = 'C0000000011'"
                    )
                )
        yield engine
    finally:
        engine.dispose()


def customer_rows(store: Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        query = SqlCompiler(DICTIONARY, CLOCK).audience(EVERYONE, SCALARS)
        return [dict(r) for r in conn.execute(query).mappings()]


def test_damaged_values_read_as_empty_and_the_evaluators_agree(store: Engine) -> None:
    rows = customer_rows(store)  # would raise on 'not-a-date' if read raw
    by_id = {r["_key"]: r for r in rows}
    damaged = IMPLAUSIBLE + (MALFORMED if store.dialect.name == "sqlite" else [])
    for cid, column, _value in damaged:
        field = next(f.key for f in DICTIONARY if f.column == column)
        assert by_id[cid][field] is None, (cid, field)  # empty, implausible or malformed
    ids = [r["_key"] for r in rows]
    with store.connect() as conn:
        for name, condition in audiences().items():
            related = load_related(conn, DICTIONARY, condition, ids, CLOCK)
            python = {
                r["_key"]
                for r in rows
                if evaluate(condition, r, DICTIONARY, CLOCK, related[r["_key"]])
            }
            query = SqlCompiler(DICTIONARY, CLOCK).audience(condition, [])
            sql = {r[0] for r in conn.execute(query)}
            assert sql == python, name
            assert sql, name  # the audience finds someone: the test is not vacuous


def test_a_damaged_value_makes_its_conditions_false(store: Engine) -> None:
    found = audiences()
    rows = {r["_key"]: r for r in customer_rows(store)}
    with store.connect() as conn:
        sets = {
            name: {r[0] for r in conn.execute(SqlCompiler(DICTIONARY, CLOCK).audience(c, []))}
            for name, c in found.items()
        }
    assert "C0000000002" not in sets["birthday"] | sets["born_before"]  # born in 2031
    assert "C0000000001" not in sets["born_after"] and "C0000000001" in sets["no_birthday"]
    assert "C0000000002" not in sets["born_after"] and "C0000000002" in sets["no_birthday"]
    assert "C0000000003" not in sets["rich"] and "C0000000003" in sets["not_rich"]
    assert "C0000000003" not in sets["aum_between"]  # -5,000 is within it, but implausible
    assert "C0000000004" not in sets["inactive"] | sets["active"]
    if store.dialect.name == "sqlite":
        for cid in ("C0000000005", "C0000000006"):
            assert rows[cid]["birth_date"] is None
            assert cid not in sets["born_after"] | sets["born_before"] | sets["birthday"]
            assert cid in sets["no_birthday"]  # malformed reads as empty, consistently
        assert "C0000000007" not in sets["rich"] | sets["aum_between"]
        assert "C0000000008" not in sets["inactive"] | sets["active"]
        assert "C0000000009" not in sets["opened"]
        assert not {"C0000000010", "C0000000011"} & sets["aum_drop"]


def test_runs_never_crash_and_count_the_rows(store: Engine, tmp_path: Any) -> None:
    playbooks = [p for p in validator().validate_paths([SETTINGS.playbooks_dir]).playbooks]
    executor = Executor(store, SETTINGS, DICTIONARY, validator().renderer)
    scheduled = by_priority([p for p in playbooks if isinstance(p.trigger, Schedule)])
    with store.connect() as conn:
        query = "SELECT count(*) FROM customers WHERE last_active_at IS NULL"
        empty = conn.execute(text(query)).scalar_one()
    assert empty >= 1
    for evaluator in ("sql", "python"):
        outcomes = [
            executor.execute(p, CLOCK, RecordingSink(), keep_details=True, evaluator=evaluator)
            for p in scheduled
        ]
        vip = next(o for o in outcomes if o.playbook.id == "vip-inactive-60d")
        # vip-inactive-60d tests last_active_at: C0000000004 has none; on SQLite
        # C0000000008 holds 'yesterday'
        malformed = 1 if store.dialect.name == "sqlite" else 0
        assert vip.data_issues["last_active_at"] == {
            "empty": empty,
            "malformed": malformed,
            "implausible": 0,
        }
        report = report_json(AS_OF, outcomes, [])
        entry = next(p for p in report["playbooks"] if p["id"] == "vip-inactive-60d")
        assert entry["data_issues"] == vip.data_issues
        shown = f"! no usable value 无可用值: last_active_at {empty} empty"
        assert shown in report_text(AS_OF, outcomes, [])
    vip_playbook = next(p for p in scheduled if p.id == "vip-inactive-60d")
    run = executor.execute(vip_playbook, CLOCK, StoreSink(store))
    with store.connect() as conn:
        stored = {
            r.field: (r.empty, r.malformed, r.implausible)
            for r in conn.execute(
                run_data_issues.select().where(run_data_issues.c.run_id == run.run_id)
            )
        }
    assert stored == {
        k: (v["empty"], v["malformed"], v["implausible"]) for k, v in run.data_issues.items()
    }
    assert stored


def test_explain_shows_a_damaged_value_as_empty(store: Engine) -> None:
    playbooks = validator().validate_paths([SETTINGS.playbooks_dir]).playbooks
    explainer = Explainer(store, SETTINGS, DICTIONARY, validator().renderer)
    for cid in BAD_IDS:
        exp = explainer.explain(cid, playbooks, AS_OF)
        assert all(e.agrees for e in exp.playbooks)
    vip = [p for p in playbooks if p.id == "vip-inactive-60d"]
    entry = explainer.explain("C0000000004", vip, AS_OF).playbooks[0]
    assert entry.audience is not None and not entry.audience.holds
    details = [s.detail for s in entry.audience.children]
    assert any("empty 空: a comparison on an empty field is false" in d for d in details)
    if store.dialect.name == "sqlite":  # told apart from an empty one
        entry = explainer.explain("C0000000008", vip, AS_OF).playbooks[0]
        assert entry.audience is not None
        text = " ".join(s.detail for s in entry.audience.children)
        assert "malformed 格式错误 'yesterday', read as empty" in text


def test_implausible_values_are_counted_and_shown(store: Engine) -> None:
    """A birthday in the future and a negative AUM: counted as implausible per field in the
    outcome, the dry-run text and JSON, and the stored run; the run does not fail."""
    made = bad_data_playbooks()
    executor = Executor(store, SETTINGS, DICTIONARY, validator().renderer)
    with store.connect() as conn:
        # on SQLite 'not-a-date' sorts after every date, and 'abc' after every number
        future = conn.execute(
            text("SELECT count(*) FROM customers WHERE birth_date > :d AND birth_date <= :far"),
            {"d": CLOCK.today, "far": dt.date(9999, 12, 31)},
        ).scalar_one()
        negative = conn.execute(text("SELECT count(*) FROM customers WHERE aum < 0")).scalar_one()
    assert future >= 1 and negative >= 1
    for evaluator in ("sql", "python"):
        born = executor.execute(made["born_before"], CLOCK, RecordingSink(), evaluator=evaluator)
        rich = executor.execute(made["rich"], CLOCK, RecordingSink(), evaluator=evaluator)
        assert born.data_issues["birth_date"]["implausible"] == future
        assert rich.data_issues["aum"]["implausible"] == negative
        assert "C0000000003" not in {d.customer_id for d in rich.decisions}
        report = report_text(AS_OF, [born, rich], [])
        assert "! no usable value 无可用值: birth_date " in report
        assert re.search(rf"birth_date [^;\n]*\b{future} implausible", report), report
        assert re.search(rf"aum [^;\n]*\b{negative} implausible", report), report
        entry = report_json(AS_OF, [rich], [])["playbooks"][0]
        assert entry["data_issues"]["aum"]["implausible"] == negative
    run = executor.execute(made["rich"], CLOCK, StoreSink(store))
    with store.connect() as conn:
        stored = conn.execute(
            run_data_issues.select().where(
                run_data_issues.c.run_id == run.run_id, run_data_issues.c.field == "aum"
            )
        ).one()
    assert stored.implausible == negative


def test_a_later_run_date_makes_a_future_birthday_plausible(store: Engine) -> None:
    """``not_after: today`` is the run's date: as of 2032 the 2031 birthday is a value."""
    later = Clock.at(dt.datetime(2032, 1, 5, 9), TZ)
    condition = audiences()["born_after"]
    with store.connect() as conn:
        now = {r[0] for r in conn.execute(SqlCompiler(DICTIONARY, CLOCK).audience(condition, []))}
        then = {r[0] for r in conn.execute(SqlCompiler(DICTIONARY, later).audience(condition, []))}
    assert "C0000000002" not in now and "C0000000002" in then


def test_explain_says_why_an_implausible_value_is_not_used(store: Engine) -> None:
    made = bad_data_playbooks()
    explainer = Explainer(store, SETTINGS, DICTIONARY, validator().renderer)
    for cid, name, shown in (
        ("C0000000002", "born_before", "implausible 不合理 2031-11-23 (after today"),
        ("C0000000003", "rich", "implausible 不合理 -5,000.00 (below the minimum 0)"),
    ):
        exp = explainer.explain(cid, [made[name]], AS_OF)
        entry = exp.playbooks[0]
        assert entry.agrees and entry.audience is not None and not entry.audience.holds
        assert shown in entry.audience.detail + " ".join(s.detail for s in entry.audience.children)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{type: date, column: d, valid: {min: 0}}", "not_before and/or not_after"),
        ("{type: money, column: m, valid: {not_after: today}}", "min and/or max"),
        ("{type: money, column: m, valid: {min: zero}}", "valid.min must be a number"),
        ("{type: money, column: m, valid: {min: 5, max: 1}}", "valid.min 5 is above"),
        ("{type: date, column: d, valid: {not_after: tomorrow}}", "a date (2000-01-01) or today"),
        ("{type: date, column: d, valid: {not_before: today}}", "a date (1900-01-01)"),
        ("{type: string, column: s, valid: {min: 0}}", "not on a string field"),
        ("{type: money, sql: '1', valid: {min: 0}}", "put the bound into the expression"),
    ],
)
def test_wrong_bounds_are_a_located_dictionary_error(
    tmp_path: Any, spec: str, expected: str
) -> None:
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(f"fields:\n  x: {spec}\n", encoding="utf-8")
    with pytest.raises(DictionaryError) as caught:
        load_dictionary(path)
    assert caught.value.code == "E0216"
    assert expected in str(caught.value)
    assert caught.value.where == f"{path}: fields.x.valid"


def test_bounds_are_read_from_the_dictionary(tmp_path: Any) -> None:
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(
        "fields:\n"
        "  born: {type: date, column: b, valid: {not_before: 1900-01-01, not_after: today}}\n"
        "  level: {type: integer, column: l, valid: {min: 1, max: 5}}\n",
        encoding="utf-8",
    )
    d = load_dictionary(path)
    assert d.fields["born"].valid == Validity(not_before=dt.date(1900, 1, 1), not_after="today")
    assert d.fields["level"].valid == Validity(min=1.0, max=5.0)
    # NUMERIC(18,2)'s largest value: an infinity (or NaN) in the column reads as implausible
    assert DICTIONARY.fields["aum"].valid == Validity(min=0.0, max=9999999999999999.99)
    assert DICTIONARY.fields["birth_date"].valid == Validity(not_after="today")
