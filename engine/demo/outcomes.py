"""A simulated month on the demo store, so the effect report has something to measure.

Day by day, every enabled scheduled playbook runs for real at its scheduled time (ledger,
outbox, tasks, exactly as the daemon would), and each customer it acts on or holds out is
given a simulated outcome: with one chance for treated customers and a lower one for the
holdout group, they meet the playbook's goal on a day inside its window (a transaction and
a fresh ``last_active_at`` for ``activity_resumed``, a new holding for ``product_bought``).
Outcomes land in the store on their own day, so later runs see customers who came back.

Everything is a function of the seed and the store; the run is recorded in ``simulations`` so
the effect report says, on every page, that the outcomes are simulated. Only for demo stores:
it writes customer tables, which the engine otherwise never does. It sits beside the
scheduler, not in ``engine.store``, because it drives the executor.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, func, insert, select, update

from engine.conditions.ast import All, Condition, Test
from engine.conditions.goals import Goal
from engine.core.clock import Clock, utc_now, utc_to_local
from engine.core.dictionary import DataDictionary
from engine.core.errors import EngineError
from engine.core.settings import Settings
from engine.delivery.tasklist import complete
from engine.execution.executor import Executor, by_priority, slot_on
from engine.execution.sinks import StoreSink
from engine.playbook.model import Playbook
from engine.rendering.renderer import Renderer
from engine.store.db import is_demo_store
from engine.store.models import (
    action_ledger,
    customers,
    holdings,
    simulations,
    tasks,
    transactions,
)
from engine.triggers.schedule import Schedule

SIMULATED_KINDS = ("activity_resumed", "product_bought")
DEFAULT_RATES = {"treated": 0.40, "holdout": 0.15}
# managers close most call tasks within their due time, with these outcomes
TASK_DONE_CHANCE = 0.8
TASK_OUTCOMES = (("reached", 0.6), ("no_answer", 0.3), ("declined", 0.1))
PRODUCT_NAME = "模拟产品 (simulated)"


@dataclass(order=True)
class _Outcome:
    at: dt.datetime  # naive local time, when it happens
    customer_id: str = field(compare=False)
    kind: str = field(compare=False)
    product_type: str = field(compare=False, default="wealth")
    amount: float = field(compare=False, default=0.0)
    task_id: int | None = field(compare=False, default=None)  # kind "task_done": the outcome


@dataclass
class Simulation:
    start: dt.date
    days: int
    seed: int
    runs: int = 0
    recorded: Counter[str] = field(default_factory=Counter)  # treated / holdout
    outcomes: Counter[str] = field(default_factory=Counter)  # goal kind -> written
    tasks_done: Counter[str] = field(default_factory=Counter)  # task outcome -> closed
    not_simulated: list[str] = field(default_factory=list)  # playbooks whose goal is not
    last_window_end: dt.date | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "recorded": dict(self.recorded),
            "outcomes": dict(self.outcomes),
            "tasks_done": dict(self.tasks_done),
            "not_simulated": self.not_simulated,
            "report_as_of": self.last_window_end.isoformat() if self.last_window_end else None,
        }


def default_start(store: Engine) -> dt.date:
    """The day after the store's latest transaction: the demo's "today" moved on by one."""
    with store.connect() as conn:
        latest = conn.execute(select(func.max(transactions.c.occurred_at))).scalar()
    if latest is None:
        return dt.date.today()
    day = (
        latest.date()
        if isinstance(latest, dt.datetime)
        else dt.date.fromisoformat(str(latest)[:10])
    )
    return day + dt.timedelta(days=1)


def simulate(
    store: Engine,
    settings: Settings,
    dictionary: DataDictionary,
    renderer: Renderer,
    playbooks: list[Playbook],
    *,
    start: dt.date,
    days: int,
    seed: int,
    rates: dict[str, float] | None = None,
) -> Simulation:
    """Run ``days`` days from ``start`` and write the simulated outcomes (see module doc)."""
    if not is_demo_store(store):
        raise EngineError(
            "demo-outcomes writes simulated customer data; this store was not made by demo-data",
            code="E0312",
            hint="create a demo store first: python runner.py demo-data --db URL",
        )
    chances = rates or DEFAULT_RATES
    tz = settings.timezone
    executor = Executor(store, settings, dictionary, renderer)
    scheduled = by_priority([p for p in playbooks if isinstance(p.trigger, Schedule)])
    sim = Simulation(start=start, days=days, seed=seed)
    sim.not_simulated = [
        p.id for p in scheduled if p.goal is None or p.goal.kind not in SIMULATED_KINDS
    ]
    pending: list[_Outcome] = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        pending = _apply(store, pending, tz, before=dt.datetime.combine(day, dt.time()))
        for playbook in scheduled:
            at = slot_on(playbook, day, tz)
            if at is None:
                continue
            outcome = executor.execute(playbook, Clock.at(at, tz), StoreSink(store))
            sim.runs += 1
            goal = playbook.goal
            if goal is None or goal.kind not in SIMULATED_KINDS or outcome.run_id is None:
                continue
            local = at.replace(tzinfo=None)
            end = (local + goal.within).date()
            sim.last_window_end = max(sim.last_window_end or end, end)
            pending += _draw(store, playbook, goal, outcome.run_id, local, seed, chances, tz, sim)
    _apply(store, pending, tz, before=None)  # the world goes on to the end of every window
    _record(store, sim, chances)
    return sim


def _draw(
    store: Engine,
    playbook: Playbook,
    goal: Goal,
    run_id: int,
    start: dt.datetime,
    seed: int,
    chances: dict[str, float],
    tz: ZoneInfo,
    sim: Simulation,
) -> list[_Outcome]:
    """Each recorded customer's outcome: met or not, and when, from their own seeded draw."""
    with store.connect() as conn:
        rows = conn.execute(
            select(action_ledger.c.customer_id, action_ledger.c.held_out, action_ledger.c.window)
            .where(action_ledger.c.run_id == run_id)
            .order_by(action_ledger.c.customer_id)
        ).all()
        task_rows = conn.execute(
            select(tasks.c.id, tasks.c.customer_id, tasks.c.due_at)
            .select_from(tasks.join(action_ledger, tasks.c.ledger_id == action_ledger.c.id))
            .where(action_ledger.c.run_id == run_id, tasks.c.status == "open")
            .order_by(tasks.c.id)
        ).all()
    out = _close_tasks(task_rows, start, seed, tz, sim)
    span = goal.within.total_seconds()
    for customer_id, held, window in rows:
        arm = "holdout" if held else "treated"
        sim.recorded[arm] += 1
        rng = random.Random(f"{seed}:{playbook.id}:{customer_id}:{window}")
        if rng.random() >= chances[arm]:
            continue
        # strictly inside the window: after the action, before its end
        at = start + dt.timedelta(seconds=span * (0.05 + 0.9 * rng.random()))
        amount = float(rng.choice((5_000, 20_000, 50_000, 100_000, 300_000)))
        product = _product_type(goal.where) if goal.kind == "product_bought" else "wealth"
        out.append(
            _Outcome(at.replace(microsecond=0), str(customer_id), goal.kind, product, amount)
        )
        sim.outcomes[goal.kind] += 1
    return out


def _close_tasks(
    rows: Any, start: dt.datetime, seed: int, tz: ZoneInfo, sim: Simulation
) -> list[_Outcome]:
    out = []
    for task_id, customer_id, due_at in rows:
        rng = random.Random(f"{seed}:task:{task_id}")
        if rng.random() >= TASK_DONE_CHANCE:
            continue
        due = utc_to_local(due_at, tz)
        at = start + (due - start) * (0.05 + 0.9 * rng.random())
        pick, outcome = rng.random(), TASK_OUTCOMES[-1][0]
        for name, weight in TASK_OUTCOMES:
            if pick < weight:
                outcome = name
                break
            pick -= weight
        out.append(_Outcome(at.replace(microsecond=0), str(customer_id), outcome, task_id=task_id))
        sim.tasks_done[outcome] += 1
    return out


def _product_type(where: Condition) -> str:
    """A product type the goal's filter asks for (eq / in on product_type), else wealth."""
    tests = where.items if isinstance(where, All) else (where,)
    for t in tests:
        if isinstance(t, Test) and t.field == "product_type":
            if t.op == "eq":
                return str(t.value)
            if t.op == "in" and t.value:
                return str(t.value[0])
    return "wealth"


def _apply(
    store: Engine, pending: list[_Outcome], tz: ZoneInfo, *, before: dt.datetime | None
) -> list[_Outcome]:
    """Write the outcomes due before ``before`` (all when None); return the rest."""
    due = sorted(o for o in pending if before is None or o.at < before)
    if not due:
        return pending
    with store.begin() as conn:
        for o in due:
            if o.task_id is not None:
                continue
            if o.kind == "activity_resumed":
                conn.execute(
                    insert(transactions).values(
                        customer_id=o.customer_id,
                        occurred_at=o.at,
                        kind="deposit",
                        amount=o.amount,
                        channel="mobile",
                    )
                )
            else:
                conn.execute(
                    insert(holdings).values(
                        customer_id=o.customer_id,
                        product_type=o.product_type,
                        product_name=PRODUCT_NAME,
                        amount=o.amount,
                        opened_on=o.at.date(),
                    )
                )
            last = customers.c.last_active_at
            conn.execute(
                update(customers)
                .where(customers.c.id == o.customer_id)
                .values(
                    last_active_at=case((last.is_(None), o.at), (last < o.at, o.at), else_=last)
                )
            )
    for o in due:
        if o.task_id is not None:
            complete(store, o.task_id, o.kind, "simulated 模拟", o.at.replace(tzinfo=tz))
    return [o for o in pending if before is not None and o.at >= before]


def _record(store: Engine, sim: Simulation, chances: dict[str, float]) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(simulations).values(
                created_at=utc_now(),
                start_day=sim.start,
                days=sim.days,
                seed=sim.seed,
                rates=chances,
                summary=sim.summary(),
            )
        )
