"""Grouped lookups (``lookup: {table, key, by, column, where, pick}``): one value chosen among
the rows of another table by key, compiled to one LEFT JOIN of the table grouped by key.

Each grouped field has an ``sql:`` twin written as the correlated subquery it replaces (the
shipped ``branch_leader_id`` was one), and a pure Python reading of the same rows: all three
must give every customer the same value, on SQLite and PostgreSQL, for a hand-made store (an
office without a leader, one with two, a dangling and an empty office id) and for generated
ones; the reference evaluator must then pick the audiences SQL picks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from engine.conditions.ast import EVERYONE, All, AnyOf, Condition, Not, Related
from engine.conditions.ast import Test as FieldTest
from engine.conditions.evaluate import evaluate
from engine.conditions.facts import load_related
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary, DictionaryError, load_dictionary
from engine.store.introspect import check_dictionary

CLOCK = Clock(dt.datetime(2026, 10, 12, 9, tzinfo=dt.UTC))

DICTIONARY = """\
version: 1
customer_table: people
key: id
fields:
  person_id: {type: string, label: 号, name: ID, column: id}
  office_id: {type: string, label: 网点, name: Office, column: office_id}
  leader_id:
    type: string
    label: 负责人
    name: Leader
    lookup:
      {table: staff, key: office_id, by: office_id, column: id, where: {role: leader}, pick: min}
  leader_id_sql:
    type: string
    label: 负责人2
    name: Leader (SQL)
    sql: "(SELECT MIN(s.id) FROM staff s
      WHERE s.office_id = people.office_id AND s.role = 'leader')"
  leader_name:
    type: string
    label: 负责人姓名
    name: Leader name
    lookup:
      {table: staff, key: office_id, by: office_id, column: name, pick: min, where: {role: leader}}
  leader_name_sql:
    type: string
    label: 负责人姓名2
    name: Leader name (SQL)
    sql: "(SELECT MIN(s.name) FROM staff s
      WHERE s.office_id = people.office_id AND s.role = 'leader')"
  last_leader_id:
    type: string
    label: 末位负责人
    name: Last leader
    lookup:
      {table: staff, key: office_id, by: office_id, column: id, where: {role: leader}, pick: max}
  last_leader_id_sql:
    type: string
    label: 末位负责人2
    name: Last leader (SQL)
    sql: "(SELECT MAX(s.id) FROM staff s
      WHERE s.office_id = people.office_id AND s.role = 'leader')"
  top_grade:
    type: integer
    label: 最高级别
    name: Top grade
    lookup:
      {table: staff, key: office_id, by: office_id, column: grade, pick: max}
  top_grade_sql:
    type: integer
    label: 最高级别2
    name: Top grade (SQL)
    sql: "(SELECT MAX(s.grade) FROM staff s
      WHERE s.office_id = people.office_id)"
  senior_clerk:
    type: string
    label: 资深柜员
    name: Senior clerk
    lookup:
      table: staff
      key: office_id
      by: office_id
      column: id
      where: {role: clerk, grade: 2}
      pick: min
  senior_clerk_sql:
    type: string
    label: 资深柜员2
    name: Senior clerk (SQL)
    sql: "(SELECT MIN(s.id) FROM staff s
      WHERE s.office_id = people.office_id AND s.role = 'clerk' AND s.grade = 2)"
related:
  visits:
    table: visits
    key: person_id
    columns:
      office_id: {type: string, label: 拜访网点, name: Visited office, column: office_id}
      host:
        type: string
        label: 接待人
        name: Host
        lookup:
          {table: staff, key: office_id, by: office_id, column: id,
           pick: min, where: {role: leader}}
      host_sql:
        type: string
        label: 接待人2
        name: Host (SQL)
        sql: "(SELECT MIN(s.id) FROM staff s
          WHERE s.office_id = visits.office_id AND s.role = 'leader')"
"""

# field -> (its correlated-subquery twin, column, filter, pick), the last three for the oracle
GROUPED: dict[str, tuple[str, str, dict[str, Any], Any]] = {
    "leader_id": ("leader_id_sql", "id", {"role": "leader"}, min),
    "leader_name": ("leader_name_sql", "name", {"role": "leader"}, min),
    "last_leader_id": ("last_leader_id_sql", "id", {"role": "leader"}, max),
    "top_grade": ("top_grade_sql", "grade", {}, max),
    "senior_clerk": ("senior_clerk_sql", "id", {"role": "clerk", "grade": 2}, min),
}
TWINS = {field: twin for field, (twin, *_) in GROUPED.items()}

Staff = tuple[str, str | None, str, str | None, int | None]  # id, office_id, role, name, grade
Person = tuple[str, str | None]  # id, office_id
STAFF_COLUMNS = ("id", "office_id", "role", "name", "grade")

# O1: no leader; O2: two leaders (S03 and S07, min wins); O3: one; O9 names no staff at all
STAFF: list[Staff] = [
    ("S01", "O1", "clerk", "Qian", 2),
    ("S02", "O1", "clerk", "Sun", None),
    ("S07", "O2", "leader", "Wu", 3),
    ("S03", "O2", "leader", "Zhao", 5),
    ("S05", "O2", "clerk", None, 2),
    ("S04", "O3", "leader", None, None),
    ("S06", None, "leader", "Li", 9),
]
PEOPLE: list[Person] = [("P1", "O1"), ("P2", "O2"), ("P3", "O3"), ("P4", "O9"), ("P5", None)]
VISITS = [("P1", "O2"), ("P1", "O1"), ("P3", "O9"), ("P4", "O3"), ("P5", None)]


@pytest.fixture
def dictionary(tmp_path: Path) -> DataDictionary:
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(DICTIONARY, encoding="utf-8")
    return load_dictionary(path)


def _fill(
    engine: Engine,
    staff: Sequence[Staff],
    people: Sequence[Person],
    visits: Sequence[tuple[str, str | None]] = (),
) -> None:
    """The tables, emptied and filled: ``staff.office_id`` is no key (offices have many)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS staff (id VARCHAR(8) PRIMARY KEY, "
                "office_id VARCHAR(8), role VARCHAR(8), name VARCHAR(20), grade INTEGER)"
            )
        )
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS people (id VARCHAR(8) PRIMARY KEY, "
                "office_id VARCHAR(8))"
            )
        )
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS visits (person_id VARCHAR(8), office_id VARCHAR(8))")
        )
        for name in ("staff", "people", "visits"):
            conn.execute(text(f"DELETE FROM {name}"))
        if staff:
            conn.execute(
                text("INSERT INTO staff VALUES (:id, :office, :role, :name, :grade)"),
                [
                    dict(zip(("id", "office", "role", "name", "grade"), s, strict=True))
                    for s in staff
                ],
            )
        if people:
            conn.execute(
                text("INSERT INTO people VALUES (:id, :office)"),
                [{"id": p, "office": o} for p, o in people],
            )
        if visits:
            conn.execute(
                text("INSERT INTO visits VALUES (:id, :office)"),
                [{"id": p, "office": o} for p, o in visits],
            )


def _oracle(staff: Sequence[Staff], office: str | None, field: str) -> Any:
    """The value a grouped field gives a customer of ``office``, read in Python: the rows
    under the key that match the filter, their non-empty values, the smallest or largest."""
    _, column, where, pick = GROUPED[field]
    rows = [dict(zip(STAFF_COLUMNS, s, strict=True)) for s in staff]
    matching = [
        r
        for r in rows
        if office is not None
        and r["office_id"] == office
        and all(r[c] == v for c, v in where.items())
    ]
    values = [r[column] for r in matching if r[column] is not None]
    return pick(values) if values else None


def _rows(
    engine: Engine, compiler: SqlCompiler, dictionary: DataDictionary
) -> list[dict[str, Any]]:
    scalars = [f for f in dictionary if f.tags is None]
    with engine.connect() as conn:
        found = conn.execute(compiler.audience(EVERYONE, scalars)).mappings()
        return [dict(r) for r in found]


def _ids(engine: Engine, compiler: SqlCompiler, condition: Condition) -> list[str]:
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(compiler.audience(condition, []))]


def _swap(condition: Condition) -> Condition:
    """``condition`` with each grouped field replaced by its subquery twin."""
    if isinstance(condition, FieldTest):
        return FieldTest(TWINS.get(condition.field, condition.field), condition.op, condition.value)
    if isinstance(condition, All):
        return All(tuple(_swap(c) for c in condition.items))
    if isinstance(condition, AnyOf):
        return AnyOf(tuple(_swap(c) for c in condition.items))
    if isinstance(condition, Not):
        return Not(_swap(condition.item))
    if isinstance(condition, Related):
        where = condition.where
        swapped = (
            FieldTest("host_sql", where.op, where.value)
            if isinstance(where, FieldTest) and where.field == "host"
            else where
        )
        return Related(condition.name, condition.aggregate, swapped)
    return condition


def _agree(
    engine: Engine,
    dictionary: DataDictionary,
    staff: Sequence[Staff],
    people: Sequence[Person],
    conditions: Sequence[Condition],
) -> list[dict[str, Any]]:
    """Values: lookup = subquery = Python; audiences: lookup = subquery = evaluator, the
    evaluator over the values SQL read and over the Python ones."""
    compiler = SqlCompiler(dictionary, CLOCK)
    rows = _rows(engine, compiler, dictionary)
    assert [r["_key"] for r in rows] == sorted(p for p, _ in people)  # LEFT: nobody lost
    office = dict(people)
    for field, twin in TWINS.items():
        assert [r[field] for r in rows] == [r[twin] for r in rows], field
        expected = [_oracle(staff, office[r["_key"]], field) for r in rows]
        assert [r[field] for r in rows] == expected, field
    python_rows = [
        {**r, **{f: _oracle(staff, office[r["_key"]], f) for f in GROUPED}} for r in rows
    ]
    ids = [str(r["_key"]) for r in rows]
    with engine.connect() as conn:
        related = load_related(conn, dictionary, All(tuple(conditions)), ids, CLOCK)
    for condition in conditions:
        found = _ids(engine, compiler, condition)
        assert found == _ids(engine, compiler, _swap(condition)), condition
        for values in (rows, python_rows):
            picked = [
                str(r["_key"])
                for r in values
                if evaluate(condition, r, dictionary, CLOCK, related[str(r["_key"])])
            ]
            assert found == picked, condition
    return rows


CONDITIONS: list[Condition] = [
    FieldTest("leader_id", "eq", "S03"),
    FieldTest("leader_id", "is_null", True),
    FieldTest("leader_id", "ne", "S04"),
    FieldTest("last_leader_id", "in", ("S07", "S04")),
    FieldTest("leader_name", "contains", "u"),
    FieldTest("top_grade", "gte", 3),
    FieldTest("top_grade", "is_null", True),
    FieldTest("senior_clerk", "is_null", False),
    All((FieldTest("leader_id", "is_null", False), Not(FieldTest("top_grade", "lt", 5)))),
    AnyOf((FieldTest("senior_clerk", "eq", "S05"), FieldTest("leader_name", "eq", "Wu"))),
    Related("visits", "exists", FieldTest("host", "eq", "S03")),
    Related("visits", "none", FieldTest("host", "is_null", True)),
]


def test_no_leader_two_leaders_and_a_dangling_office(
    store: Engine, dictionary: DataDictionary
) -> None:
    _fill(store, STAFF, PEOPLE, VISITS)
    rows = _agree(store, dictionary, STAFF, PEOPLE, CONDITIONS)
    by_person = {r["_key"]: r for r in rows}
    assert by_person["P1"]["leader_id"] is None  # O1 has clerks only
    assert by_person["P1"]["senior_clerk"] == "S01"
    assert by_person["P2"]["leader_id"] == "S03"  # two leaders: the smaller id
    assert by_person["P2"]["last_leader_id"] == "S07"
    assert by_person["P2"]["leader_name"] == "Wu"  # each column picked on its own
    assert by_person["P2"]["top_grade"] == 5
    assert by_person["P3"]["leader_id"] == "S04" and by_person["P3"]["top_grade"] is None
    for dangling in ("P4", "P5"):  # an office no staff names, and no office at all
        assert all(by_person[dangling][f] is None for f in GROUPED)


def test_one_customer_reads_what_the_audience_reads(
    store: Engine, dictionary: DataDictionary
) -> None:
    """explain and the preview read one customer's values as the audience does (key_in on
    the finished query, joined afterwards): the grouped join must give the same value."""
    _fill(store, STAFF, PEOPLE, VISITS)
    compiler = SqlCompiler(dictionary, CLOCK)
    rows = {r["_key"]: r for r in _rows(store, compiler, dictionary)}
    scalars = [f for f in dictionary if f.tags is None]
    for person, _ in PEOPLE:
        query = compiler.audience(EVERYONE, scalars).where(compiler.key_in([person]))
        with store.connect() as conn:
            [one] = [dict(r) for r in conn.execute(compiler.joined(query)).mappings()]
        assert one == rows[person]


STAFF_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["O0", "O1", "O2", "O3", None]),
        st.sampled_from(["leader", "clerk"]),
        st.sampled_from(["Li", "Wu", "Zhao", None]),
        st.sampled_from([1, 2, 3, None]),
    ),
    max_size=14,
)
OFFICES = st.lists(st.sampled_from(["O0", "O1", "O2", "O3", "O4", None]), min_size=1, max_size=8)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=STAFF_ROWS, offices=OFFICES, data=st.data())
def test_generated_stores_agree(
    store: Engine,
    dictionary: DataDictionary,
    drawn: list[tuple[str | None, str, str | None, int | None]],
    offices: list[str | None],
    data: st.DataObject,
) -> None:
    """Any staff (offices with none, one or many leaders, empty names and grades, staff of no
    office) and any customers: the three readings and the evaluator agree."""
    # ids drawn in any order, so the smallest is not always the first inserted
    numbers = data.draw(st.permutations(range(len(drawn))), label="ids")
    staff = [(f"S{n:02d}", *row) for n, row in zip(numbers, drawn, strict=True)]
    people = [(f"P{i}", o) for i, o in enumerate(offices)]
    ids = sorted({s[0] for s in staff} | {"S99"})
    conditions: list[Condition] = [
        FieldTest("leader_id", "eq", data.draw(st.sampled_from(ids), label="leader")),
        FieldTest("last_leader_id", "is_null", data.draw(st.booleans(), label="empty")),
        Not(FieldTest("top_grade", "gt", data.draw(st.integers(0, 3), label="grade"))),
        FieldTest("senior_clerk", "ne", data.draw(st.sampled_from(ids), label="clerk")),
    ]
    _fill(store, staff, people)
    _agree(store, dictionary, staff, people, conditions)


def test_fields_of_one_filter_and_pick_share_one_join(dictionary: DataDictionary) -> None:
    compiler = SqlCompiler(dictionary, CLOCK)
    fields = [dictionary.fields[k] for k in (*GROUPED, "office_id")]
    sql = str(compiler.audience(FieldTest("leader_id", "eq", "S1"), fields))
    # leader_id and leader_name: one join (the filter written in another order); max, the
    # unfiltered grade and the senior clerk: one each
    assert sql.count("GROUP BY staff.office_id") == 4
    assert sql.count("AS min_staff_office_id_by_office_id_role_leader ON") == 1
    assert "min(staff.id) AS id, min(staff.name) AS name" in sql
    assert "AS max_staff_office_id_by_office_id_role_leader ON" in sql
    assert "AS max_staff_office_id_by_office_id ON" in sql
    assert "AS min_staff_office_id_by_office_id_grade_2_role_clerk ON" in sql
    assert "WHERE s.office_id" not in sql  # no subquery per customer row
    assert "GROUP BY" not in str(compiler.audience(FieldTest("office_id", "eq", "O1"), []))


def test_check_mapping_accepts_a_grouped_lookup_on_a_key_that_is_not_unique(
    store: Engine, dictionary: DataDictionary
) -> None:
    """E0533 is for plain lookups: a grouped one has one row per key by construction."""
    _fill(store, STAFF, PEOPLE, VISITS)
    found = check_dictionary(store, dictionary, engine_tables=False).diagnostics
    assert [(d.code, d.message) for d in found] == []


@pytest.mark.parametrize(
    ("where", "code", "needle"),
    [
        ("{rol: leader}", "E0537", "rol"),
        ("{role: 5}", "E0538", "role"),
        ("{role: leader, grade: '2'}", "E0538", "grade"),
    ],
)
def test_check_mapping_refuses_a_where_the_table_cannot_answer(
    store: Engine, tmp_path: Path, where: str, code: str, needle: str
) -> None:
    """A column the table lacks, or a value of another kind than the column's (PostgreSQL
    would refuse ``role = 5`` at the first run): reported at the ``where`` entry."""
    broken = DICTIONARY.replace(
        "column: id, where: {role: leader}, pick: min}",
        f"column: id, where: {where}, pick: min}}",
        1,
    )
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(broken, encoding="utf-8")
    _fill(store, STAFF, PEOPLE, VISITS)
    found = check_dictionary(store, load_dictionary(path), engine_tables=False).diagnostics
    assert [d.code for d in found] == [code]
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if f"where: {where}" in t)
    assert found[0].line == line
    assert "field 'leader_id'" in found[0].message and needle in found[0].message


LEADER = (
    "{table: staff, key: office_id, by: office_id, column: id, where: {role: leader}, pick: min}"
)
HEAD = "{table: staff, key: office_id, by: office_id, column: id, "


@pytest.mark.parametrize(
    ("tail", "code", "needle"),
    [
        ("pik: min}", "E0530", "pik"),
        ("pick: first}", "E0534", "first"),
        ("pick: MIN}", "E0534", "MIN"),
        ("where: role, pick: min}", "E0535", "where"),
        ("where: {}, pick: min}", "E0535", "where"),
        ("where: {'ro le': x}, pick: min}", "E0535", "ro le"),
        ("where: {role: [a, b]}, pick: min}", "E0535", "role"),
        ("where: {role: null}, pick: min}", "E0535", "role"),
        ("where: {hired: 2026-01-01}, pick: min}", "E0535", "hired"),
        ("where: {role: leader}}", "E0536", "where"),
    ],
)
def test_a_wrong_grouped_lookup_is_refused_at_its_place(
    tmp_path: Path, tail: str, code: str, needle: str
) -> None:
    assert LEADER in DICTIONARY
    broken = DICTIONARY.replace(LEADER, HEAD + tail, 1)
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    error = raised.value
    assert error.code == code
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if HEAD + tail in t)
    column = broken.splitlines()[line - 1].index(needle, len("      {table")) + 1
    assert error.where == f"{path}:{line}:{column}"
    assert "fields.leader_id" in error.message


def test_a_grouped_lookup_message_in_chinese(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CARE_LANG", "zh")
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(DICTIONARY.replace(LEADER, HEAD + "where: {role: x}}", 1), encoding="utf-8")
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    assert "需要 'pick'" in raised.value.message


def test_pick_without_where_is_a_grouped_lookup(dictionary: DataDictionary) -> None:
    lookup = dictionary.fields["top_grade"].lookup
    assert lookup is not None and lookup.grouped and lookup.where == () and lookup.pick == "max"
    plain = dictionary.fields["leader_id"].lookup
    assert plain is not None and plain.where == (("role", "leader"),)


CLASHING = """\
version: 1
customer_table: people
key: id
fields:
  a:
    type: string
    lookup:
      {table: staff, key: office_id, by: office_id, column: id, where: {name: a_role_b}, pick: min}
  b:
    type: string
    lookup:
      {table: staff, key: office_id, by: office_id, column: id, pick: min,
       where: {role: b, name: a}}
  c:
    type: string
    lookup:
      {table: staff, key: office_id, by: office_id, column: id, where: {role: 负责人}, pick: min}
  d:
    type: string
    lookup:
      {table: staff, key: office_id, by: office_id, column: id, where: {role: 柜员}, pick: min}
"""


def test_filters_whose_names_read_alike_get_joins_of_their_own(
    store: Engine, tmp_path: Path
) -> None:
    """A join is named after its filter when the name is plain; two filters that would read
    alike, or values that are no plain name, still get one join each, under distinct names."""
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(CLASHING, encoding="utf-8")
    dictionary = load_dictionary(path)
    compiler = SqlCompiler(dictionary, CLOCK)
    query = compiler.audience(EVERYONE, list(dictionary))
    sql = str(query)
    for name in (
        "min_staff_office_id_by_office_id_name_a_role_b ON",
        "min_staff_office_id_by_office_id_name_a_role_b_2 ON",
        "min_staff_office_id_by_office_id ON",
        "min_staff_office_id_by_office_id_2 ON",
    ):
        assert sql.count(f"AS {name}") == 1, name
    staff: list[Staff] = [
        ("S1", "O1", "x", "a_role_b", None),
        ("S2", "O1", "负责人", None, None),
        ("S3", "O1", "柜员", None, None),
        ("S4", "O1", "b", "a", None),
    ]
    _fill(store, staff, [("P1", "O1")])
    with store.connect() as conn:
        [row] = conn.execute(query).mappings()
    assert (row["a"], row["b"], row["c"], row["d"]) == ("S1", "S4", "S2", "S3")
