"""Small random customer stores full of awkward values, for the SQL-vs-Python property test.

Deterministic per seed; every value is drawn near the anchor date so conditions hit: empty
fields, 29 February and lunar 30ths and leap months as birthdays, births before 1900 (no lunar
date) and in the future, year ends, timestamps a second either side of midnight, negative
and zero AUM, withdrawals of exactly 50,000, complaints due to the minute, snapshots on the
cut-off day, contacts by every role and by nobody. Some values break the dictionary's
``valid:`` bounds (births and account openings after the run date, negative amounts,
relationship levels outside 1-5), so bounds are checked on both sides too.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import Engine

from engine.core import calendar as cal
from engine.store import schema
from engine.store.models import (
    CUSTOMER_TABLES,
    aum_snapshots,
    branches,
    complaints,
    contacts,
    customer_tags,
    customers,
    holdings,
    managers,
    metadata,
    transactions,
)

ROLES = ("manager", "senior_manager", "branch_leader")
TAGS = ("高净值", "代发工资", "已流失", "Vip", "vip")
OCCUPATIONS = ("教师", "Engineer", "engineer", "退休", "私营企业主", None)
AMOUNTS = (0.0, 0.01, 49_999.99, 50_000.0, 50_000.01, 120_000.5, 1_000_000.0, -0.01, -50_000.0)


def _moment(r: random.Random, day: dt.date) -> dt.datetime:
    """A time on ``day``, often a second away from midnight."""
    second = r.choice((0, 1, 86_399, 86_398, 9 * 3600, r.randrange(86_400)))
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=second)


def _birth(r: random.Random, anchor: dt.date) -> dt.date | None:
    x = r.random()
    years_back = r.randint(1, 90)
    if x < 0.08:
        return None
    if x < 0.2:
        year = r.choice([y for y in range(1904, anchor.year, 4) if cal.is_leap_year(y)])
        return dt.date(year, 2, 29)
    if x < 0.3:
        return (
            dt.date(anchor.year - years_back, 12, 31)
            if r.random() < 0.5
            else dt.date(anchor.year - years_back, 1, 1)
        )
    if x < 0.5:  # a lunar date near the anchor's lunar date: 30ths and leap months
        near = anchor + dt.timedelta(days=r.randint(-3, 10))
        lunar = cal.to_lunar(near)
        year = anchor.year - years_back
        if lunar is not None:
            day = 30 if r.random() < 0.3 else lunar.day
            solar = cal.to_solar(year, lunar.month, day, leap=r.random() < 0.3)
            if solar is not None:
                return solar
    if x < 0.55:
        return dt.date(1899, 12, r.randint(1, 31))  # before the lunar range
    if x < 0.6:
        future = r.randint(-1, 4) if r.random() < 0.5 else r.randint(5, 400)
        return anchor + dt.timedelta(days=future)  # around the run date or after it
    near = anchor + dt.timedelta(days=r.randint(-3, 10))
    try:
        return near.replace(year=anchor.year - years_back)
    except ValueError:
        return dt.date(anchor.year - years_back, 2, 28)


def rows(seed: int, anchor: dt.date, n: int = 60) -> dict[str, list[dict[str, Any]]]:
    r = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {t.name: [] for t in CUSTOMER_TABLES}
    out["branches"].append({"id": "B1", "name": "一支行", "city": "北京"})
    staff = [f"M{i}" for i in range(6)]
    for i, m in enumerate(staff):
        out["managers"].append(
            {"id": m, "name": f"经理{i}", "phone": "13800000000", "email": None,
             "role": ROLES[i % 3], "branch_id": "B1"}
        )  # fmt: skip
    now = dt.datetime.combine(anchor, dt.time(9))
    for i in range(n):
        cid = f"C{seed:02d}{i:04d}"
        aum = (
            r.choice((-5_000.0, 0.0, 10.0, 49_999.99, 500_000.0, 6_000_000.0))
            if r.random() < 0.3
            else round(r.uniform(0, 3_000_000), 2)
        )
        out["customers"].append({
            "id": cid, "name": f"客户{i}", "gender": r.choice(("M", "F", None)),
            "birth_date": _birth(r, anchor),
            "birthday_calendar": r.choice(("solar", "lunar", "solar")),
            "phone": r.choice(("13912345678", None)),
            "email": r.choice(("a@Example.com", "b@example.com", None)),
            "branch_id": "B1", "manager_id": r.choice((*staff, None)),
            "tier": r.choice(("mass", "gold", "vip", "private")), "aum": aum,
            "avg_daily_deposit": r.choice((-1.0, round(r.uniform(0, 100_000), 2))),
            "risk_level": r.choice(("C1", "C3", "C5", None)),
            "occupation": r.choice(OCCUPATIONS),
            "opened_on": _birth(r, anchor) or anchor - dt.timedelta(days=r.randint(0, 4000)),
            "last_active_at": None if r.random() < 0.1 else _moment(r, anchor + dt.timedelta(days=r.randint(-70, 3))),  # noqa: E501
            "lifecycle_stage": r.choice(("new", "growth", "mature", "dormant", "churned")),
            "relationship_level": r.choice((0, 1, 3, 5, 6, None)),
            "preferred_channel": r.choice(("sms", "email", None)),
        })  # fmt: skip
        for tag in r.sample(TAGS, r.randint(0, 2)):
            out["customer_tags"].append({"customer_id": cid, "tag": tag})
        for _ in range(r.randint(0, 3)):
            out["holdings"].append({
                "customer_id": cid, "product_type": r.choice(("wealth", "fund", "time_deposit")),
                "product_name": "产品", "amount": r.choice(AMOUNTS),
                "opened_on": anchor - dt.timedelta(days=r.randint(-3, 900)),
                "maturity_date": None if r.random() < 0.3 else anchor + dt.timedelta(days=r.randint(-3, 12)),  # noqa: E501
            })  # fmt: skip
        for _ in range(r.randint(0, 5)):
            out["transactions"].append({
                "customer_id": cid, "occurred_at": _moment(r, anchor - dt.timedelta(days=r.randint(-1, 9))),  # noqa: E501
                "kind": r.choice(("withdrawal", "withdrawal", "deposit", "transfer_out")),
                "amount": r.choice(AMOUNTS), "channel": r.choice(("counter", "mobile")),
            })  # fmt: skip
        for _ in range(r.randint(0, 3)):
            out["contacts"].append({
                "customer_id": cid, "manager_id": r.choice((*staff, None)),
                "contacted_at": _moment(r, anchor - dt.timedelta(days=r.choice((0, 29, 30, 31, 89, 91, r.randint(0, 200))))),  # noqa: E501
                "channel": r.choice(("phone", "visit")), "outcome": "reached",
            })  # fmt: skip
        if r.random() < 0.3:
            opened = now - dt.timedelta(days=r.randint(0, 20), minutes=r.choice((0, 1, 7)))
            out["complaints"].append({
                "customer_id": cid, "category": r.choice(("fee", "service")),
                "severity": r.choice(("low", "high")), "opened_at": opened,
                "due_at": now + dt.timedelta(minutes=r.choice((-1, 0, 1, -3000, 3000))),
                "resolved_at": None if r.random() < 0.6 else opened + dt.timedelta(hours=5),
            })  # fmt: skip
        month = dt.date(anchor.year, anchor.month, 1)
        for back in range(r.randint(0, 4)):
            year, m = divmod(month.year * 12 + month.month - 1 - back, 12)
            snap = dt.date(year, m + 1, 1)
            if r.random() < 0.2:  # a snapshot on an arbitrary day, maybe the cut-off itself
                snap = anchor - dt.timedelta(days=r.choice((28, 30, 31, 45)))
            if any(s["month"] == snap for s in out["aum_snapshots"] if s["customer_id"] == cid):
                continue
            base = aum if r.random() < 0.2 else r.choice((aum / 0.7, aum * 2, 0.0, -10.0, aum + 1))
            out["aum_snapshots"].append({"customer_id": cid, "month": snap, "aum": round(base, 2)})
    return out


def build(engine: Engine, seed: int, anchor: dt.date) -> None:
    data = rows(seed, anchor)
    with engine.begin() as conn:
        metadata.create_all(conn)  # engine tables too: the dictionary may read them (tags)
        schema.stamp_head(conn)  # made from the models: current, as create_all's stores are
        for t in (branches, managers, customers, customer_tags, holdings, transactions,
                  aum_snapshots, contacts, complaints):  # fmt: skip
            if data[t.name]:
                conn.execute(t.insert(), data[t.name])
