"""CSV import and mapping checks: bad input is located and nothing is half-written.

Every test writes its own small export (as a Chinese bank's would look: Chinese headers, GBK
or UTF-8, 男/女, YYYYMMDD dates, resident ID numbers) and runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support import REPO, cli

from engine.core.dictionary import load_dictionary
from engine.playbook.schema import render_schema
from engine.store.db import create_all, open_store
from engine.store.importing import ImportFailed, import_files
from engine.store.introspect import check_dictionary
from engine.store.mapping import MappingInvalid, load_mapping

HEADER = "client_id,姓名,性别,出生日期,余额\n"
GOOD = HEADER + "1,张三,男,19800229,1000.50\n2,李四,女,19751231,20\n"

MAPPING = """\
version: 1
code_tables:
  gender: {男: M, 女: F}
tables:
  clients:
    file: clients.csv
    key: [client_id]
    columns:
      client_id: integer
      name: {from: 姓名, required: true}
      gender: {from: 性别, codes: gender}
      born: {from: 出生日期, type: date, format: "%Y%m%d"}
      balance: {from: 余额, type: money}
  accounts:
    file: accounts.csv
    key: [account_no]
    columns:
      account_no: {from: 账号}
      client_id: {from: 客户号, type: integer}
      opened_on: {from: 开户日期, type: date, format: "%Y/%m/%d"}
"""
ACCOUNTS = "账号,客户号,开户日期\n6222001,1,2019/03/01\n6222002,2,2020/12/31\n"


def write(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A folder with the mapping and a good export of both files."""
    write(tmp_path, "mapping.yaml", MAPPING)
    write(tmp_path, "clients.csv", GOOD)
    write(tmp_path, "accounts.csv", ACCOUNTS)
    return tmp_path


def load(store: Engine, folder: Path, **kw: object) -> None:
    import_files(store, load_mapping(folder / "mapping.yaml"), **kw)  # type: ignore[arg-type]


def table(store: Engine, name: str) -> list[tuple[object, ...]]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {name} ORDER BY 1"))]


def test_import_good_export_typed_values(store: Engine, export: Path) -> None:
    load(store, export)
    rows = table(store, "clients")
    assert [(r[0], r[1], r[2], str(r[3]), float(r[4])) for r in rows] == [  # type: ignore[arg-type]
        (1, "张三", "M", "1980-02-29", 1000.5),
        (2, "李四", "F", "1975-12-31", 20.0),
    ]
    assert [str(r[2]) for r in table(store, "accounts")] == ["2019-03-01", "2020-12-31"]


BAD = [
    # (what, clients.csv content, line, col, words in the message)
    ("wrong_delimiter", GOOD.replace(",", ";"), 1, 1, "separated by ';'"),
    (
        "missing_column",
        GOOD.replace(",余额", "").replace(",1000.50", "").replace(",20\n", "\n"),
        1,
        1,
        "no column '余额'",
    ),
    ("bad_date", GOOD + "3,王五,男,19801340,5\n", 4, 4, "'19801340' is not a date"),
    (
        "non_utf8_byte",
        GOOD.encode() + "3,王五,男,19800101,5\n".encode("gbk"),
        4,
        2,
        "are not valid utf-8",
    ),
    ("empty_file", b"", 1, 1, "the file is empty"),
    ("header_only", HEADER, 2, 1, "a header but no rows"),
    ("duplicate_key", GOOD + "1,王五,男,19800101,5\n", 4, 1, "duplicate key 1 (first on line 2)"),
    ("short_row", GOOD + "3,王五,男\n", 4, 1, "expected 5 fields as in the header, found 3"),
    ("unknown_code", GOOD + "3,王五,未知,19800101,5\n", 4, 3, "not in code table 'gender'"),
    ("empty_required", GOOD + "3,,男,19800101,5\n", 4, 2, "column '姓名' is empty"),
    # values a column cannot hold as they are: SQLite would keep an infinity or a different
    # number, PostgreSQL would refuse the whole load
    ("infinite_amount", GOOD + "3,王五,男,19800101,1e400\n", 4, 5, "is out of range"),
    ("amount_too_long", GOOD + "3,王五,男,19800101," + "9" * 26 + "\n", 4, 5, "16 digits"),
    ("nul_in_text", GOOD + "3,王\x00五,男,19800101,5\n", 4, 2, "NUL byte"),
]


# The checks are the engine's, the same on both stores; what PostgreSQL adds is its own
# transaction semantics, so a few cases there are enough.
ON_POSTGRES = ("bad_date", "non_utf8_byte", "duplicate_key", "amount_too_long", "nul_in_text")


def _bad_cases() -> Iterator[Any]:
    for what, *case in BAD:
        yield pytest.param("sqlite", *case, id=f"sqlite-{what}")
        if what in ON_POSTGRES:
            yield pytest.param("pg", *case, id=f"postgresql-{what}", marks=pytest.mark.postgres)


@pytest.mark.parametrize(("backend", "content", "line", "col", "words"), list(_bad_cases()))
def test_import_bad_input_is_located_and_nothing_half_written(
    request: pytest.FixtureRequest,
    backend: str,
    export: Path,
    content: str | bytes,
    line: int,
    col: int,
    words: str,
) -> None:
    store = open_store(request.getfixturevalue(f"{backend}_url"))
    request.addfinalizer(store.dispose)
    load(store, export)  # a first, good import
    before = (table(store, "clients"), table(store, "accounts"))
    write(export, "accounts.csv", ACCOUNTS + "6222003,3,2021/01/01\n")  # good: read first
    write(export, "clients.csv", content)
    with pytest.raises(ImportFailed) as caught:
        load(store, export)
    found = [d for d in caught.value.diagnostics if words in f"{d.message} {d.hint}"]
    assert found, [d.message for d in caught.value.diagnostics]
    assert (Path(found[0].file).name, found[0].line, found[0].col) == ("clients.csv", line, col)
    assert "Traceback" not in caught.value.render()
    # both files in one transaction: the good accounts file was not written either
    assert (table(store, "clients"), table(store, "accounts")) == before


def test_import_skip_bad_keeps_good_rows_and_writes_rejects(store: Engine, export: Path) -> None:
    write(export, "clients.csv", GOOD + "3,王五,男,19801340,5\n4,赵六,女,19900101,7\n1,重复,男,,\n")
    rejects = export / "out" / "rejects.csv"
    load(store, export, skip_bad=rejects)
    assert [r[0] for r in table(store, "clients")] == [1, 2, 4]
    with rejects.open(encoding="utf-8", newline="") as fh:
        rejected = list(csv.DictReader(fh))
    assert [(r["line"], r["column"]) for r in rejected] == [("4", "4"), ("6", "1")]
    assert "not a date" in rejected[0]["reason"] and rejected[0]["record"] == "3,王五,男,19801340,5"
    assert rejected[0]["file"].endswith("clients.csv")


def test_import_gbk_and_resident_ids_into_the_standard_store(store: Engine, tmp_path: Path) -> None:
    """A GBK export with Chinese headers into the engine's own customer schema (init-db)."""
    create_all(store)
    write(tmp_path, "branches.csv", "网点号,网点名称,城市\nB01,朝阳支行,北京\n", "gbk")
    write(
        tmp_path,
        "customers.csv",
        "客户号,姓名,证件号码,网点,开户日期,等级\n"
        "C001,欧阳娜娜,11010519491231002X,B01,2019-03-01,贵宾\n"
        "C002,王强,110105197001010011,B01,2020-06-30,普通\n",
        "gbk",
    )
    write(
        tmp_path,
        "mapping.yaml",
        """\
defaults: {encoding: gbk}
code_tables:
  tier: {普通: mass, 金卡: gold, 贵宾: vip, 私行: private}
tables:
  branches:
    file: branches.csv
    columns: {id: {from: 网点号}, name: {from: 网点名称}, city: {from: 城市}}
  customers:
    file: customers.csv
    columns:
      id: {from: 客户号}
      name: {from: 姓名}
      birth_date: {from: 证件号码, decode: cn_resident_id.birth_date}
      gender: {from: 证件号码, decode: cn_resident_id.gender}
      branch_id: {from: 网点}
      opened_on: {from: 开户日期}
      tier: {from: 等级, codes: tier}
      birthday_calendar: {value: solar}
      aum: {value: 0}
      avg_daily_deposit: {value: 0}
      lifecycle_stage: {value: mature}
""",
    )
    load(store, tmp_path)
    with store.connect() as conn:
        got = conn.execute(
            text("SELECT id, name, gender, birth_date, tier FROM customers ORDER BY id")
        ).all()
    assert [(i, n, g, str(b), t) for i, n, g, b, t in got] == [
        ("C001", "欧阳娜娜", "F", "1949-12-31", "vip"),
        ("C002", "王强", "M", "1970-01-01", "mass"),
    ]


def test_import_bad_resident_id_and_unmapped_not_null_column(store: Engine, tmp_path: Path) -> None:
    create_all(store)
    write(tmp_path, "customers.csv", "客户号,证件号码\nC001,110105194912310021\n")
    write(
        tmp_path,
        "mapping.yaml",
        """\
tables:
  customers:
    file: customers.csv
    columns:
      id: {from: 客户号}
      birth_date: {from: 证件号码, decode: cn_resident_id.birth_date}
""",
    )
    with pytest.raises(ImportFailed) as caught:
        load(store, tmp_path)
    messages = " | ".join(d.message for d in caught.value.diagnostics)
    assert "needs column 'name' (NOT NULL" in messages and "'tier'" in messages
    # with the required columns given, the wrong check digit is the row's problem
    text_ = (tmp_path / "mapping.yaml").read_text(encoding="utf-8")
    extra = "".join(
        f"      {c}: {{value: {v}}}\n"
        for c, v in [
            ("name", "x"),
            ("branch_id", "B01"),
            ("opened_on", "2020-01-01"),
            ("tier", "mass"),
            ("aum", 0),
            ("avg_daily_deposit", 0),
            ("lifecycle_stage", "new"),
            ("birthday_calendar", "solar"),
        ]
    )
    write(tmp_path, "mapping.yaml", text_ + extra)
    with pytest.raises(ImportFailed) as caught:
        load(store, tmp_path)
    [problem] = caught.value.diagnostics
    assert (problem.line, problem.col) == (2, 2) and "check digit" in problem.message


def test_import_fixed_value_that_does_not_fit_is_reported_before_writing(
    store: Engine, export: Path
) -> None:
    text_ = MAPPING.replace(
        "      balance: {from: 余额, type: money}", "      balance: {type: money, value: lots}"
    )
    write(export, "mapping.yaml", text_)
    with pytest.raises(ImportFailed) as caught:
        load(store, export)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.line) == ("E1012", 13)  # the balance line of the mapping
    assert "'lots' is not a number" in problem.message
    assert table_exists(store, "clients") is False


def test_import_wrong_encoding_declared_names_the_column(store: Engine, export: Path) -> None:
    write(export, "clients.csv", GOOD, "gbk")  # the header itself is not UTF-8
    with pytest.raises(ImportFailed) as caught:
        load(store, export)
    [problem] = caught.value.diagnostics
    assert problem.code == "E1015" and "not utf-8 text" in problem.message
    assert table_exists(store, "clients") is False  # nothing created either


def table_exists(store: Engine, name: str) -> bool:
    from sqlalchemy import inspect

    return inspect(store).has_table(name)


def test_import_mapping_file_errors_all_at_once_with_lines(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mapping.yaml",
        """\
tables:
  clients:
    file: clients.csv
    columns:
      client_id: integr
      born: {from: 出生日期, type: date, formt: "%Y%m%d"}
      gender: {codes: sex}
      code: {from: 证件, decode: passport}
""",
    )
    with pytest.raises(MappingInvalid) as caught:
        load_mapping(tmp_path / "mapping.yaml")
    found = {(d.line, d.message.split("'")[1]) for d in caught.value.diagnostics}
    assert found == {(5, "integr"), (6, "formt"), (7, "sex"), (8, "passport")}
    rendered = caught.value.render()
    assert "did you mean 'integer'?" in rendered and "did you mean 'format'?" in rendered


DICTIONARY = """\
customer_table: clients
key: client_id
fields:
  customer_id: {type: integer, label: 客户号, column: client_id}
  name: {type: string, label: 姓名, column: nam}
  born: {type: datetime, label: 出生日期, column: born}
  gender: {type: enum, label: 性别, column: gender, values: {M: 男}}
  balance_x2: {type: money, label: 双倍余额, sql: "clients.balance * 2"}
  accounts: {type: integer, label: 账户数, sql: "(SELECT COUNT(*) FROM acounts a)"}
related:
  holdings:
    label: 持仓
    table: holdings
    key: client_id
    columns:
      amount: {type: money, label: 金额, column: amount}
"""


def test_import_check_mapping_names_field_line_and_problem(store: Engine, export: Path) -> None:
    """The dictionary against the live database: every problem, at its line in the file."""
    load(store, export)
    path = write(export, "data_dictionary.yaml", DICTIONARY)
    check = check_dictionary(store, load_dictionary(path), engine_tables=False)
    found = {(d.line, d.code) for d in check.diagnostics}
    assert found == {
        (5, "E1062"),  # name: column 'nam' does not exist
        (6, "E1063"),  # born: declared datetime, the column is a DATE
        (7, "E1065"),  # gender: the database holds 'F', not among the values
        (9, "E1064"),  # accounts: the SQL names a table that does not exist
        (13, "E1061"),  # related holdings: no such table
    }, [f"{d.line} {d.code} {d.message}" for d in check.diagnostics]
    messages = " | ".join(d.message for d in check.diagnostics)
    assert "field 'name' (姓名)" in messages and "did you mean" in format_hints(check)


def format_hints(check: object) -> str:
    return " ".join(d.hint or "" for d in check.diagnostics)  # type: ignore[attr-defined]


@pytest.mark.parametrize("example", ["berka", "bank_marketing"])
def test_berka_and_bank_marketing_editor_schemas_are_current(example: str) -> None:
    """The examples ship their editor schema; it must follow the dictionary and the actions."""
    folder = REPO / "examples" / example
    shipped = (folder / "schemas" / "playbook.schema.json").read_text(encoding="utf-8")
    current = render_schema(load_dictionary(folder / "schemas" / "data_dictionary.yaml"))
    assert shipped == current, (
        f"examples/{example}/schemas/playbook.schema.json is out of date: "
        f"cd examples/{example} && python ../../runner.py schema"
    )


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Path]:
    """A deployment folder: the mapping at its default place, the files beside it."""
    (tmp_path / "schemas").mkdir()
    write(tmp_path / "schemas", "import_mapping.yaml", MAPPING)
    write(tmp_path / "schemas", "clients.csv", GOOD + "3,王五,男,19801340,5\n")
    write(tmp_path / "schemas", "accounts.csv", ACCOUNTS)
    yield tmp_path


def test_import_command_bad_row_exit_1_located_no_traceback(deployment: Path) -> None:
    db = f"sqlite:///{deployment / 'store.db'}"
    result = cli("import", "--db", db, cwd=deployment)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{deployment / 'schemas' / 'clients.csv'}:4:4: error[E1020]" in result.stderr
    assert "nothing was written" in result.stderr
    rejects = deployment / "rejects.csv"
    result = cli("import", "--db", db, "--skip-bad", str(rejects), "--no-progress", cwd=deployment)
    assert result.returncode == 0, result.stderr
    assert "clients" in result.stdout and "2 rows, 1 rejected" in result.stdout
    assert rejects.read_text(encoding="utf-8").count("\n") == 2


def test_import_command_usage_errors(deployment: Path, tmp_path: Path) -> None:
    result = cli("import", "--table", "nope", "--db", "sqlite:///x.db", cwd=deployment)
    assert result.returncode == 2 and "the mapping has no table 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(MappingInvalid) as caught:  # what `import --mapping missing.yaml` shows
        load_mapping(tmp_path / "missing.yaml")
    assert caught.value.exit_code == 1 and "error[E1001]" in caught.value.render()
