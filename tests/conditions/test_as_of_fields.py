"""Dictionary fields whose SQL reads the run's clock (``:as_of``, ``:as_of_time``).

A bank keeps dated balances; "the balance as of the run date" is one field whose SQL names
``:as_of``, bound from the run's clock wherever field SQL is compiled: the audience, the
values the reference evaluator and explain read, a dry-run for any day. Before, a past-dated
dry-run needed one hand-written field per date. An unknown parameter is refused at load, at
its line and column (E0520).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support import REPO, SETTINGS, TZ

from engine.conditions.ast import EVERYONE
from engine.conditions.ast import Test as FieldTest
from engine.conditions.evaluate import evaluate
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import (
    DataDictionary,
    DictionaryError,
    load_dictionary,
    sql_parameters,
)
from engine.core.settings import Settings
from engine.execution.executor import Executor
from engine.execution.explain import Explainer
from engine.execution.sinks import RecordingSink
from engine.playbook.validation import Validator
from engine.store.db import open_store

AS_OF_FIELDS = """\
fields:
  aum_as_of:
    type: money
    label: 运行日资产
    name: AUM as of the run date
    sql: "(SELECT s.aum FROM aum_snapshots s WHERE s.customer_id = customers.id AND s.month <= :as_of ORDER BY s.month DESC LIMIT 1)"
  active_by_run_time:
    type: boolean
    label: 运行时刻前活跃过
    name: Active before the run time
    sql: "(customers.last_active_at <= :as_of_time)"
"""  # noqa: E501
PLAYBOOK = """\
id: rich-as-of
title: 运行日资产五十万以上
trigger: {schedule: "0 9 * * *"}
audience:
  aum_as_of: {gte: 500000}
actions:
  - task: {assignee: manager, kind: call, title: "回访"}
"""
DAYS = (dt.date(2026, 11, 23), dt.date(2026, 6, 15))
THRESHOLD = 500_000


def deployment(root: Path) -> Settings:
    """A deployment folder: the shipped dictionary plus the two clock-reading fields, one
    playbook over them, the shipped templates and policy."""
    shipped = SETTINGS.dictionary_path.read_text(encoding="utf-8")
    (root / "schemas").mkdir()
    with_fields = shipped.replace("fields:\n", AS_OF_FIELDS, 1)
    (root / "schemas" / "data_dictionary.yaml").write_text(with_fields, encoding="utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "rich-as-of.yaml").write_text(PLAYBOOK, encoding="utf-8")
    for shared in ("templates", "config"):
        (root / shared).symlink_to(REPO / shared)
    return Settings(root=root)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: Any) -> Settings:
    return deployment(tmp_path_factory.mktemp("as_of"))


def at(day: dt.date) -> Clock:
    return Clock.at(dt.datetime.combine(day, dt.time(9)), TZ)


def expected(store: Engine, day: dt.date) -> dict[str, float | None]:
    """Each customer's latest snapshot on or before ``day``, worked out in Python."""
    latest: dict[str, tuple[dt.date, float]] = {}
    with store.connect() as conn:
        ids = [str(r[0]) for r in conn.execute(text("SELECT id FROM customers"))]
        for cid, month, aum in conn.execute(
            text("SELECT customer_id, month, aum FROM aum_snapshots")
        ):
            month = month if isinstance(month, dt.date) else dt.date.fromisoformat(month)
            if month <= day and (cid not in latest or month > latest[cid][0]):
                latest[cid] = (month, float(aum))
    return {cid: latest[cid][1] if cid in latest else None for cid in ids}


def test_as_of_on_two_days_gives_each_days_values(
    shared_demo_store: Engine, settings: Settings
) -> None:
    """The audience (SQL), the values the reference evaluator reads and a whole dry-run, on
    two run dates: each day's own snapshot, and the two days differ."""
    d = load_dictionary(settings.dictionary_path)
    field = d.fields["aum_as_of"]
    checker = Validator(settings, d)
    catalog = checker.validate_paths([settings.playbooks_dir])
    assert not catalog.errors, [f"{x.code} {x.message}" for x in catalog.errors]
    playbook = catalog.playbooks[0]
    executor = Executor(shared_demo_store, settings, d, checker.renderer)
    audiences = {}
    for day in DAYS:
        clock = at(day)
        truth = expected(shared_demo_store, day)
        rich = sorted(c for c, v in truth.items() if v is not None and v >= THRESHOLD)
        compiler = SqlCompiler(d, clock)
        with shared_demo_store.connect() as conn:
            read = conn.execute(compiler.audience(EVERYONE, [field])).mappings().all()
        values = {str(r["_key"]): r["aum_as_of"] for r in read}
        assert values == pytest.approx(truth)
        condition = FieldTest("aum_as_of", "gte", THRESHOLD)
        python = sorted(str(r["_key"]) for r in read if evaluate(condition, r, d, clock))
        assert python == rich
        for evaluator in ("sql", "python"):
            sink = RecordingSink(mask=True)
            outcome = executor.execute(
                playbook, clock, sink, evaluator=evaluator, keep_details=True
            )
            assert sorted(outcome.matched) == rich, (day, evaluator)
        audiences[day] = rich
    assert audiences[DAYS[0]] and audiences[DAYS[0]] != audiences[DAYS[1]]


def test_explain_reads_the_value_of_its_own_day(
    shared_demo_store: Engine, settings: Settings
) -> None:
    d = load_dictionary(settings.dictionary_path)
    checker = Validator(settings, d)
    playbook = checker.validate_paths([settings.playbooks_dir]).playbooks[0]
    explainer = Explainer(shared_demo_store, settings, d, checker.renderer)
    early, late = expected(shared_demo_store, DAYS[1]), expected(shared_demo_store, DAYS[0])
    cid = next(c for c in sorted(late) if early[c] is not None and early[c] != late[c])
    for day, truth in ((DAYS[0], late), (DAYS[1], early)):
        moment = dt.datetime.combine(day, dt.time(9), tzinfo=TZ)
        found = explainer.explain(cid, [playbook], moment)
        assert found.customer["aum_as_of"] == pytest.approx(truth[cid])
        entry = found.playbooks[0]
        assert entry.audience is not None and entry.agrees
        assert entry.audience.holds is ((truth[cid] or 0) >= THRESHOLD)


def test_as_of_time_is_the_run_moment(shared_demo_store: Engine, settings: Settings) -> None:
    d = load_dictionary(settings.dictionary_path)
    fields = [d.fields["active_by_run_time"], d.fields["last_active_at"]]
    inactive = []
    for moment in (dt.datetime(2026, 11, 23, 9), dt.datetime(2026, 10, 1, 0, 0, 1)):
        clock = Clock.at(moment, TZ)
        with shared_demo_store.connect() as conn:
            rows = conn.execute(SqlCompiler(d, clock).audience(EVERYONE, fields)).mappings()
            got = {r["_key"]: (r["active_by_run_time"], r["last_active_at"]) for r in rows}
        for seen, last in got.values():
            assert seen is (None if last is None else last <= moment)
        inactive.append(sum(1 for seen, _ in got.values() if seen is False))
    late, early = inactive
    assert late < early  # more customers were last active after 1 October than after now


def test_cli_dry_run_as_of_two_days(demo_url: str, settings: Settings) -> None:
    """``dry-run --as-of`` as a user runs it, in the deployment folder."""
    if not demo_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the command line; the engine path runs on both")
    env = {k: v for k, v in os.environ.items() if k != "CARE_DB"}
    matched = {}
    for day in DAYS:
        result = subprocess.run(
            [sys.executable, str(REPO / "runner.py"), "dry-run", "--db", demo_url,
             "--as-of", day.isoformat(), "--format", "json"],
            capture_output=True, text=True, cwd=settings.root, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        matched[day] = next(p for p in report["playbooks"] if p["id"] == "rich-as-of")["matched"]
    store = open_store(demo_url)
    try:
        for day in DAYS:
            truth = expected(store, day)
            assert sorted(matched[day]) == sorted(
                c for c, v in truth.items() if v is not None and v >= THRESHOLD
            )
    finally:
        store.dispose()
    assert matched[DAYS[0]] != matched[DAYS[1]]


# --- loading -----------------------------------------------------------------------------------


def test_parameters_are_found_as_sqlalchemy_finds_them() -> None:
    samples = [
        "(SELECT s.aum FROM t s WHERE s.day <= :as_of)",
        "CAST(x AS DATE)::date + :as_of_time",
        "'10:30' || :as_of || ' \\:as_of'",
        ":as_of:as_of",
    ]
    for sql in samples:
        assert set(sql_parameters(sql)) == set(text(sql).compile().params), sql


@pytest.mark.parametrize(
    ("section", "line"),
    [("fields", "    sql: \"(SELECT b.aum FROM balances b WHERE b.day <= :asof)\"\n"),
     ("related", "        sql: \"(SELECT 1 WHERE :run_day > '2020-01-01')\"\n")],
)  # fmt: skip
def test_unknown_parameter_is_a_located_error(tmp_path: Path, section: str, line: str) -> None:
    """At load, file:line:col of the parameter itself, in the staff's language."""
    shipped = SETTINGS.dictionary_path.read_text(encoding="utf-8")
    if section == "fields":
        head = "  balance_as_of:\n    type: money\n    label: 余额\n    name: Balance\n"
        broken = shipped.replace("fields:\n", "fields:\n" + head + line, 1)
        anchor = "fields.balance_as_of"
    else:
        head = "      odd:\n        type: integer\n        label: 怪\n        name: Odd\n"
        broken = shipped.replace("    columns:\n", "    columns:\n" + head + line, 1)
        anchor = "related.holdings.columns.odd"
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(broken, encoding="utf-8")
    number = broken.splitlines(keepends=True).index(line) + 1
    param = ":asof" if section == "fields" else ":run_day"
    column = line.index(param) + 1
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    error = raised.value
    assert error.code == "E0520"
    assert error.where == f"{path}:{number}:{column}"
    assert anchor in error.message and f"'{param}'" in error.message
    assert ":as_of" in error.message


def test_unknown_parameter_message_in_chinese(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CARE_LANG", "zh")
    shipped = SETTINGS.dictionary_path.read_text(encoding="utf-8")
    head = '  x:\n    type: date\n    label: 某日\n    name: X\n    sql: "(SELECT :today)"\n'
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(shipped.replace("fields:\n", "fields:\n" + head, 1), encoding="utf-8")
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    assert "引擎不会绑定" in raised.value.message and "运行日期" in raised.value.message


def test_shipped_dictionary_binds_nothing_unknown() -> None:
    d: DataDictionary = load_dictionary(SETTINGS.dictionary_path)
    sqls = [f.sql for f in d if f.sql] + [
        c.sql for r in d.related.values() for c in r.columns.values() if c.sql
    ]
    assert sqls and all(sql_parameters(s) == () for s in sqls)
