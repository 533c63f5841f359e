"""The operations page: what ``runner.py status`` shows (daemons, slots, broken playbook
files, outbox, events), the outbox by status and channel, the latest dead letters with retry
and cancel (the same engine functions as ``runner.py outbox retry|cancel``), and which years
the holiday calendar knows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import render
from engine.console.roles import Permission as P
from engine.core.clock import utc_naive
from engine.delivery import deadletters
from engine.reports.calendar import SOURCE_WORDS
from engine.reports.status import gather

DEAD_LETTERS_SHOWN = 50
STATUS_LABELS = {
    "pending": "待发送 pending",
    "sent": "已发送 sent",
    "failed": "发送失败 failed (dead letter)",
    "dead": "发送失败 dead letter",
    "cancelled": "已取消 cancelled",
}
STATUS_ORDER = {s: i for i, s in enumerate(STATUS_LABELS)}


def _local(row: dict[str, Any] | None, tz: Any) -> dict[str, Any] | None:
    """The outbox keeps naive UTC; people read the bank's time."""
    if row is not None and row.get("created_at") is not None:
        row["created_at"] = row["created_at"].replace(tzinfo=dt.UTC).astimezone(tz)
    return row


def operations(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    settings = console.settings
    bench = console.workbench
    catalog = bench.validator.validate_paths([settings.playbooks_dir])
    now = dt.datetime.now(settings.timezone).replace(microsecond=0)
    doc = gather(console.store, catalog, now, settings.timezone, settings.calendar_dir)
    for e in doc["reload_errors"]:  # as `validate` prints it: relative to the project
        e["file"] = bench.shown_path(Path(e["file"]))
    for p in doc["playbooks"]:
        p["file"] = bench.shown_path(Path(p["file"])) if p["file"] else None
    backlog = deadletters.backlog(console.store)
    channels = sorted({c for by in backlog.values() for c in by})
    events = doc["events"]
    return render(
        request,
        "operations.html",
        viewer,
        doc=doc,
        backlog=backlog,
        channels=channels,
        statuses=sorted(backlog, key=lambda s: (STATUS_ORDER.get(s, len(STATUS_ORDER)), s)),
        status_labels=STATUS_LABELS,
        dead=[
            _local(r, settings.timezone)
            for r in deadletters.dead_letters(console.store, DEAD_LETTERS_SHOWN)
        ],
        events_behind=max(events["stored_seq"] - events["processed_seq"], 0),
        calendar=doc["calendar"],
        source_words=SOURCE_WORDS,
        can_manage=viewer is not None and viewer.can(P.OUTBOX_MANAGE),
    )


def _act(request: Request, console: Console, viewer: Viewer | None, action: str) -> Response:
    assert viewer is not None
    try:
        message_id = int(request.path_params["message_id"])
    except ValueError:
        message_id = -1
    now = dt.datetime.now(console.settings.timezone)
    if action == "retry":
        changed = deadletters.retry(console.store, [message_id], utc_naive(now))
    else:
        changed = deadletters.cancel(console.store, [message_id])
    if changed:
        console.audit(viewer.account.name, f"outbox.{action}", f"outbox:{message_id}")
    if "hx-request" not in request.headers:
        return RedirectResponse("/operations#dead-letters", status_code=303)
    row = _local(deadletters.message(console.store, message_id), console.settings.timezone)
    return render(
        request,
        "fragments/dead_letter.html",
        viewer,
        status_code=200 if row is not None else 404,
        row=row,
        message_id=message_id,
        done=action if changed else None,
        can_manage=True,
    )


def retry(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    return _act(request, console, viewer, "retry")


def cancel(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    return _act(request, console, viewer, "cancel")


ROUTES = [
    RouteSpec("/operations", operations, ("GET",), (P.OPERATIONS_VIEW,)),
    RouteSpec("/operations/outbox/{message_id:int}/retry", retry, ("POST",), (P.OUTBOX_MANAGE,)),
    RouteSpec("/operations/outbox/{message_id:int}/cancel", cancel, ("POST",), (P.OUTBOX_MANAGE,)),
]
