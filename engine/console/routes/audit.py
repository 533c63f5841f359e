"""The audit log page (auditors, admins): the latest entries, newest first, filtered by actor,
action or customer, and whether the chain is intact; and one customer's contact history
(auditors)."""

from __future__ import annotations

import datetime as dt
import json

from starlette.requests import Request
from starlette.responses import Response

from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import render
from engine.console.roles import Permission as P
from engine.reports.history import history
from engine.store import audit

ROWS = 500


def audit_page(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    filters = {k: str(body.get(k) or "").strip()[:64] for k in ("actor", "action", "customer")}
    rows = audit.entries(
        console.store,
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        customer_id=filters["customer"] or None,
        limit=ROWS,
    )
    tz = console.settings.timezone
    for r in rows:
        r["local"] = r["at"].replace(tzinfo=dt.UTC).astimezone(tz)
        r["shown"] = ", ".join(f"{k}: {v}" for k, v in json.loads(r["detail"] or "{}").items())
    checked = audit.verify(console.store)
    return render(
        request, "audit.html", viewer, rows=rows, limit=ROWS, filters=filters, checked=checked
    )


def history_page(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    """One customer's contact history, masked: what `history CUSTOMER_ID` prints."""
    customer_id = str(body.get("customer") or "").strip()[:40]
    found = history(console.store, customer_id, console.settings.timezone) if customer_id else None
    return render(request, "history.html", viewer, customer_id=customer_id, found=found)


ROUTES = [
    RouteSpec("/audit", audit_page, ("GET",), (P.AUDIT_VIEW,)),
    RouteSpec("/history", history_page, ("GET",), (P.HISTORY_VIEW,)),
]
