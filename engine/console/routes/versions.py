"""Versions and approval in the console: the same engine functions as ``runner.py playbook``.

An editor submits the playbook as saved (its audience estimate and diff are stored with it); an
approver or leader reads the diff against the live version and the estimate taken at
submission, then approves or rejects with a comment, publishes, pauses, resumes or rolls back.
Who may approve what is ``config/governance.yaml``'s rule, checked by the engine, not here:
the console's permissions only decide who reaches the buttons. Every step is one audit entry
(written by the engine in the step's own transaction).
"""

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
from engine.console.workbench import day_or_tomorrow
from engine.core.configfile import ConfigError
from engine.core.errors import EngineError
from engine.governance import records, service
from engine.governance.config import load_governance
from engine.governance.records import Actor
from engine.store.models import playbook_live, playbook_versions

STATE_WORDS = {
    "draft": "草稿 draft",
    "submitted": "待审批 submitted",
    "approved": "已审批 approved",
    "live": "运行中 live",
    "paused": "已暂停 paused",
    "retired": "已替换 retired",
    "rejected": "已驳回 rejected",
}
ACTIONS = ("approve", "reject", "publish", "rollback")


def _deployment(console: Console) -> service.Deployment | None:
    """The governance rules in force, or None when the deployment has no governance file."""
    settings = console.settings
    if not settings.governance_path.exists():
        return None
    gov = load_governance(settings.governance_path, required=True)
    records.ensure_tables(console.store)
    return service.Deployment(console.store, settings, console.workbench.dictionary, gov)


def _actor(viewer: Viewer) -> Actor:
    return Actor(viewer.account.name, viewer.account.role)


def versions_page(
    request: Request, console: Console, viewer: Viewer | None, body: Body
) -> Response:
    """Every governed playbook: what is live, whether it is paused, and what waits."""
    assert viewer is not None
    try:
        dep = _deployment(console)
    except ConfigError as exc:
        return message_page(request, viewer, 500, "审批配置有误 Governance file", exc.render())
    rows: list[dict[str, Any]] = []
    if dep is not None:
        with console.store.connect() as conn:
            found = conn.execute(
                select(playbook_versions).order_by(
                    playbook_versions.c.playbook_id, playbook_versions.c.number.desc()
                )
            ).mappings()
            rows = [_local(dict(r), console, "submitted_at", "created_at") for r in found]
            live = {r.playbook_id: dict(r._mapping) for r in conn.execute(select(playbook_live))}
    else:
        live = {}
    waiting = [r for r in rows if r["state"] in ("submitted", "approved")]
    return render(
        request,
        "versions.html",
        viewer,
        configured=dep is not None,
        enabled=dep is not None and dep.gov.enabled,
        rows=rows,
        waiting=waiting,
        live=live,
        states=STATE_WORDS,
    )


def version_page(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    """One version: its diff against the live version and its audience estimate as submitted,
    who did what, and the buttons the viewer's role may press."""
    assert viewer is not None
    playbook_id = request.path_params["playbook"]
    number = int(request.path_params["number"])
    if _deployment(console) is None:
        return RedirectResponse("/versions", status_code=303)
    with console.store.connect() as conn:
        row = records.version(conn, playbook_id, number)
        if row is None:
            missing = f"{playbook_id} v{number}"
            return message_page(request, viewer, 404, "找不到版本 Not found", missing)
        steps = [_local(e, console, "at") for e in records.events(conn, row["id"])]
        pointer = records.live(conn, playbook_id)
    approvals = records.people(steps, "approved")
    return render(
        request,
        "version.html",
        viewer,
        row=row,
        steps=steps,
        pointer=pointer,
        approvals=sorted(approvals),
        states=STATE_WORDS,
        can_review=viewer.can(P.VERSIONS_REVIEW),
        mine=records.Actor(row["author"]).person == _actor(viewer).person,
        notice=str(body.get("done") or "")[:200],
    )


def submit(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    """The editor's "submit for approval": the playbook as saved in the folders."""
    assert viewer is not None
    playbook_id = request.path_params["playbook"]
    dep = _deployment(console)
    if dep is None:
        missing = "config/governance.yaml is missing."
        return message_page(request, viewer, 409, "未启用审批 No governance", missing)
    day = day_or_tomorrow(str(body.get("day") or "") or None, console.settings)
    try:
        done = service.submit(dep, _actor(viewer), playbook_id, day=day)
    except EngineError as exc:
        return message_page(request, viewer, 409, "未能提交 Not submitted", exc.render())
    return _after(done)


def act(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    """approve / reject (comment required) / publish / rollback one version."""
    assert viewer is not None
    playbook_id = request.path_params["playbook"]
    number = int(request.path_params["number"])
    action = request.path_params["action"]
    dep = _deployment(console)
    if dep is None or action not in ACTIONS:
        return message_page(request, viewer, 404, "找不到 Not found", action)
    comment = str(body.get("comment") or "").strip()[:500] or None
    actor = _actor(viewer)
    try:
        if action == "approve":
            done = service.approve(dep, actor, playbook_id, number, comment)
        elif action == "reject":
            done = service.reject(dep, actor, playbook_id, number, comment or "")
        elif action == "publish":
            done = service.publish(dep, actor, playbook_id, number)
        else:
            done = service.rollback(dep, actor, playbook_id, number)
    except EngineError as exc:
        return message_page(request, viewer, 409, "未能执行 Refused", exc.render())
    return _after(done)


def toggle(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    """Pause or resume a playbook's live version (the policy may ask for a second person)."""
    assert viewer is not None
    playbook_id = request.path_params["playbook"]
    dep = _deployment(console)
    if dep is None:
        return message_page(request, viewer, 409, "未启用审批 No governance", playbook_id)
    step = service.pause if request.url.path.endswith("/pause") else service.resume
    try:
        done = step(dep, _actor(viewer), playbook_id)
    except EngineError as exc:
        return message_page(request, viewer, 409, "未能执行 Refused", exc.render())
    return _after(done)


def _local(row: dict[str, Any], console: Console, *keys: str) -> dict[str, Any]:
    """``when``: the first of ``keys`` set, as the bank's local time (the store keeps UTC)."""
    moment = next((row[k] for k in keys if row.get(k) is not None), None)
    tz = console.settings.timezone
    row["when"] = moment.replace(tzinfo=dt.UTC).astimezone(tz) if moment is not None else None
    return row


def _after(done: service.Done) -> Response:
    target = f"/versions/{done.playbook_id}/{done.number}"
    return RedirectResponse(f"{target}?{urlencode({'done': done.message})}", status_code=303)


ROUTES = [
    RouteSpec("/versions", versions_page, ("GET",), (P.VERSIONS_VIEW,)),
    RouteSpec("/versions/{playbook}/{number:int}", version_page, ("GET",), (P.VERSIONS_VIEW,)),
    RouteSpec("/versions/{playbook}/submit", submit, ("POST",), (P.VERSIONS_SUBMIT,)),
    RouteSpec("/versions/{playbook}/{number:int}/{action}", act, ("POST",), (P.VERSIONS_REVIEW,)),
    RouteSpec("/versions/{playbook}/pause", toggle, ("POST",), (P.VERSIONS_REVIEW,)),
    RouteSpec("/versions/{playbook}/resume", toggle, ("POST",), (P.VERSIONS_REVIEW,)),
]
