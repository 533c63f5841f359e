"""Related records, value changes and named segments, on the demo store and both backends.

Each example audience of the issue is a valid fixture; its compiled query must return exactly
what the same audience written by hand in SQL returns, and what the Python reference
evaluator returns, and must find someone on the demo store. Then the whole shipped pack is
previewed with both evaluators on awkward dates.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Date, DateTime, Engine, bindparam, column, select, table, text
from support import AS_OF, REPO, SETTINGS, TZ, dictionary, validator

from engine.conditions.ast import EVERYONE, Condition
from engine.conditions.facts import filter_batch
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.execution.executor import Executor
from engine.execution.sinks import RecordingSink
from engine.rendering.renderer import Renderer
from engine.triggers.schedule import Schedule

DICTIONARY = dictionary()
VALID = REPO / "tests" / "fixtures" / "valid"
CLOCK = Clock(AS_OF)
NOW = CLOCK.now
TODAY = CLOCK.today


@pytest.fixture(scope="module")
def customers(shared_demo_store: Engine) -> list[dict[str, Any]]:
    """Every customer's values with tags (a 1,500-customer test store)."""
    scalars = [f for f in DICTIONARY if f.type != "tags"]
    with shared_demo_store.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(SqlCompiler(DICTIONARY, CLOCK).audience(EVERYONE, scalars))
            .mappings()
            .all()
        ]
        tags: dict[str, list[str]] = {}
        t = table("customer_tags", column("customer_id"), column("tag"))
        for cid, tag in conn.execute(select(t.c.customer_id, t.c.tag)):
            tags.setdefault(cid, []).append(tag)
    for r in rows:
        r["tags"] = tags.get(r["_key"], [])
    return rows


def audience_of(name: str) -> Condition:
    catalog = validator().validate_paths([VALID / name])
    assert not catalog.errors, [d.message for d in catalog.errors]
    return catalog.playbooks[0].audience


def sql_ids(store: Engine, condition: Condition, clock: Clock = CLOCK) -> list[str]:
    with store.connect() as conn:
        query = SqlCompiler(DICTIONARY, clock).audience(condition, [])
        return [r[0] for r in conn.execute(query)]


def python_ids(
    store: Engine, rows: list[dict[str, Any]], condition: Condition, clock: Clock = CLOCK
) -> list[str]:
    with store.connect() as conn:
        return sorted(r["_key"] for r in filter_batch(conn, DICTIONARY, condition, clock, rows))


def hand_ids(store: Engine, sql: str, **params: Any) -> list[str]:
    binds = [
        bindparam(k, v, type_=DateTime() if isinstance(v, dt.datetime) else Date())
        for k, v in params.items()
    ]
    with store.connect() as conn:
        return [r[0] for r in conn.execute(text(sql).bindparams(*binds))]


HAND_WRITTEN = {
    "wealth_maturing_7d.related.yaml": (
        "SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM holdings h "
        "WHERE h.customer_id = c.id AND h.product_type = 'wealth' "
        "AND h.maturity_date >= :today AND h.maturity_date <= :soon) ORDER BY c.id",
        {"today": TODAY, "soon": TODAY + dt.timedelta(days=7)},
    ),
    "no_manager_contact_30d.related.yaml": (
        "SELECT c.id FROM customers c WHERE (c.tier IN ('vip', 'private') OR c.aum >= 500000 "
        "OR EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id "
        "AND t.tag = '高净值')) AND NOT EXISTS (SELECT 1 FROM contacts k "
        "JOIN managers m ON m.id = k.manager_id WHERE k.customer_id = c.id "
        "AND m.role = 'manager' AND k.contacted_at >= :since AND k.contacted_at <= :now) "
        "ORDER BY c.id",
        {"since": NOW - dt.timedelta(days=30), "now": NOW},
    ),
    "large_withdrawals_7d.related.yaml": (
        "SELECT c.id FROM customers c WHERE (SELECT count(*) FROM transactions t "
        "WHERE t.customer_id = c.id AND t.kind = 'withdrawal' AND t.amount > 50000 "
        "AND t.occurred_at >= :since AND t.occurred_at <= :now) >= 3 ORDER BY c.id",
        {"since": NOW - dt.timedelta(days=7), "now": NOW},
    ),
    "complaint_overdue.related.yaml": (
        "SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM complaints k "
        "WHERE k.customer_id = c.id AND k.resolved_at IS NULL AND k.due_at < :now) "
        "ORDER BY c.id",
        {"now": NOW},
    ),
    "aum_down_30pct.change.yaml": (
        "SELECT c.id FROM customers c JOIN aum_snapshots s ON s.customer_id = c.id "
        "WHERE s.month = (SELECT max(s2.month) FROM aum_snapshots s2 "
        "WHERE s2.customer_id = c.id AND s2.month <= :cutoff) "
        "AND s.aum > 0 AND c.aum >= 0 AND c.aum <= 0.7 * s.aum ORDER BY c.id",
        {"cutoff": TODAY - dt.timedelta(days=30)},
    ),
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_example_audience_equals_hand_written_sql_and_python(
    shared_demo_store: Engine, customers: list[dict[str, Any]], name: str
) -> None:
    condition = audience_of(name)
    sql, params = HAND_WRITTEN[name]
    expected = hand_ids(shared_demo_store, sql, **params)
    assert expected, f"the demo store should hold someone for {name}"
    assert sql_ids(shared_demo_store, condition) == expected
    assert python_ids(shared_demo_store, customers, condition) == expected


def test_compiled_audience_is_one_parameterised_statement(shared_demo_store: Engine) -> None:
    condition = audience_of("calendar_and_anniversaries.yaml")
    compiled = SqlCompiler(DICTIONARY, CLOCK).audience(condition, []).compile(shared_demo_store)
    sql = str(compiled)
    assert sql.count("SELECT") >= 4 and ";" not in sql
    assert "wealth" not in sql and "50000" not in sql  # values are bound, not spliced
    assert "fund" in {str(v) for v in compiled.params.values() if isinstance(v, str)} | {
        str(x) for v in compiled.params.values() if isinstance(v, list | tuple) for x in v
    }


AWKWARD = [
    dt.datetime(2026, 11, 23, 9, 0),
    dt.datetime(2026, 2, 14, 9, 0),  # Saturday make-up workday before 春节 2026
    dt.datetime(2027, 2, 5, 9, 0),  # the day before 春节 2027 (除夕)
    dt.datetime(2028, 2, 29, 9, 0),
    dt.datetime(2026, 12, 31, 23, 59),  # year end, a minute before midnight
]


@pytest.mark.parametrize("moment", AWKWARD, ids=[m.isoformat() for m in AWKWARD])
def test_every_fixture_audience_agrees_on_awkward_dates(
    shared_demo_store: Engine, customers: list[dict[str, Any]], moment: dt.datetime
) -> None:
    clock = Clock.at(moment, TZ)
    for path in sorted(VALID.glob("*.yaml")):
        condition = audience_of(path.name)
        assert sql_ids(shared_demo_store, condition, clock) == python_ids(
            shared_demo_store, customers, condition, clock
        )


@pytest.mark.parametrize("day", ["2026-11-23", "2026-02-14", "2027-02-05", "2028-02-29"])
def test_shipped_pack_same_with_both_evaluators(
    shared_demo_store: Engine, customers: list[dict[str, Any]], day: str
) -> None:
    """dry-run of every shipped playbook: the SQL audience and the Python reference agree
    (event playbooks, which the scheduler does not run, by their audience alone)."""
    catalog = validator().validate_paths([SETTINGS.playbooks_dir])
    executor = Executor(
        shared_demo_store, SETTINGS, DICTIONARY, Renderer(SETTINGS.templates_dir, DICTIONARY)
    )
    clock = Clock.at(dt.datetime.fromisoformat(f"{day}T09:00"), TZ)
    assert catalog.playbooks
    for playbook in catalog.playbooks:
        if not isinstance(playbook.trigger, Schedule):
            audience = playbook.audience
            assert sql_ids(shared_demo_store, audience, clock) == python_ids(
                shared_demo_store, customers, audience, clock
            )
            continue
        matched = {}
        for evaluator in ("sql", "python"):
            outcome = executor.execute(
                playbook, clock, RecordingSink(), keep_details=True, evaluator=evaluator
            )
            matched[evaluator] = outcome.matched
        assert matched["sql"] == matched["python"], playbook.id


# --- segments -------------------------------------------------------------------------------


def _deployment(tmp_path: Path, segments: dict[str, str]) -> Any:
    from engine.core.settings import Settings
    from engine.playbook.validation import Validator

    folder = tmp_path / "segments"
    folder.mkdir()
    for name, body in segments.items():
        (folder / f"{name}.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "templates").symlink_to(REPO / "templates")
    return Validator(Settings(root=tmp_path), DICTIONARY)


PLAYBOOK = (
    "id: uses-segment\ntitle: t\ntrigger: {schedule: '0 9 * * *'}\n"
    "audience:\n  segment: %s\nactions:\n  - task: {title: x}\n"
)


def test_segment_cycle_is_reported_where_it_closes(tmp_path: Path) -> None:
    v = _deployment(
        tmp_path,
        {
            "a": "id: a-seg\ntitle: A\ncondition:\n  all:\n    - tier: vip\n    - segment: b-seg\n",
            "b": "id: b-seg\ntitle: B\ncondition:\n  segment: a-seg\n",
        },
    )
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK % "a-seg", encoding="utf-8")
    catalog = v.validate_paths([playbook])
    assert catalog.playbooks == []
    loops = [d for d in catalog.errors if d.code == "PB0113"]
    assert loops and "a-seg → b-seg → a-seg" in loops[0].message
    assert loops[0].file.endswith("b.yaml") and loops[0].line == 4
    assert [d.code for d in catalog.errors if d.file == str(playbook)] == ["PB0119"]


def test_segment_is_inlined_and_kept_by_name(tmp_path: Path) -> None:
    v = _deployment(tmp_path, {"vip": "id: vip-only\ntitle: V\ncondition: {tier: vip}\n"})
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK % "vip-only", encoding="utf-8")
    catalog = v.validate_paths([playbook])
    assert not catalog.errors
    audience = catalog.playbooks[0].audience
    assert audience.name == "vip-only"  # type: ignore[union-attr]
    compiled = str(SqlCompiler(DICTIONARY, CLOCK).audience(audience, []))
    assert "customers.tier" in compiled


def test_broken_segment_file_is_reported_with_its_location(tmp_path: Path) -> None:
    v = _deployment(
        tmp_path, {"bad": "id: bad-seg\ntitle: B\ncondition:\n  tier: {in: [privat]}\n"}
    )
    playbook = tmp_path / "p.yaml"
    playbook.write_text(PLAYBOOK % "bad-seg", encoding="utf-8")
    catalog = v.validate_paths([playbook])
    where = {(Path(d.file).name, d.code, d.line) for d in catalog.errors}
    assert ("bad.yaml", "PB0109", 4) in where
    assert ("p.yaml", "PB0119", 5) in where


def test_cli_dry_run_python_evaluator_matches_sql(demo_url: str) -> None:
    """``dry-run --evaluator python`` is the comparison anyone can run."""
    import json
    import subprocess
    import sys

    if not demo_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the command line; the engine path runs on both")
    reports = {}
    for evaluator in ("sql", "python"):
        result = subprocess.run(
            [sys.executable, str(REPO / "runner.py"), "dry-run", "--db", demo_url,
             "--as-of", "2026-11-23", "--format", "json", "--evaluator", evaluator],
            capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports[evaluator] = {p["id"]: p["matched"] for p in json.loads(result.stdout)["playbooks"]}
    assert reports["sql"] == reports["python"]
    assert any(reports["sql"].values())


# --- context: the rows a template names -------------------------------------------------------


def test_context_rows_are_read_per_batch_and_named_in_the_task(shared_demo_store: Engine) -> None:
    """wealth-maturity-call lists each customer's earliest three maturing products: one query
    per batch of customers (not per customer), the rows the hand-written filter finds."""
    import re

    from sqlalchemy import event

    [playbook] = [
        p
        for p in validator().validate_paths([SETTINGS.playbooks_dir]).playbooks
        if p.id == "wealth-maturity-call"
    ]
    executor = Executor(
        shared_demo_store, SETTINGS, DICTIONARY, Renderer(SETTINGS.templates_dir, DICTIONARY)
    )
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(shared_demo_store, "before_cursor_execute", seen)
    try:
        outcome = executor.execute(
            playbook, CLOCK, RecordingSink(), keep_details=True, batch_size=40
        )
    finally:
        event.remove(shared_demo_store, "before_cursor_execute", seen)
    batches = -(-outcome.matched_count // 40)
    assert outcome.matched_count > 40 and batches >= 2  # several batches on the demo store
    assert sum("row_number" in s.lower() for s in statements) == batches
    with shared_demo_store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT customer_id, product_name, amount, maturity_date FROM holdings "
                "WHERE product_type = 'wealth' AND amount >= 50000"
            )
        ).all()
    maturing: dict[str, list[tuple[str, float, dt.date]]] = {}
    for cid, name, amount, due in rows:
        due = due if isinstance(due, dt.date) else dt.date.fromisoformat(str(due))
        if TODAY <= due <= TODAY + dt.timedelta(days=7):
            maturing.setdefault(str(cid), []).append((str(name), float(amount), due))
    tasks = [e for d in outcome.decisions for e in d.effects if e.kind == "task"]
    assert tasks and len(tasks) == sum(1 for d in outcome.decisions if d.effects)
    line = re.compile(r"^- ([^,]+),(.+)万元,(\d{4})年(\d{1,2})月(\d{1,2})日到期$")
    for task in tasks:
        listed = [m for m in map(line.match, str(task.row["body"]).splitlines()) if m]
        mine = maturing[task.customer_id]
        earliest = sorted(due for *_, due in mine)[:3]
        dates = [dt.date(int(m[3]), int(m[4]), int(m[5])) for m in listed]
        assert dates == earliest, task.customer_id
        assert {m[1] for m in listed} <= {name for name, *_ in mine}
        first = listed[0]
        assert f"{first[1]} {first[3]}年{first[4]}月{first[5]}日到期" in str(task.row["title"])


def test_context_rows_are_masked_in_previews_where_personal(
    shared_demo_store: Engine, tmp_path: Path
) -> None:
    """A related column marked ``pii`` is masked in a preview and real in a run's rows."""
    from engine.core.dictionary import load_dictionary
    from engine.playbook.validation import Validator

    source = (REPO / "schemas" / "data_dictionary.yaml").read_text(encoding="utf-8")
    plain = "manager_id: {type: string, label: 联系人编号, name: Contacted by, column: manager_id}"
    assert plain in source
    marked = plain.replace("column: manager_id}", "column: manager_id, pii: id}")
    (tmp_path / "dictionary.yaml").write_text(source.replace(plain, marked), encoding="utf-8")
    personal = load_dictionary(tmp_path / "dictionary.yaml")
    (tmp_path / "p.yaml").write_text(
        "id: last-contact\ntitle: t\ntrigger: {schedule: '0 9 * * *'}\n"
        "audience: {contacts: {exists: true}}\n"
        "context:\n  last:\n    from: contacts\n    order: -contacted_at\n    limit: 1\n"
        'actions:\n  - task:\n      title: "{% for c in last %}{{ c.manager_id }}{% endfor %}"\n',
        encoding="utf-8",
    )
    catalog = Validator(SETTINGS, personal).validate_paths([tmp_path / "p.yaml"])
    assert catalog.errors == []
    [playbook] = catalog.playbooks
    executor = Executor(
        shared_demo_store, SETTINGS, personal, Renderer(SETTINGS.templates_dir, personal)
    )
    titles = {}
    for mask in (True, False):
        outcome = executor.execute(
            playbook, CLOCK, RecordingSink(mask=mask), keep_details=True, batch_size=200
        )
        titles[mask] = {
            e.customer_id: str(e.row["title"]) for d in outcome.decisions for e in d.effects
        }
    with shared_demo_store.connect() as conn:
        latest: dict[str, set[str]] = {}
        for cid, manager in conn.execute(
            text(
                "SELECT c.customer_id, c.manager_id FROM contacts c WHERE c.contacted_at = "
                "(SELECT MAX(d.contacted_at) FROM contacts d WHERE d.customer_id = c.customer_id)"
            )
        ):
            latest.setdefault(str(cid), set()).add(str(manager))
    assert titles[False] and titles[True].keys() == titles[False].keys()
    for cid, real in titles[False].items():
        assert real in latest[cid]  # the most recent contact's
        assert titles[True][cid] != real and "*" in titles[True][cid]
