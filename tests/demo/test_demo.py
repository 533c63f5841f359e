"""The demo store generator, on SQLite and on a real PostgreSQL.

Playbook demos, the CLI tests and the condition property tests all stand on this data, so what
they rely on is checked here: the same inputs give the same rows on every backend, the fields
obey the bank's rules (tier by AUM, a customer's manager works at their branch, lifecycle by
activity), and the scenarios the shipped playbooks target exist at small sizes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Numeric, Table, func, insert, select

from engine.demo import generator as demo
from engine.demo.generator import generate
from engine.store.db import open_store
from engine.store.models import (
    CUSTOMER_TABLES,
    customer_tags,
    customers,
    runs,
)

AS_OF = dt.date(2026, 11, 23)
MIDNIGHT = dt.datetime.combine(AS_OF, dt.time())


def _normalise(table: Table, row: Any) -> tuple[Any, ...]:
    # SQLite hands back a whole-yuan NUMERIC as int, PostgreSQL as float: compare as float.
    return tuple(
        float(value) if value is not None and isinstance(col.type, Numeric) else value
        for col, value in zip(table.columns, row, strict=True)
    )


def _fingerprint(engine: Engine) -> dict[str, str]:
    """A hash per customer table over its rows, sorted in Python: collations differ between
    backends (the tags are Chinese), so ORDER BY would not give one order everywhere."""
    digests = {}
    with engine.connect() as conn:
        for table in CUSTOMER_TABLES:
            rows = sorted(
                (_normalise(table, row) for row in conn.execute(select(table))),
                key=repr,
            )
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def _rows(engine: Engine, table: Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(table)).mappings()]


def test_same_inputs_same_rows_and_another_seed_differs(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        generate(engine, customers=500, seed=7, as_of=AS_OF)
        first = _fingerprint(engine)
        generate(engine, customers=500, seed=7, as_of=AS_OF)
        assert _fingerprint(engine) == first
        generate(engine, customers=500, seed=8, as_of=AS_OF)
        other = _fingerprint(engine)
    finally:
        engine.dispose()
    # Every table changes with the seed except the reference data sized by the count alone.
    changed = {name for name in first if first[name] != other[name]}
    assert changed >= {"customers", "holdings", "transactions", "aum_snapshots", "consents"}


def test_backend_chunks_and_second_process_do_not_change_the_data(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        generate(reference, customers=2_500, as_of=AS_OF)
        expected = _fingerprint(reference)
    finally:
        reference.dispose()
    monkeypatch.setattr(demo, "CHUNK_SIZE", 1_000)  # three chunks, the last one partial
    monkeypatch.setattr(demo, "PARALLEL_FROM", 0)  # generated in a second process
    engine = open_store(db_url)
    try:
        generate(engine, customers=2_500, as_of=AS_OF)
        assert _fingerprint(engine) == expected
    finally:
        engine.dispose()


def _stored(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        tables = (*CUSTOMER_TABLES, runs)
        return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in tables}


def test_regenerating_replaces_the_store(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        first = generate(engine, customers=300, as_of=AS_OF)
        with engine.begin() as conn:
            conn.execute(
                insert(runs).values(
                    playbook_id="p", window="w", as_of=MIDNIGHT, content_hash="h",
                    started_at=MIDNIGHT, status="done", suppressed={},
                )
            )  # fmt: skip
        again = generate(engine, customers=300, as_of=AS_OF)
        after_again = _stored(engine)
        smaller = generate(engine, customers=200, as_of=AS_OF)
        after_smaller = _stored(engine)
    finally:
        engine.dispose()
    assert again == first and first["customers"] == 300
    assert after_again == {**first, "runs": 0}  # 300 customers, not 600; engine tables anew
    assert smaller["customers"] == 200
    assert after_smaller == {**smaller, "runs": 0}


def test_fields_follow_the_banks_rules(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        counts = generate(engine, customers=1_000, seed=3, as_of=AS_OF)
        data = {t.name: _rows(engine, t) for t in CUSTOMER_TABLES}
    finally:
        engine.dispose()
    assert counts == {name: len(rows) for name, rows in data.items()}
    people = data["customers"]
    assert len(people) == 1_000

    # Branches and staff: every branch has each role; a customer's manager is a 'manager' of
    # the customer's own branch.
    assert len(data["branches"]) >= 3
    staff = {m["id"]: m for m in data["managers"]}
    roles = defaultdict(set)
    for m in staff.values():
        roles[m["branch_id"]].add(m["role"])
    assert all(
        roles[b["id"]] == {"manager", "senior_manager", "branch_leader"} for b in data["branches"]
    )
    for c in people:
        assert staff[c["manager_id"]]["role"] == "manager"
        assert staff[c["manager_id"]]["branch_id"] == c["branch_id"]

    tiers: Counter[str] = Counter()
    for c in people:
        aum = c["aum"]
        expected = (
            "mass" if aum < 50_000 else "gold" if aum < 500_000 else
            "vip" if aum < 6_000_000 else "private"
        )  # fmt: skip
        assert c["tier"] == expected, c
        tiers[c["tier"]] += 1
        assert 0 <= c["avg_daily_deposit"] < aum
        assert c["gender"] in ("M", "F")
        assert c["risk_level"] in {"C1", "C2", "C3", "C4", "C5"}
        assert 1 <= c["relationship_level"] <= 5
        assert c["preferred_channel"] in {"sms", "email", "phone", "visit"}
        assert c["preferred_channel"] != "email" or c["email"]
        assert len(c["phone"]) == 11 and c["phone"].startswith("1") and c["phone"].isdigit()
        assert dt.date(1940, 1, 1) <= c["birth_date"] <= dt.date(2006, 12, 31)
        assert c["birth_date"] < c["opened_on"] < AS_OF
        assert c["opened_on"] <= c["last_active_at"].date() < AS_OF
        idle = (AS_OF - c["last_active_at"].date()).days
        age = (AS_OF - c["opened_on"]).days
        stage = (
            "new" if age < 90 else "churned" if idle > 365 else "dormant" if idle > 180 else
            c["lifecycle_stage"]
        )  # fmt: skip
        assert c["lifecycle_stage"] == stage, c
        assert stage in ("new", "churned", "dormant") or c["lifecycle_stage"] in (
            "growth",
            "mature",
        )
    assert len({c["phone"] for c in people}) == len(people)
    assert 600 <= tiers["mass"] <= 800 and 120 <= tiers["gold"] <= 280
    assert 50 <= tiers["vip"] + tiers["private"] <= 160
    assert any(c["birth_date"].month == 2 and c["birth_date"].day == 29 for c in people)
    assert 0.08 <= sum(c["birthday_calendar"] == "lunar" for c in people) / 1_000 <= 0.25
    assert 0.5 <= sum(c["email"] is not None for c in people) / 1_000 <= 0.7
    assert any(
        c["lifecycle_stage"] == "new" and (AS_OF - c["opened_on"]).days <= 14 for c in people
    )

    by_id = {c["id"]: c for c in people}
    tags = defaultdict(set)
    for t in data["customer_tags"]:
        tags[t["customer_id"]].add(t["tag"])
    assert {"代发工资", "房贷客户", "已流失", "高净值", "养老金"} <= set().union(*tags.values())
    assert all(
        by_id[cid]["lifecycle_stage"] in ("dormant", "churned")
        for cid in tags
        if "已流失" in tags[cid]
    )

    # Holdings add up to the AUM; deposits and wealth products mature, some within a week.
    held: dict[str, float] = defaultdict(float)
    soon = 0
    for h in data["holdings"]:
        held[h["customer_id"]] += h["amount"]
        has_maturity = h["product_type"] in ("time_deposit", "wealth")
        assert (h["maturity_date"] is not None) == has_maturity
        assert h["opened_on"] <= AS_OF
        if has_maturity:
            assert h["maturity_date"] > AS_OF
            soon += h["maturity_date"] <= AS_OF + dt.timedelta(days=7)
    assert all(abs(held[c["id"]] - c["aum"]) < 0.005 for c in people)
    assert all(1 <= n <= 4 for n in Counter(h["customer_id"] for h in data["holdings"]).values())
    assert soon > 0

    # Transactions: the last 90 days, none after the last activity; bursts of large withdrawals.
    large: dict[str, list[dt.datetime]] = defaultdict(list)
    for t in data["transactions"]:
        assert (
            MIDNIGHT - dt.timedelta(days=91)
            < t["occurred_at"]
            <= by_id[t["customer_id"]]["last_active_at"]
        )
        if t["kind"] == "withdrawal" and t["amount"] >= 50_000:
            large[t["customer_id"]].append(t["occurred_at"])
    assert any(len(ts) >= 3 and max(ts) - min(ts) <= dt.timedelta(days=7) for ts in large.values())

    # Monthly snapshots on the 1st of the last 12 months; a few sharp falls over the last month.
    months: dict[str, dict[dt.date, float]] = defaultdict(dict)
    for s in data["aum_snapshots"]:
        assert (
            s["month"].day == 1 and MIDNIGHT.date() - dt.timedelta(days=366) < s["month"] <= AS_OF
        )
        months[s["customer_id"]][s["month"]] = s["aum"]
    this, last, before = dt.date(2026, 11, 1), dt.date(2026, 10, 1), dt.date(2026, 9, 1)
    drops = 0
    for cid, month in months.items():
        if last not in month:
            continue
        aum = by_id[cid]["aum"]
        if month[this] <= 0.7 * month[last]:  # a sharp fall, seen from today's AUM too (30 days ago
            drops += 1  # is the 1st of last month or the one before, by the day of the month)
            assert aum <= 0.7 * month[last]
            assert before not in month or aum <= 0.7 * month[before]
        else:  # everyone else moves by a few percent a month, never by a third
            assert month[this] > 0.9 * month[last] and aum > 0.85 * month[last]
    assert 5 <= drops <= 40

    # Contacts come from the customer's branch; some VIPs have gone a long time without one.
    latest: dict[str, dt.datetime] = {}
    for c in data["contacts"]:
        assert staff[c["manager_id"]]["branch_id"] == by_id[c["customer_id"]]["branch_id"]
        assert c["channel"] in {"phone", "visit", "sms", "wechat"}
        assert c["outcome"] in {"reached", "no_answer", "refused", "scheduled"}
        assert MIDNIGHT - dt.timedelta(days=366) < c["contacted_at"] < MIDNIGHT
        latest[c["customer_id"]] = max(
            c["contacted_at"], latest.get(c["customer_id"], c["contacted_at"])
        )
    vips = [c["id"] for c in people if c["tier"] in ("vip", "private")]
    assert any(MIDNIGHT - latest[v] > dt.timedelta(days=90) for v in vips if v in latest)

    # Complaints: due after opening, some still open past their due time.
    assert 5 <= len(data["complaints"]) <= 40
    for c in data["complaints"]:
        assert c["due_at"] > c["opened_at"]
        assert c["resolved_at"] is None or c["opened_at"] < c["resolved_at"] < MIDNIGHT
    assert any(c["resolved_at"] is None and c["due_at"] < MIDNIGHT for c in data["complaints"])

    # Consents: every channel x purpose per customer; withdrawals come after the consent.
    assert len(data["consents"]) == 6 * len(people)
    marketing = [c for c in data["consents"] if c["purpose"] == "marketing"]
    withdrawn = [c for c in marketing if c["withdrawn_at"] is not None]
    assert all(c["given_at"] is not None and c["withdrawn_at"] > c["given_at"] for c in withdrawn)
    assert all(c["withdrawn_at"] < MIDNIGHT for c in withdrawn)
    assert 0.02 <= len(withdrawn) / len(marketing) <= 0.09
    assert sum(c["given_at"] is not None for c in data["consents"]) > 0.7 * len(data["consents"])


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_dormant_vip_scenario_exists_at_200_customers(db_url: str, seed: int) -> None:
    """The first shipped playbook: vip/private, inactive for over 60 days, not churned."""
    engine = open_store(db_url)
    try:
        generate(engine, customers=200, seed=seed, as_of=AS_OF)
        churned = select(customer_tags.c.customer_id).where(customer_tags.c.tag == "已流失")
        vip = customers.c.tier.in_(["vip", "private"])
        idle = customers.c.last_active_at < MIDNIGHT - dt.timedelta(days=60)
        with engine.connect() as conn:
            targets = conn.scalar(
                select(func.count()).where(vip, idle, customers.c.id.not_in(churned))
            )
            vips = conn.scalar(select(func.count()).where(vip))
    finally:
        engine.dispose()
    assert targets is not None and vips is not None
    assert 0 < targets < vips


def test_share_of_idle_vips_is_realistic(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        generate(engine, customers=5_000, seed=5, as_of=AS_OF)
        people = _rows(engine, customers)
    finally:
        engine.dispose()
    vips = [c for c in people if c["tier"] in ("vip", "private")]
    idle = [c for c in vips if c["last_active_at"] < MIDNIGHT - dt.timedelta(days=60)]
    assert 0.10 <= len(idle) / len(vips) <= 0.20


def test_progress_bar_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        generate(engine, customers=50, as_of=AS_OF)
        quiet = capsys.readouterr()
        generate(engine, customers=50, as_of=AS_OF, progress=True)
        shown = capsys.readouterr()
    finally:
        engine.dispose()
    assert quiet.out == quiet.err == ""
    assert shown.out == ""
    assert "50/50" in shown.err


def test_rejects_a_negative_count_and_allows_an_empty_store(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(ValueError, match="customers"):
            generate(engine, customers=-1, as_of=AS_OF)
        counts = generate(engine, customers=0, as_of=AS_OF)
    finally:
        engine.dispose()
    assert counts["customers"] == 0 and counts["branches"] == 3 and counts["managers"] == 9


def test_a_failed_generating_process_is_reported_not_awaited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "PARALLEL_FROM", 0)
    monkeypatch.setattr(demo, "WORKER", "import sys; sys.exit('boom: no demo data today')")
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(RuntimeError, match=r"exit code 1.*boom: no demo data today"):
            generate(engine, customers=100, as_of=AS_OF)
        with engine.connect() as conn:  # the load's SQLite settings were put back
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()
