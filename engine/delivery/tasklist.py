"""The managers' task list: what is due, marking a task done with its outcome, and climbing
the escalation ladder when a task is overdue.

Escalation creates a task for the superior (the next role of ``policy.tasks.ladder`` in the
assignee's branch) and leaves the original with its owner. Each level is written at most once
per original task, whatever the number of daemons: its (ledger_id, action_index) is derived
from the original's and the table's unique key holds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.core.clock import as_utc_naive, local_to_utc, utc_to_local
from engine.core.errors import EngineError, UsageError
from engine.core.masking import mask_email, mask_name, mask_phone
from engine.core.workcalendar import WorkCalendar
from engine.policy import TaskPolicy
from engine.store.models import customers, managers, tasks

OUTCOMES = {
    "reached": "已联系上",
    "no_answer": "未接通",
    "declined": "客户拒绝",
    "scheduled": "已预约",
    "visited": "已拜访",
    "wrong_number": "号码有误",
    "not_needed": "无需跟进",
    "resolved": "已处理",
    # a WeCom message task: sent in WeCom, or not (then it leaves the customer's limits)
    "sent": "已发送",
    "not_sent": "未发送",
}
WECOM_OUTCOMES = ("sent", "not_sent")
ESCALATION_STEP = 1000  # escalation level n of action i is action_index n * 1000 + i
Due = Literal["today", "week", "overdue"]


@dataclass(frozen=True)
class TaskQuery:
    manager: str | None = None
    queue: str | None = None
    branch: str | None = None  # the assignee's branch; a team queue's task: the customer's
    due: Due | None = None
    status: Literal["open", "done", "all"] = "open"
    limit: int = 1000


def normalise_outcome(text: str) -> str:
    """``no-answer`` and ``no_answer`` are the same outcome; anything unknown is refused."""
    outcome = text.strip().lower().replace("-", "_")
    if outcome not in OUTCOMES:
        raise UsageError(
            f"unknown outcome {text!r}",
            code="E0502",
            hint="one of: " + ", ".join(o.replace("_", "-") for o in OUTCOMES),
        )
    return outcome


def list_tasks(store: Engine, query: TaskQuery, now: dt.datetime) -> list[dict[str, Any]]:
    """Tasks matching ``query``, soonest due first, with local due times for people."""
    t = tasks.c
    where = []
    if query.status != "all":
        where.append(t.status == query.status)
    if query.manager:
        where.append(t.assignee_id == query.manager)
    if query.queue:
        where.append(t.queue == query.queue)
    if query.due:
        where.append(t.due_at < _due_limit(query.due, now))
    source: Any = tasks
    if query.branch:
        source = tasks.outerjoin(managers, managers.c.id == t.assignee_id).outerjoin(
            customers, customers.c.id == t.customer_id
        )
        where.append(task_branch() == query.branch)
    stmt = (
        select(tasks).select_from(source).where(*where).order_by(t.due_at, t.id).limit(query.limit)
    )
    tz = now.tzinfo
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for r in rows:
        r["due_local"] = _local(r["due_at"], tz)
        r["overdue"] = r["status"] == "open" and r["due_at"] < as_utc_naive(now)
    return rows


def task_branch() -> Any:
    """The branch a task belongs to, as a column of ``tasks`` outer-joined to ``managers`` (on
    the assignee) and ``customers``: its assignee's branch, or for a team queue's task (no
    assignee) its customer's."""
    return func.coalesce(managers.c.branch_id, customers.c.branch_id)


def mask_personal(store: Engine, rows: list[dict[str, Any]]) -> None:
    """Mask, in place, the customer's name, phone and e-mail wherever a rendered title or
    body shows them: the list is a report like any other; managers who call the customer
    ask for the real values (``--show-personal-data``)."""
    ids = {r["customer_id"] for r in rows}
    if not ids:
        return
    c = customers.c
    with store.connect() as conn:
        people = {
            r.id: r
            for r in conn.execute(
                select(c.id, c.name, c.phone, c.email).where(c.id.in_(sorted(ids)))
            )
        }
    for row in rows:
        person = people.get(row["customer_id"])
        if person is None:
            continue
        pairs = [
            (person.name, mask_name(person.name)),
            (person.phone, mask_phone(person.phone)),
            (person.email, mask_email(person.email)),
        ]
        for key in ("title", "body"):
            text = row.get(key)
            if not text:
                continue
            for real, masked in pairs:
                if real:
                    text = text.replace(str(real), masked)
            row[key] = text


def complete(store: Engine, task_id: int, outcome: str, note: str | None, now: dt.datetime) -> int:
    """Mark an open task done; its open escalations are resolved with it. Returns how many
    escalation tasks were closed too."""
    outcome = normalise_outcome(outcome)
    done_at = as_utc_naive(now)
    with store.begin() as conn:
        row = conn.execute(select(tasks.c.status).where(tasks.c.id == task_id)).first()
        if row is None:
            raise EngineError(f"no task with id {task_id}", code="E0501")
        if row.status != "open":
            raise EngineError(
                f"task {task_id} is {row.status}, not open", code="E0501", hint="list: tasks"
            )
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(status="done", outcome=outcome, note=note, done_at=done_at)
        )
        closed = 0
        parents = [task_id]
        while parents:
            children = [
                r.id
                for r in conn.execute(
                    select(tasks.c.id).where(
                        tasks.c.parent_id.in_(parents), tasks.c.status == "open"
                    )
                )
            ]
            if children:
                conn.execute(
                    update(tasks)
                    .where(tasks.c.id.in_(children))
                    .values(status="done", outcome="resolved", done_at=done_at)
                )
            closed += len(children)
            parents = children
    return closed


def escalate_overdue(
    store: Engine,
    policy: TaskPolicy,
    now: dt.datetime,
    *,
    tz: ZoneInfo,
    calendar: WorkCalendar,
) -> int:
    """Give every task overdue by ``policy.escalate_after`` to the next role up; returns the
    number of escalation tasks created. Safe to run from several daemons at once."""
    now_utc = as_utc_naive(now)
    cutoff = escalation_cutoff(policy, now_utc, tz, calendar)
    t = tasks.c
    with store.connect() as conn:
        overdue = [
            dict(r)
            for r in conn.execute(
                select(tasks, managers.c.branch_id)
                .join(managers, managers.c.id == t.assignee_id)
                .where(t.status == "open", t.due_at <= cutoff)
                .order_by(t.id)
            ).mappings()
        ]
        staff = _staff(conn, {r["branch_id"] for r in overdue})
    local_now = utc_to_local(now_utc, tz)
    due = policy.escalation_due_in.due(local_now, calendar, policy.working_hours.end)
    due_utc = local_to_utc(due, tz)
    insert: Any = postgresql.insert if store.dialect.name == "postgresql" else sqlite.insert
    created = 0
    with store.begin() as conn:
        for task in overdue:
            target = _superior(task, policy, staff)
            if target is None:
                continue
            role, person = target
            level = int(task["escalation_level"]) + 1
            row = _escalation(task, role, person, level, now_utc, due_utc)
            result = conn.execute(
                insert(tasks).values(**row).on_conflict_do_nothing().returning(tasks.c.id)
            )
            created += result.scalar() is not None
    return created


def escalation_cutoff(
    policy: TaskPolicy, now_utc: dt.datetime, tz: ZoneInfo, calendar: WorkCalendar
) -> dt.datetime:
    """Tasks due at or before this moment (naive UTC) are overdue by ``escalate_after``.

    Calendar time: ``now - escalate_after``. N workdays: a task due on day X escalates when
    the N-th workday after X has ended, so the cut-off is the start of the (N-1)-th workday
    before the last workday that has ended by now."""
    wait = policy.escalate_after
    if wait.span is not None:
        return now_utc - wait.span
    local = utc_to_local(now_utc, tz)
    ended = local.date()
    if not (calendar.is_workday(ended) and local.time() >= policy.working_hours.end):
        ended = calendar.last_workday_before(ended)
    for _ in range(wait.workdays - 1):
        ended = calendar.last_workday_before(ended)
    # strictly before that day: the last moment of the day before it
    return local_to_utc(dt.datetime.combine(ended, dt.time()), tz) - dt.timedelta(microseconds=1)


def count_open(store: Engine) -> int:
    with store.connect() as conn:
        query = select(func.count()).select_from(tasks).where(tasks.c.status == "open")
        return int(conn.execute(query).scalar_one())


def _staff(conn: Any, branches: set[str]) -> dict[tuple[str, str], str]:
    """(branch, role) → the role's holder in the branch (the lowest id: deterministic)."""
    if not branches:
        return {}
    m = managers.c
    rows = conn.execute(
        select(m.branch_id, m.role, func.min(m.id))
        .where(m.branch_id.in_(branches))
        .group_by(m.branch_id, m.role)
    )
    return {(str(b), str(r)): str(i) for b, r, i in rows}


def _superior(
    task: Mapping[str, Any], policy: TaskPolicy, staff: Mapping[tuple[str, str], str]
) -> tuple[str, str] | None:
    """The next role up that someone in the branch holds (a missing rung is skipped)."""
    role = policy.superior_role(str(task["assignee_role"]))
    while role is not None:
        person = staff.get((str(task["branch_id"]), role))
        if person is not None and person != task["assignee_id"]:
            return role, person
        role = policy.superior_role(role)
    return None


def _escalation(
    task: Mapping[str, Any],
    role: str,
    person: str,
    level: int,
    now_utc: dt.datetime,
    due_utc: dt.datetime,
) -> dict[str, Any]:
    base_index = int(task["action_index"]) % ESCALATION_STEP
    return {
        "ledger_id": task["ledger_id"],
        "action_index": level * ESCALATION_STEP + base_index,
        "playbook_id": task["playbook_id"],
        "customer_id": task["customer_id"],
        "assignee_id": person,
        "assignee_role": role,
        "queue": None,
        "kind": "escalation",
        "reason": f"{task['reason']}@{level}"[:80],
        "title": f"逾期升级 L{level}: {task['title']}"[:200],
        "body": f"任务 #{task['id']}({task['assignee_role']} {task['assignee_id']})已逾期,请督办。",
        "checklist": None,
        "priority": "urgent",
        "due_at": due_utc,
        "status": "open",
        "created_at": now_utc,
        "parent_id": task["id"],
        "escalation_level": level,
    }


def _due_limit(due: Due, now: dt.datetime) -> dt.datetime:
    """Tasks due before this moment (UTC) are 'due' for the filter; overdue ones included."""
    local = now.replace(tzinfo=None) if now.tzinfo is None else now
    today = local.date()
    if due == "overdue":
        return as_utc_naive(now)
    days = 1 if due == "today" else 7 - today.weekday()
    end = dt.datetime.combine(today + dt.timedelta(days=days), dt.time(), now.tzinfo)
    return as_utc_naive(end)


def _local(utc_naive: dt.datetime, tz: dt.tzinfo | None) -> str:
    return utc_naive.replace(tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="minutes")


__all__ = [
    "OUTCOMES",
    "TaskQuery",
    "complete",
    "count_open",
    "escalate_overdue",
    "list_tasks",
    "mask_personal",
    "normalise_outcome",
    "task_branch",
]
