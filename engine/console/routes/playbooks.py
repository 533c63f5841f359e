"""The playbook editor: the list, the editor page, and what it asks the server while the
editor types (validation) or clicks (estimate, explain, diff, save). Every answer comes from
the engine's own checks; the browser never decides what is valid."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import render, request_lang
from engine.console.roles import Permission as P
from engine.console.workbench import Checked, day_or_tomorrow
from engine.core.errors import EngineError
from engine.playbook.model import Playbook, cron_of
from engine.playbook.schema import render_schema
from engine.store.models import runs
from engine.triggers.event import EventTrigger
from engine.triggers.schedule import in_words, next_slot

NEW_PLAYBOOK = """\
# yaml-language-server: $schema=../schemas/playbook.schema.json
id: my-new-playbook
title: 新剧本
owner: 零售营销部
description: >-
  这个剧本为谁、在什么时候、做什么,为什么。
category: marketing
trigger:
  schedule: "0 9 * * 1-5"
audience:
  tier: vip
actions:
  - sms:
      template: birthday_greeting.sms.j2
limits:
  once_per_customer: 30d
"""


def playbook_list(
    request: Request, console: Console, viewer: Viewer | None, body: Body
) -> Response:
    bench = console.workbench
    catalog = bench.validator.validate_paths([console.settings.playbooks_dir])
    by_file = {Path(p.source).name: p for p in catalog.playbooks}
    broken: dict[str, int] = {}
    for d in catalog.errors:
        broken[Path(d.file).name] = broken.get(Path(d.file).name, 0) + 1
    now = dt.datetime.now(console.settings.timezone).replace(tzinfo=None, second=0, microsecond=0)
    last = _last_runs(console)
    rows = []
    for path in bench.playbook_files():
        p = by_file.get(path.name)
        cron = cron_of(p) if p else None
        rows.append(
            {
                "file": path.name,
                "playbook": p,
                "errors": broken.get(path.name, 0),
                "schedule": in_words(cron) if cron else (_event_words(p) if p else "—"),
                "next_run": next_slot(cron, now) if cron and p and p.enabled else None,
                "last_run": last.get(p.id) if p else None,
            }
        )
    return render(
        request,
        "playbooks.html",
        viewer,
        rows=rows,
        can_edit=viewer and viewer.can(P.PLAYBOOKS_EDIT),
        templates=bench.template_files(),
    )


def _event_words(p: Playbook) -> str:
    if isinstance(p.trigger, EventTrigger):
        return "事件 event: " + ", ".join(p.trigger.first.types)
    return "—"


def _last_runs(console: Console) -> dict[str, dict[str, Any]]:
    """Each playbook's latest finished run: when, matched, acted, suppressed in all."""
    r = runs.c
    latest = (
        select(r.playbook_id, func.max(r.id).label("id"))
        .where(r.status != "running")
        .group_by(r.playbook_id)
        .subquery()
    )
    query = select(runs).join(latest, r.id == latest.c.id)
    tz = console.settings.timezone
    found: dict[str, dict[str, Any]] = {}
    with console.store.connect() as conn:
        for row in conn.execute(query).mappings():
            found[row["playbook_id"]] = {
                "at": row["as_of"].replace(tzinfo=dt.UTC).astimezone(tz),
                "status": row["status"],
                "matched": row["matched"],
                "acted": row["acted"],
                "suppressed": sum((row["suppressed"] or {}).values()),
            }
    return found


def editor(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    name = request.path_params["name"]
    bench = console.workbench
    if name == "new":
        text, file_name, is_new = NEW_PLAYBOOK, "", True
    else:
        bench.playbook_path(name)
        saved = bench.saved_text(name)
        if saved is None:
            return render(
                request,
                "message.html",
                viewer,
                404,
                title="找不到剧本 Not found",
                text=f"没有剧本文件 {name}。There is no playbook file {name}.",
            )
        text, file_name, is_new = saved, name, False
    return render(
        request,
        "editor.html",
        viewer,
        text=text,
        file_name=file_name,
        is_new=is_new,
        can_edit=viewer.can(P.PLAYBOOKS_EDIT),
        can_preview=viewer.can(P.PLAYBOOKS_PREVIEW),
        day=day_or_tomorrow(None, console.settings).isoformat(),
        templates=_templates_in(text, bench.template_files()),
        # with a governance file, a saved playbook goes to the approvers from here
        submit_id=(
            bench.saved_id(file_name)
            if file_name
            and viewer.can(P.VERSIONS_SUBMIT)
            and console.settings.governance_path.exists()
            else None
        ),
    )


def _templates_in(text: str, known: list[str]) -> list[str]:
    """The template files a playbook's text names, for links beside the editor."""
    named = re.findall(r"template:\s*[\"']?([\w./-]+\.j2)", text)
    return [name for name in dict.fromkeys(named) if name in known]


def _file_of(body: Body) -> str:
    name = str(body.get("file") or "").strip()
    return name if name.endswith((".yaml", ".yml")) or not name else name + ".yaml"


def _checked(console: Console, body: Body) -> tuple[str, Checked]:
    name = _file_of(body) or "new-playbook.yaml"
    text = str(body.get("text") or "")
    return name, console.workbench.check(text, name)


def validate(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    try:
        # the editor names its file in the URL; its body is the text alone
        _, checked = _checked(console, {"file": request.query_params.get("file"), **body})
    except EngineError as exc:  # a file name the console refuses
        return JSONResponse({"diagnostics": [], "summary": exc.message, "valid": False})
    return JSONResponse(checked.to_json(request_lang(request)))


def estimate(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    _, checked = _checked(console, body)
    day = day_or_tomorrow(body.get("day"), console.settings)
    if checked.playbook is None:
        return _invalid(request, viewer, checked)
    found = console.workbench.estimate(checked.playbook, day)
    return render(request, "fragments/estimate.html", viewer, est=found, day=day)


def explain(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    _, checked = _checked(console, body)
    day = day_or_tomorrow(body.get("day"), console.settings)
    customer_id = str(body.get("customer_id") or "").strip()[:40]
    if checked.playbook is None:
        return _invalid(request, viewer, checked)
    if not customer_id:
        return render(
            request, "fragments/note.html", viewer, text="请输入客户编号。Enter a customer id."
        )
    try:
        found = console.workbench.explain(checked.playbook, customer_id, day)
    except EngineError as exc:
        return render(request, "fragments/note.html", viewer, text=exc.render())
    return render(request, "fragments/explain.html", viewer, exp=found, day=day)


def diff(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    name, checked = _checked(console, body)
    text = console.workbench.diff(name, checked.text)
    return render(request, "fragments/diff.html", viewer, diff=text)


def save(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    name = _file_of(body)
    if not name:
        return render(
            request,
            "fragments/note.html",
            viewer,
            text="请填写文件名,例如 vip-winback。Give the file a name, e.g. vip-winback.",
        )
    checked = console.workbench.save(name, str(body.get("text") or ""))
    if checked.playbook is None:
        return _invalid(request, viewer, checked, saving=True)
    assert viewer is not None
    console.audit(
        viewer.account.name,
        "playbook.save",
        f"playbook:{checked.playbook.id}",
        file=name,
        sha256=checked.playbook.content_hash,
    )
    return render(
        request, "fragments/saved.html", viewer, file_name=name, playbook=checked.playbook
    )


def _invalid(
    request: Request, viewer: Viewer | None, checked: Checked, saving: bool = False
) -> Response:
    return render(
        request,
        "fragments/invalid.html",
        viewer,
        checked=checked.to_json(request_lang(request)),
        saving=saving,
    )


def schema_json(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    """The playbook schema, with this deployment's template files offered as the values of
    every ``template`` key, so the editor completes them."""
    schema = json.loads(render_schema(console.workbench.dictionary))
    _offer_templates(schema, console.workbench.template_files())
    return JSONResponse(schema)


def _offer_templates(node: Any, names: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "template" and isinstance(value, dict) and value.get("type") == "string":
                value["examples"] = names
            else:
                _offer_templates(value, names)
    elif isinstance(node, list):
        for item in node:
            _offer_templates(item, names)


VIEW = (P.PLAYBOOKS_VIEW,)
ROUTES = [
    RouteSpec("/playbooks", playbook_list, ("GET",), VIEW),
    RouteSpec("/playbooks/{name}", editor, ("GET",), VIEW),
    RouteSpec("/schema.json", schema_json, ("GET",), VIEW),
    RouteSpec("/api/validate", validate, ("POST",), VIEW),
    RouteSpec("/editor/diff", diff, ("POST",), VIEW),
    RouteSpec("/editor/estimate", estimate, ("POST",), (P.PLAYBOOKS_PREVIEW,)),
    RouteSpec("/editor/explain", explain, ("POST",), (P.PLAYBOOKS_PREVIEW,)),
    RouteSpec("/editor/save", save, ("POST",), (P.PLAYBOOKS_EDIT,)),
]
