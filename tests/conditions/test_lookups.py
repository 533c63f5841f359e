"""Lookup fields (``lookup: {table, key, by, column}``): one LEFT JOIN per query instead of a
correlated subquery per row, with the same audiences and values as the subquery.

The store is made here, small and awkward on purpose: customers whose key is empty or names
no row, looked-up rows whose value is empty, and a related table whose rows look up too. Every
condition runs three ways (the lookup in SQL, the same field written as a subquery in SQL, the
reference evaluator over the values the lookup reads), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
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
  office_name:
    type: string
    label: 网点名
    name: Office name
    lookup: {table: offices, key: id, by: office_id, column: name}
  office_name_sql:
    type: string
    label: 网点名2
    name: Office name (SQL)
    sql: "(SELECT o.name FROM offices o WHERE o.id = people.office_id)"
  office_size:
    type: integer
    label: 网点人数
    name: Office size
    lookup: {table: offices, key: id, by: office_id, column: size}
  office_size_sql:
    type: integer
    label: 网点人数2
    name: Office size (SQL)
    sql: "(SELECT o.size FROM offices o WHERE o.id = people.office_id)"
  boss_name:
    type: string
    label: 经理
    name: Boss
    lookup: {table: bosses, key: code, by: boss_code, column: name}
  boss_name_sql:
    type: string
    label: 经理2
    name: Boss (SQL)
    sql: "(SELECT b.name FROM bosses b WHERE b.code = people.boss_code)"
  boss_phone:
    type: string
    label: 经理电话
    name: Boss phone
    lookup: {table: bosses, key: code, by: boss_code, column: phone}
  boss_phone_sql:
    type: string
    label: 经理电话2
    name: Boss phone (SQL)
    sql: "(SELECT b.phone FROM bosses b WHERE b.code = people.boss_code)"
related:
  visits:
    table: visits
    key: person_id
    columns:
      boss_code: {type: string, label: 拜访人, name: Visited by, column: boss_code}
      role:
        type: enum
        label: 岗位
        name: Role
        values: {a: 甲, b: 乙}
        lookup: {table: bosses, key: code, by: boss_code, column: role}
      role_sql:
        type: enum
        label: 岗位2
        name: Role (SQL)
        values: {a: 甲, b: 乙}
        sql: "(SELECT b.role FROM bosses b WHERE b.code = visits.boss_code)"
"""

TWINS = {
    "office_name": "office_name_sql",
    "office_size": "office_size_sql",
    "boss_name": "boss_name_sql",
    "boss_phone": "boss_phone_sql",
}


def _store(engine: Engine, *, unique: bool = True) -> None:
    """60 people; keys drawn with empty and dangling ones; some looked-up values empty."""
    rng = random.Random(20)
    key = "PRIMARY KEY" if unique else ""
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE offices (id VARCHAR(8) {key}, name VARCHAR(20), size INTEGER)")
        )
        conn.execute(
            text(
                f"CREATE TABLE bosses (code VARCHAR(8) {key}, name VARCHAR(20), "
                "phone VARCHAR(20), role VARCHAR(2))"
            )
        )
        conn.execute(
            text(
                "CREATE TABLE people (id VARCHAR(8) PRIMARY KEY, office_id VARCHAR(8), "
                "boss_code VARCHAR(8))"
            )
        )
        conn.execute(text("CREATE TABLE visits (person_id VARCHAR(8), boss_code VARCHAR(8))"))
        for i in range(5):
            name = None if i == 3 else f"Office {i}"
            conn.execute(
                text("INSERT INTO offices VALUES (:id, :name, :size)"),
                {"id": f"O{i}", "name": name, "size": None if i == 4 else 10 * i},
            )
        for i in range(4):
            conn.execute(
                text("INSERT INTO bosses VALUES (:code, :name, :phone, :role)"),
                {
                    "code": f"B{i}",
                    "name": f"Boss {i}",
                    "phone": None if i == 2 else f"1380000000{i}",
                    "role": "ab"[i % 2],
                },
            )
        offices = [*(f"O{i}" for i in range(5)), None, "O9"]  # O9 names no office
        bosses = [*(f"B{i}" for i in range(4)), None, "B9"]
        for n in range(60):
            conn.execute(
                text("INSERT INTO people VALUES (:id, :office, :boss)"),
                {"id": f"P{n:03d}", "office": rng.choice(offices), "boss": rng.choice(bosses)},
            )
            for _ in range(rng.randrange(3)):
                conn.execute(
                    text("INSERT INTO visits VALUES (:id, :boss)"),
                    {"id": f"P{n:03d}", "boss": rng.choice(bosses)},
                )


@pytest.fixture
def dictionary(tmp_path: Path) -> DataDictionary:
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(DICTIONARY, encoding="utf-8")
    return load_dictionary(path)


def _conditions(lookup: str, sql: str) -> list[Condition]:
    """The same tests of a field written as a lookup (``lookup``) or as a subquery (``sql``)."""
    if lookup == "office_size":
        tests = [("gt", 10), ("lte", 20), ("between", (10, 30)), ("eq", 0), ("ne", 20)]
    else:
        tests = [("eq", "Office 1"), ("eq", "Boss 1"), ("ne", "Boss 0"), ("contains", "1")]
        tests += [("in", ("Office 0", "Boss 3")), ("not_in", ("Office 2", "Boss 1"))]
        tests += [("eq", "13800000001")]
    tests += [("is_null", True), ("is_null", False)]
    out: list[Condition] = []
    for field in (lookup, sql):
        out += [FieldTest(field, op, value) for op, value in tests]
    return out


def _swap(condition: Condition, names: dict[str, str]) -> Condition:
    """``condition`` with its fields renamed (lookup → subquery)."""
    if isinstance(condition, FieldTest):
        return FieldTest(names.get(condition.field, condition.field), condition.op, condition.value)
    if isinstance(condition, All):
        return All(tuple(_swap(c, names) for c in condition.items))
    if isinstance(condition, AnyOf):
        return AnyOf(tuple(_swap(c, names) for c in condition.items))
    if isinstance(condition, Not):
        return Not(_swap(condition.item, names))
    if isinstance(condition, Related):
        return Related(condition.name, condition.aggregate, _swap(condition.where, names))
    return condition


def _combined() -> list[Condition]:
    """Lookups of two tables together, under any / not, and a related table's lookup."""
    role = Related("visits", "exists", FieldTest("role", "eq", "a"))
    return [
        All((FieldTest("office_name", "eq", "Office 1"), FieldTest("boss_phone", "is_null", True))),
        AnyOf((FieldTest("office_size", "gte", 30), Not(FieldTest("boss_name", "eq", "Boss 2")))),
        Not(
            All(
                (
                    FieldTest("office_name", "is_null", False),
                    FieldTest("boss_name", "is_null", False),
                )
            )
        ),
        role,
        Related("visits", "none", FieldTest("role", "eq", "b")),
        Related("visits", "exists", FieldTest("role", "is_null", True)),
        All((role, FieldTest("boss_name", "ne", "Boss 1"))),
    ]


def _ids(engine: Engine, compiler: SqlCompiler, condition: Condition) -> list[str]:
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(compiler.audience(condition, []))]


def test_lookup_and_subquery_give_the_same_audiences_and_values(
    store: Engine, dictionary: DataDictionary
) -> None:
    _store(store)
    compiler = SqlCompiler(dictionary, CLOCK)
    names = {**TWINS, "role": "role_sql"}
    scalars = [f for f in dictionary if f.tags is None]
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(compiler.audience(EVERYONE, scalars)).mappings()]
    assert len(rows) == 60  # LEFT: nobody lost to an empty or dangling key
    for lookup, sql in TWINS.items():
        assert [r[lookup] for r in rows] == [r[sql] for r in rows], lookup
    dangling = [r for r in rows if r["office_id"] in (None, "O9")]
    assert dangling and all(r["office_name"] is None for r in dangling)
    conditions = [c for lookup, sql in TWINS.items() for c in _conditions(lookup, sql)]
    ids = [str(r["_key"]) for r in rows]
    with store.connect() as conn:
        related = load_related(conn, dictionary, All(tuple(_combined())), ids, CLOCK)
    for condition in [*conditions, *_combined()]:
        found = _ids(store, compiler, condition)
        assert found == _ids(store, compiler, _swap(condition, names)), condition
        python = [
            str(r["_key"])
            for r in rows
            if evaluate(condition, r, dictionary, CLOCK, related[str(r["_key"])])
        ]
        assert found == python, condition


def test_fields_of_one_lookup_share_one_join(dictionary: DataDictionary) -> None:
    compiler = SqlCompiler(dictionary, CLOCK)
    fields = [dictionary.fields[k] for k in ("boss_name", "boss_phone", "office_name")]
    condition = All((FieldTest("boss_name", "eq", "x"), FieldTest("office_size", "gt", 1)))
    sql = str(compiler.audience(condition, fields))
    assert sql.count("JOIN bosses AS bosses_code_by_boss_code") == 1
    assert sql.count("JOIN offices AS offices_by_office_id") == 1
    assert "SELECT o.name" not in sql and "(SELECT" not in sql  # no subquery per row
    assert "JOIN" not in str(compiler.audience(FieldTest("office_id", "eq", "O1"), []))


def test_check_mapping_refuses_a_lookup_key_that_is_not_unique(
    store: Engine, dictionary: DataDictionary
) -> None:
    _store(store, unique=False)
    found = check_dictionary(store, dictionary, engine_tables=False).diagnostics
    assert {d.code for d in found} == {"E0533"}
    assert {d.message.split(":")[0] for d in found if d.code == "E0533"} == {
        "field 'office_name' (网点名)",
        "field 'office_size' (网点人数)",
        "field 'boss_name' (经理)",
        "field 'boss_phone' (经理电话)",
        "field 'role' (岗位)",
    }


def test_check_mapping_accepts_unique_lookup_keys(
    store: Engine, dictionary: DataDictionary
) -> None:
    _store(store)
    found = check_dictionary(store, dictionary, engine_tables=False).diagnostics
    assert [d for d in found if d.code != "E1065"] == []


def test_duplicate_keys_unchecked_repeat_the_customer(
    store: Engine, dictionary: DataDictionary
) -> None:
    """What E0533 prevents: with two rows under one key, the join reads the customer twice
    (the subquery form would fail instead, with 'more than one row')."""
    _store(store, unique=False)
    with store.begin() as conn:
        conn.execute(text("INSERT INTO offices VALUES ('O1', 'Office 1 again', 5)"))
        twice = conn.execute(text("SELECT COUNT(*) FROM people WHERE office_id = 'O1'")).scalar()
    compiler = SqlCompiler(dictionary, CLOCK)
    ids = _ids(store, compiler, FieldTest("office_name", "is_null", False))
    assert twice and len(ids) - len(set(ids)) == twice


@pytest.mark.parametrize(
    ("lookup", "code", "needle"),
    [
        ("{table: offices, key: id, by: office_id, colum: name}", "E0530", "colum"),
        ("{table: offices, key: id, column: name}", "E0531", "lookup"),
        ("{table: offices, key: id, by: office_id}", "E0531", "lookup"),
        ("offices.name", "E0531", "lookup"),
        ("{table: offices, key: id, by: office_id, column: 'name; drop'}", "E0532", "name; drop"),
        ("{table: 1offices, key: id, by: office_id, column: name}", "E0532", "1offices"),
    ],
)
def test_a_wrong_lookup_is_refused_at_its_place(
    tmp_path: Path, lookup: str, code: str, needle: str
) -> None:
    broken = DICTIONARY.replace(
        "lookup: {table: offices, key: id, by: office_id, column: name}", f"lookup: {lookup}"
    )
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    error = raised.value
    assert error.code == code
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if f"lookup: {lookup}" in t)
    column = broken.splitlines()[line - 1].index(needle) + 1
    assert error.where == f"{path}:{line}:{column}"
    assert "fields.office_name" in error.message


def test_a_lookup_beside_another_source_is_refused(tmp_path: Path) -> None:
    broken = DICTIONARY.replace(
        "    lookup: {table: offices, key: id, by: office_id, column: name}\n",
        "    lookup: {table: offices, key: id, by: office_id, column: name}\n    column: x\n",
        1,
    )
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    assert raised.value.code == "E0206"


def test_message_in_chinese(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CARE_LANG", "zh")
    broken = DICTIONARY.replace("by: office_id, column: name", "by: office_id, colum: name")
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(DictionaryError) as raised:
        load_dictionary(path)
    assert "没有 'colum' 这一项" in raised.value.message
