"""The managers' task list: a manager works their own tasks, a branch leader sees the whole
branch's; both close a task with its outcome, and a manager about to call asks for one
customer's real name and phone, which the audit log records. Everything is masked until
then, as the task list on the command line is."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import message_page, render
from engine.console.roles import Permission as P
from engine.core.clock import as_utc_naive
from engine.core.errors import EngineError
from engine.core.masking import mask_name, mask_phone
from engine.delivery.tasklist import (
    OUTCOMES,
    WECOM_OUTCOMES,
    Due,
    TaskQuery,
    complete,
    list_tasks,
    mask_personal,
    task_branch,
)
from engine.store import audit
from engine.store.models import customers, managers, tasks

TABS: tuple[tuple[str, str], ...] = (
    ("today", "今天到期 Due today"),
    ("overdue", "已逾期 Overdue"),
    ("week", "本周 This week"),
    ("all", "全部 All open"),
)
DUES: dict[str, Due | None] = {"today": "today", "overdue": "overdue", "week": "week", "all": None}
PRIORITIES = {"urgent": "紧急 urgent", "high": "高 high", "normal": "普通 normal", "low": "低 low"}
KINDS = {
    "call": "电话",
    "visit": "拜访",
    "follow_up": "跟进",
    "escalation": "督办",
    "wecom": "企业微信",
}
NOTE_MAX = 500
WORK = (P.TASKS_OWN, P.TASKS_BRANCH)


def task_list(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    queue = str(body.get("queue") or "").strip()[:40] or None
    due = str(body.get("due") or "today")
    due = due if due in DUES else "today"
    branch = viewer.account.branch_id
    rows: list[dict[str, Any]] = []
    if queue is not None:
        if branch:
            rows = _rows(console, TaskQuery(queue=queue, branch=branch))
    elif viewer.can(P.TASKS_BRANCH):
        if branch:
            rows = _rows(console, TaskQuery(branch=branch, due=DUES[due]))
    elif viewer.account.manager_id:
        rows = _rows(console, TaskQuery(manager=viewer.account.manager_id, due=DUES[due]))
    return render(
        request,
        "tasks.html",
        viewer,
        rows=rows,
        tabs=TABS,
        queues=_queues(console, branch),
        **_card_context(viewer, due, queue),
    )


def close_task(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    task_id = int(request.path_params["task_id"])
    task = _visible(console, viewer, task_id)
    if task is None:
        return _refused(request, viewer)
    outcome = str(body.get("outcome") or "").strip()
    note = str(body.get("note") or "").strip()
    due, queue = str(body.get("due") or "today"), str(body.get("queue") or "") or None
    error = None
    wecom = task["kind"] == "wecom"
    if outcome not in OUTCOMES or (outcome in WECOM_OUTCOMES) != wecom:
        error = "请选择联系结果。Choose the outcome of the task."
    elif len(note) > NOTE_MAX:
        error = (
            f"备注最多 {NOTE_MAX} 字,现有 {len(note)} 字。The note is over {NOTE_MAX} characters."
        )
    else:
        try:
            complete(console.store, task_id, outcome, note or None, _now(console))
            assert viewer is not None
            console.audit(
                viewer.account.name,
                "task.close",
                f"task:{task_id}",
                customer_id=task["customer_id"],
                outcome=outcome,
            )
        except EngineError as exc:  # closed meanwhile (another tab, a colleague)
            error = f"无法完成:{exc.message}。Could not close the task: reload the page."
    htmx = "hx-request" in request.headers
    if error is not None:
        rows = _enrich(console, [_listed(console, task)])
        context = _card_context(viewer, due, queue)
        card = {"t": rows[0], "error": error, "chosen": outcome, "note": note, **context}
        if htmx:  # htmx swaps only 2xx answers: the card comes back with the message in it
            return render(request, "fragments/task_card.html", viewer, **card)
        return render(request, "task_page.html", viewer, 422, **card)
    if htmx:
        return render(
            request,
            "fragments/task_done.html",
            viewer,
            task_id=task_id,
            title=_enrich(console, [_listed(console, task)])[0]["title"],
            outcome=OUTCOMES[outcome],
        )
    back = {"queue": queue} if queue else {"due": due if due in DUES else "today"}
    return RedirectResponse("/tasks?" + urlencode(back), status_code=303)


def reveal(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    task_id = int(request.path_params["task_id"])
    task = _visible(console, viewer, task_id)
    if task is None:
        return _refused(request, viewer)
    with console.store.begin() as conn:
        person = conn.execute(
            select(customers.c.name, customers.c.phone).where(customers.c.id == task["customer_id"])
        ).first()
        audit.record(
            conn,
            actor=viewer.account.name,
            action="personal_data.unmask",
            subject=f"task:{task_id}",
            customer_id=task["customer_id"],
            detail={"fields": ["name", "phone"], "why": f"task {task_id}"},
        )
    row = _enrich(console, [_listed(console, task)])[0]
    if person is not None:
        row.update(customer_name=person.name, customer_phone=person.phone or "", revealed=True)
        # a WeCom message is copied as the customer will read it
        row.update(title=task["title"], body=task["body"])
    context = _card_context(viewer, str(body.get("due") or "today"), None)
    if "hx-request" in request.headers:
        if task["kind"] == "wecom":  # the whole card: its text is unmasked too
            card = {"t": row, "error": None, "chosen": "", "note": "", **context}
            return render(request, "fragments/task_card.html", viewer, **card)
        return render(request, "fragments/task_person.html", viewer, t=row, can_unmask=True)
    return render(
        request, "task_page.html", viewer, t=row, error=None, chosen="", note="", **context
    )


def _now(console: Console) -> dt.datetime:
    return dt.datetime.now(console.settings.timezone).replace(second=0, microsecond=0)


def _rows(console: Console, query: TaskQuery) -> list[dict[str, Any]]:
    return _enrich(console, list_tasks(console.store, query, _now(console)))


def _listed(console: Console, task: dict[str, Any]) -> dict[str, Any]:
    """One task as ``list_tasks`` gives it: with its local due time and overdue flag."""
    row = dict(task)
    now = _now(console)
    row["due_local"] = (
        row["due_at"].replace(tzinfo=dt.UTC).astimezone(now.tzinfo).isoformat(timespec="minutes")
    )
    row["overdue"] = row["status"] == "open" and row["due_at"] < as_utc_naive(now)
    return row


def _enrich(console: Console, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Masked title and body, the masked customer, the assignee's name, the playbook's title."""
    before = [r.get("body") for r in rows]
    mask_personal(console.store, rows)
    for r, body in zip(rows, before, strict=True):
        r["masked"] = r.get("body") != body
    people = {r["customer_id"] for r in rows}
    staff = {r["assignee_id"] for r in rows if r["assignee_id"]}
    with console.store.connect() as conn:
        found = {
            r.id: r
            for r in conn.execute(
                select(customers.c.id, customers.c.name, customers.c.phone).where(
                    customers.c.id.in_(sorted(people))
                )
            )
        }
        names = dict(
            conn.execute(
                select(managers.c.id, managers.c.name).where(managers.c.id.in_(sorted(staff)))
            ).all()
        )
    titles = _playbook_titles(console)
    for r in rows:
        person = found.get(r["customer_id"])
        r["customer_name"] = mask_name(person.name) if person else "—"
        r["customer_phone"] = mask_phone(person.phone) if person and person.phone else ""
        r["revealed"] = False
        r["assignee_name"] = names.get(r["assignee_id"], "")
        r["playbook_title"] = titles.get(r["playbook_id"], "")
        r["kind_label"] = KINDS.get(r["kind"], r["kind"])
        r["priority_label"] = PRIORITIES.get(r["priority"], r["priority"])
    return rows


def _playbook_titles(console: Console) -> dict[str, str]:
    bench = console.workbench
    catalog = bench.validator.validate_paths([console.settings.playbooks_dir])
    return {p.id: p.title for p in catalog.playbooks}


def _queues(console: Console, branch: str | None) -> list[str]:
    """The team queues with open tasks in ``branch``."""
    if not branch:
        return []
    t = tasks.c
    query = (
        select(t.queue)
        .select_from(tasks.join(customers, customers.c.id == t.customer_id))
        .where(t.status == "open", t.queue.is_not(None), customers.c.branch_id == branch)
        .distinct()
        .order_by(t.queue)
    )
    with console.store.connect() as conn:
        return [str(q) for q in conn.execute(query).scalars()]


def _visible(console: Console, viewer: Viewer, task_id: int) -> dict[str, Any] | None:
    """The task when the viewer may see it: a leader, any task of their branch; a manager,
    their own and their branch's team queues; else None."""
    source = tasks.outerjoin(managers, managers.c.id == tasks.c.assignee_id).outerjoin(
        customers, customers.c.id == tasks.c.customer_id
    )
    with console.store.connect() as conn:
        row = (
            conn.execute(
                select(tasks, task_branch().label("branch"))
                .select_from(source)
                .where(tasks.c.id == task_id)
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    task = dict(row)
    branch = viewer.account.branch_id
    in_branch = branch is not None and task["branch"] == branch
    if viewer.can(P.TASKS_BRANCH) and in_branch:
        return task
    mine = (
        viewer.account.manager_id is not None and task["assignee_id"] == viewer.account.manager_id
    )
    if viewer.can(P.TASKS_OWN) and (mine or (task["queue"] is not None and in_branch)):
        return task
    return None


def _card_context(viewer: Viewer, due: str, queue: str | None) -> dict[str, Any]:
    return {
        "outcomes": [(c, label) for c, label in OUTCOMES.items() if c not in WECOM_OUTCOMES],
        "wecom_outcomes": [(c, OUTCOMES[c]) for c in WECOM_OUTCOMES],
        "can_unmask": viewer.can(P.PERSONAL_UNMASK),
        "show_assignee": viewer.can(P.TASKS_BRANCH) or queue is not None,
        "due": due if due in DUES else "today",
        "queue": queue,
        "note_max": NOTE_MAX,
    }


def _refused(request: Request, viewer: Viewer) -> Response:
    return message_page(
        request,
        viewer,
        403,
        "无权操作 Not allowed",
        "这个任务不在您的任务列表中。This task is not on your task list.",
    )


ROUTES = [
    RouteSpec("/tasks", task_list, ("GET",), WORK),
    RouteSpec("/tasks/{task_id:int}/close", close_task, ("POST",), WORK),
    RouteSpec("/tasks/{task_id:int}/reveal", reveal, ("POST",), (P.PERSONAL_UNMASK,)),
]
