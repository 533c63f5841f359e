"""The audit log on both backends: appends chain, concurrent writers never fork the chain,
and any edited, removed or reordered entry is found by `verify` (and `audit verify`)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, delete, select, update
from support import cli

from engine.store import audit
from engine.store.db import open_store
from engine.store.models import audit_head, audit_log


def fill(store: Engine, n: int) -> None:
    audit.ensure_tables(store)
    for i in range(n):
        with store.begin() as conn:
            audit.record(
                conn, actor=f"user{i % 3}", action="playbook.save", subject=f"playbook:p{i}",
                customer_id=None if i % 2 else f"C{i:010d}", detail={"n": i, "名": "值"},
            )  # fmt: skip


def test_entries_chain_and_verify_intact(store: Engine) -> None:
    fill(store, 12)
    found = audit.verify(store)
    assert found.intact and found.entries == 12
    rows = audit.entries(store, actor="user1")
    assert [r["id"] for r in rows] == [11, 8, 5, 2]  # newest first
    assert audit.entries(store, customer_id="C0000000004")[0]["subject"] == "playbook:p4"


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda conn: conn.execute(
            update(audit_log).where(audit_log.c.id == 5).values(actor="someone else")
        ), "entry 5 was changed"),
        (lambda conn: conn.execute(
            update(audit_log).where(audit_log.c.id == 5).values(detail='{"n": 99}')
        ), "entry 5 was changed"),
        (lambda conn: conn.execute(delete(audit_log).where(audit_log.c.id == 6)),
         "entry 6 is missing"),
        (lambda conn: conn.execute(delete(audit_log).where(audit_log.c.id == 10)),
         "the head says 10 entries"),
    ],
    ids=["actor edited", "detail edited", "entry removed", "last entry removed"],
)  # fmt: skip
def test_a_tampered_log_is_found(store: Engine, tamper: object, says: str) -> None:
    fill(store, 10)
    with store.begin() as conn:
        tamper(conn)  # type: ignore[operator]
    found = audit.verify(store)
    assert not found.intact
    assert any(says in p for p in found.problems), found.problems


def test_a_rehashed_entry_still_breaks_the_link_after_it(store: Engine) -> None:
    """Whoever edits an entry and recomputes its hash must also rewrite every later entry."""
    fill(store, 6)
    with store.begin() as conn:
        row = dict(conn.execute(select(audit_log).where(audit_log.c.id == 3)).mappings().one())
        row["actor"] = "forger"
        conn.execute(
            update(audit_log)
            .where(audit_log.c.id == 3)
            .values(actor="forger", hash=audit.entry_hash(row))
        )
    found = audit.verify(store)
    assert found.problems == ["entry 4 does not follow the entry before it"]


def test_concurrent_writers_never_fork_the_chain(store: Engine) -> None:
    audit.ensure_tables(store)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(15):
                with store.begin() as conn:
                    audit.record(conn, actor=f"w{k}", action="login", subject=str(i))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    found = audit.verify(store)
    assert found.intact and found.entries == 60
    with store.connect() as conn:
        assert conn.execute(select(audit_head.c.entries)).scalar_one() == 60


def test_audit_verify_exits_1_and_says_where(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        fill(store, 4)
        assert cli("audit", "verify", "--db", sqlite_url).returncode == 0
        with store.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.id == 2).values(subject="other"))
    finally:
        store.dispose()
    result = cli("audit", "verify", "--db", sqlite_url)
    assert result.returncode == 1
    assert "entry 2 was changed" in result.stderr
    listed = cli("audit", "--db", sqlite_url, "--format", "json", "--actor", "user0")
    assert listed.returncode == 0 and '"subject": "playbook:p0"' in listed.stdout
