"""Partitions at the edges: the SQL hash agrees between SQLite, PostgreSQL and Python; the
max_per_run shares add up; bad ``--partition`` values, a different K on one database and a
partition column the customer table lacks are refused with their codes."""

from __future__ import annotations

import datetime as dt
import random
import string
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, select
from support import REPO, SETTINGS, assert_no_traceback, cli

from engine.core.dictionary import load_dictionary
from engine.core.errors import StoreError, UsageError
from engine.store.db import create_all, open_store
from engine.store.keyhash import key_hash, partition_hash
from engine.store.mapping import DiagnosticsError
from engine.store.partitions import (
    Partition,
    check_partition_column,
    claim_scheme,
    parse_partition,
)

NOW = dt.datetime(2026, 11, 23, 1, 0)  # naive UTC


def _keys(n: int) -> list[str]:
    """Keys shaped like the demo's and a bank's, plus awkward ones (unicode, spaces, empty)."""
    rng = random.Random(20)
    keys = [f"C{i:010d}" for i in range(n)]
    keys += ["".join(rng.choices(string.printable, k=rng.randint(1, 30))) for _ in range(n)]
    keys += ["客户" + str(i) for i in range(200)] + ["", " ", "0", "-1", "é"]
    return list(dict.fromkeys(keys))


def _hashes(url: str, keys: list[str]) -> dict[str, int]:
    meta = MetaData()
    tbl = Table("hash_keys", meta, Column("k", String(60), primary_key=True))
    engine = open_store(url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(tbl), [{"k": k} for k in keys])
            rows = conn.execute(select(tbl.c.k, partition_hash(tbl.c.k))).all()
    finally:
        engine.dispose()
    return {str(k): int(h) for k, h in rows}


def test_the_sql_hash_is_the_same_on_sqlite_postgresql_and_python(
    sqlite_url: str, pg_url: str
) -> None:
    keys = _keys(2500)
    on_sqlite, on_pg = _hashes(sqlite_url, keys), _hashes(pg_url, keys)
    assert len(on_sqlite) == len(keys)
    assert on_sqlite == on_pg
    assert on_pg == {k: key_hash(k) for k in keys}
    assert all(0 <= h < 2**32 for h in on_pg.values())
    # and it spreads: four partitions of 5,000 keys hold about a quarter each
    shares = [sum(1 for h in on_pg.values() if h % 4 == k) for k in range(4)]
    assert min(shares) > 0.2 * len(keys)


def test_integer_keys_hash_as_their_text_on_both_backends(sqlite_url: str, pg_url: str) -> None:
    for url in (sqlite_url, pg_url):
        meta = MetaData()
        tbl = Table("int_keys", meta, Column("k", Integer, primary_key=True))
        engine = open_store(url)
        try:
            meta.create_all(engine)
            with engine.begin() as conn:
                conn.execute(insert(tbl), [{"k": k} for k in range(1, 500)])
                rows = conn.execute(select(tbl.c.k, partition_hash(tbl.c.k))).all()
        finally:
            engine.dispose()
        assert {int(k): int(h) for k, h in rows} == {k: key_hash(str(k)) for k in range(1, 500)}


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_max_per_run_shares_add_up_to_the_cap(count: int) -> None:
    for cap in [0, 1, 2, 3, 5, 7, 10, 499, 500, 2000]:
        shares = [Partition(k, count).share(cap) for k in range(1, count + 1)]
        assert sum(s or 0 for s in shares) == cap
        assert max(s or 0 for s in shares) - min(s or 0 for s in shares) <= 1
    assert Partition(1, count).share(None) is None


@pytest.mark.parametrize("text", ["5/4", "0/4", "a/b", "4", "1/0", "-1/4", "2/4/8", ""])
def test_bad_partitions_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_partition(text)
    assert caught.value.code == "E1040"
    assert parse_partition(" 2/4 ") == Partition(2, 4)


@pytest.mark.parametrize("command", ["run", "daemon"])
def test_a_bad_partition_on_the_command_line_exits_2(command: str, tmp_path: Path) -> None:
    result = cli(command, "--db", f"sqlite:///{tmp_path / 'x.db'}", "--partition", "5/4")
    assert result.returncode == 2, result.stderr
    assert "E1040" in result.stderr and "5/4" in result.stderr
    assert_no_traceback(result)


def test_one_database_one_scheme(store: Engine) -> None:
    create_all(store)
    claim_scheme(store, None, owner="a", now=NOW, record=True)  # nothing recorded yet: fine
    claim_scheme(store, Partition(1, 4), owner="a", now=NOW, record=True)
    claim_scheme(store, Partition(3, 4), owner="b", now=NOW, record=True)
    with pytest.raises(StoreError) as other_k:
        claim_scheme(store, Partition(2, 3), owner="c", now=NOW, record=True)
    assert other_k.value.code == "E1041" and "4 partitions" in other_k.value.message
    with pytest.raises(StoreError) as none:
        claim_scheme(store, None, owner="d", now=NOW, record=True)
    assert none.value.code == "E1042"
    # a one-off unpartitioned run is allowed (the ledger keeps it exactly once); another K not
    claim_scheme(store, None, owner="run", now=NOW, record=False)
    with pytest.raises(StoreError):
        claim_scheme(store, Partition(1, 2), owner="run", now=NOW, record=False)


def test_a_run_does_not_record_the_scheme(store: Engine) -> None:
    create_all(store)
    claim_scheme(store, Partition(1, 2), owner="run", now=NOW, record=False)
    claim_scheme(store, Partition(1, 4), owner="a", now=NOW, record=True)


def test_a_partition_column_the_customer_table_lacks_is_located(
    store: Engine, tmp_path: Path
) -> None:
    create_all(store)
    text = SETTINGS.dictionary_path.read_text(encoding="utf-8")
    text = text.replace("key: id\n", "key: id\npartition_column: brnch_id\n", 1)
    path = tmp_path / "data_dictionary.yaml"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("partition_column: brnch_id") + 1
    with pytest.raises(DiagnosticsError) as caught:
        check_partition_column(store, load_dictionary(path))
    assert caught.value.code == "E1043"
    (found,) = caught.value.diagnostics
    assert (found.code, found.line, found.file) == ("E1043", line, str(path))
    assert "brnch_id" in found.message and "customers" in found.message
    path.write_text(text.replace("brnch_id", "branch_id"), encoding="utf-8")
    check_partition_column(store, load_dictionary(path))  # a real column: no error


def test_the_shipped_dictionary_partitions_by_the_key() -> None:
    assert load_dictionary(REPO / "schemas" / "data_dictionary.yaml").partition_column is None
