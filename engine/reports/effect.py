"""Effect measurement: what each playbook did over a period, and whether it worked.

Per playbook: runs, customers acted on and held out (the ledger), messages by outbox status,
suppressions by reason (summed from ``runs.suppressed``, which also counts ``already_done``),
tasks by status and outcome, and, for a playbook with a ``goal``, the goal rate of treated
customers against the holdout group with the lift and its 95% interval
(:mod:`engine.reports.lift`).

Who is measured: each customer once, from their first ledger row of the playbook in the
period (acted on, or held out). The executor draws the holdout among customers who passed
every other gate, so the two arms are alike but for the playbook. Their goal window runs from
that row's moment to ``within`` later; customers whose window has not ended by ``as_of`` are
counted as pending, not as failures. Everything is counted in SQL, grouped by the recorded
moment (one query per run): no customer table is read into Python.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    and_,
    case,
    func,
    inspect,
    literal_column,
    select,
    table,
)
from sqlalchemy.sql import Subquery

from engine.conditions.goals import met
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock, utc_naive, utc_to_local
from engine.core.dictionary import DataDictionary
from engine.core.durations import format_duration
from engine.playbook.model import Playbook
from engine.policy import HELD_OUT
from engine.reports.lift import MIN_ARM, Rate, lift, verdict, wilson
from engine.store.models import action_ledger, outbox, runs, simulations, tasks

OUTBOX_STATUSES = ("pending", "sent", "failed", "cancelled")
TASK_STATUSES = ("open", "done", "cancelled")


def period_bounds(
    since: dt.date | None, until: dt.date, tz: ZoneInfo
) -> tuple[dt.datetime | None, dt.datetime]:
    """Local calendar days [since, until], both included, as naive UTC bounds [lo, hi)."""

    def utc(day: dt.date) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time(), tz)
        return utc_naive(local)

    return (utc(since) if since else None), utc(until + dt.timedelta(days=1))


def effect_report(
    store: Engine,
    dictionary: DataDictionary,
    playbooks: Sequence[Playbook],
    *,
    as_of: dt.datetime,
    since: dt.date | None,
    until: dt.date,
    tz: ZoneInfo,
) -> dict[str, Any]:
    """The report as one JSON-ready document (see docs/reports.md)."""
    lo, hi = period_bounds(since, until, tz)
    with store.connect() as conn:
        entries = [
            _playbook(conn, dictionary, p, lo=lo, hi=hi, as_of=as_of, tz=tz) for p in playbooks
        ]
        simulated = _simulations(conn)
    return {
        "as_of": as_of.isoformat(),
        "since": since.isoformat() if since else None,
        "until": until.isoformat(),
        "min_arm": MIN_ARM,
        "simulated": simulated,
        "playbooks": entries,
    }


def _in_period(column: Any, lo: dt.datetime | None, hi: dt.datetime) -> Any:
    return and_(column >= lo, column < hi) if lo is not None else column < hi


def _playbook(
    conn: Connection,
    d: DataDictionary,
    p: Playbook,
    *,
    lo: dt.datetime | None,
    hi: dt.datetime,
    as_of: dt.datetime,
    tz: ZoneInfo,
) -> dict[str, Any]:
    pid = p.id
    run_rows = conn.execute(
        select(runs.c.suppressed).where(runs.c.playbook_id == pid, _in_period(runs.c.as_of, lo, hi))
    ).all()
    suppressed: Counter[str] = Counter()
    for (reasons,) in run_rows:
        for reason, n in (reasons or {}).items():
            if reason != HELD_OUT:
                suppressed[str(reason)] += int(n)
    ledger_in = and_(
        action_ledger.c.playbook_id == pid, _in_period(action_ledger.c.created_at, lo, hi)
    )
    acted, held, rows = conn.execute(
        select(
            func.count(
                func.distinct(case((~action_ledger.c.held_out, action_ledger.c.customer_id)))
            ),
            func.count(
                func.distinct(case((action_ledger.c.held_out, action_ledger.c.customer_id)))
            ),
            func.count(),
        ).where(ledger_in)
    ).one()
    messages = _by(conn, outbox.c.status, outbox.c.playbook_id == pid, outbox.c.created_at, lo, hi)
    task_status = _by(conn, tasks.c.status, tasks.c.playbook_id == pid, tasks.c.created_at, lo, hi)
    outcomes = _by(
        conn,
        tasks.c.outcome,
        and_(tasks.c.playbook_id == pid, tasks.c.status == "done"),
        tasks.c.created_at,
        lo,
        hi,
    )
    return {
        "id": pid,
        "title": p.title,
        "holdout_percent": p.holdout_percent,
        "runs": len(run_rows),
        "triggered": {"customers": int(acted), "held_out": int(held), "ledger_rows": int(rows)},
        "messages": {s: messages.get(s, 0) for s in OUTBOX_STATUSES}
        | {s: n for s, n in messages.items() if s not in OUTBOX_STATUSES},
        "suppressed": dict(sorted(suppressed.items(), key=lambda kv: (-kv[1], kv[0]))),
        "tasks": {s: task_status.get(s, 0) for s in TASK_STATUSES}
        | {"outcomes": dict(sorted(outcomes.items()))},
        "goal": _goal(conn, d, p, ledger_in, as_of, tz) if p.goal is not None else None,
    }


def _by(
    conn: Connection, key: Any, where: Any, at: Any, lo: dt.datetime | None, hi: dt.datetime
) -> dict[str, int]:
    query = select(key, func.count()).where(where, _in_period(at, lo, hi)).group_by(key)
    return {str(k): int(n) for k, n in conn.execute(query) if k is not None}


def _first_exposures(ledger_in: Any) -> Subquery:
    """Each customer's first ledger row of the playbook in the period."""
    ranked = (
        select(
            action_ledger.c.customer_id,
            action_ledger.c.created_at,
            action_ledger.c.held_out,
            func.row_number()
            .over(
                partition_by=action_ledger.c.customer_id,
                order_by=(action_ledger.c.created_at, action_ledger.c.id),
            )
            .label("rn"),
        )
        .where(ledger_in)
        .subquery("ranked")
    )
    return (
        select(ranked.c.customer_id, ranked.c.created_at, ranked.c.held_out)
        .where(ranked.c.rn == 1)
        .subquery("first_exposure")
    )


def _goal(
    conn: Connection,
    d: DataDictionary,
    p: Playbook,
    ledger_in: Any,
    as_of: dt.datetime,
    tz: ZoneInfo,
) -> dict[str, Any]:
    goal = p.goal
    assert goal is not None
    first = _first_exposures(ledger_in)
    cohorts = conn.execute(
        select(first.c.created_at, first.c.held_out, func.count())
        .group_by(first.c.created_at, first.c.held_out)
        .order_by(first.c.created_at)
    ).all()
    now = as_of.astimezone(tz).replace(tzinfo=None)
    counts = {True: [0, 0, 0], False: [0, 0, 0]}  # held_out -> [n, met, pending]
    customers = table(d.customer_table)
    compiler = SqlCompiler(d, Clock.at(now, tz))  # one set of lookup joins for every cohort
    key = literal_column(f"{d.customer_table}.{d.key}", String())
    ended: set[dt.datetime] = set()
    for moment, held, n in cohorts:
        start = utc_to_local(moment, tz)
        if start + goal.within > now:
            counts[bool(held)][2] += int(n)
        else:
            ended.add(moment)
    for moment in sorted(ended):
        start = utc_to_local(moment, tz)
        hit = met(goal, d, start, tz, compiler)
        query = compiler.joined(
            select(
                first.c.held_out,
                func.count(),
                func.coalesce(func.sum(case((hit, 1), else_=0)), 0).cast(Integer),
            )
            .select_from(customers.join(first, first.c.customer_id == key))
            .where(first.c.created_at == moment)
            .group_by(first.c.held_out),
            customers,
        )
        for held, n, hits in conn.execute(query):
            counts[bool(held)][0] += int(n)
            counts[bool(held)][1] += int(hits)
    treated = Rate(met=counts[False][1], n=counts[False][0])
    has_holdout = p.holdout_percent > 0 or sum(counts[True]) > 0
    control = Rate(met=counts[True][1], n=counts[True][0]) if has_holdout else None
    found = lift(treated, control) if control is not None else None
    return {
        "kind": goal.kind,
        "within": format_duration(goal.within),
        "description": goal.describe(),
        "treated": _arm(treated, counts[False][2]),
        "holdout": _arm(control, counts[True][2]) if control is not None else None,
        "lift": None
        if found is None
        else {
            "difference": found.difference,
            "ci95": list(found.ci95),
            "relative": found.relative,
            "method": "Newcombe hybrid score (Wilson) interval, 95%",
        },
        "verdict": verdict(treated, control, found),
    }


def _arm(rate: Rate, pending: int) -> dict[str, Any]:
    ci = wilson(rate.met, rate.n)
    return {
        "n": rate.n,
        "met": rate.met,
        "rate": rate.rate,
        "ci95": list(ci) if ci is not None else None,
        "pending": pending,
    }


def _simulations(conn: Connection) -> list[Mapping[str, Any]]:
    """Simulated outcomes written into this store (``demo-outcomes``), so no reader mistakes
    them for real customers' behaviour."""
    if not inspect(conn).has_table(simulations.name):
        return []
    rows = conn.execute(select(simulations).order_by(simulations.c.id)).mappings()
    return [
        {
            "created_at": r["created_at"].replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
            "start": r["start_day"].isoformat(),
            "days": r["days"],
            "seed": r["seed"],
            "rates": r["rates"],
        }
        for r in rows
    ]
