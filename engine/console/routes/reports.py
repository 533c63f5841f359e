"""The morning preview (what today's runs would do, by playbook and by branch) and the effect
report (did it work), both read-only and both the engine's own numbers: the preview is the
pass of ``runner.py dry-run``, the effect report that of ``runner.py report``."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from engine.console import morning
from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import render
from engine.console.roles import Permission as P
from engine.core.clock import parse_day
from engine.core.errors import UsageError
from engine.reports.effect import effect_report
from engine.reports.effect_text import percent, points, simulated_banner, verdict_text
from engine.reports.labels import reason_label


def _day(text: object, default: dt.date, name: str) -> dt.date:
    value = str(text or "").strip()
    return parse_day(value, name) if value else default


def _today(console: Console) -> dt.date:
    return dt.datetime.now(console.settings.timezone).date()


def preview(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    day = _day(body.get("day"), _today(console), "day")
    names = morning.branch_names(console.workbench)
    fixed = not viewer.can(P.ALL_BRANCHES)
    if fixed:  # their own branch, whatever the query says
        branch: str | None = viewer.account.branch_id or ""
    else:
        asked = str(body.get("branch") or "").strip()
        branch = asked if asked in names else None
    result = morning.preview(console.workbench, day, branch)
    return render(
        request,
        "preview.html",
        viewer,
        p=result,
        branch_names=names,
        branch_fixed=fixed,
        day_value=day.isoformat(),
    )


def effect(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    settings = console.settings
    today = _today(console)
    until = _day(body.get("to"), today, "to")
    since = _day(body.get("from"), until - dt.timedelta(days=29), "from")
    if since > until:
        raise UsageError(
            f"from {since} is after to {until}",
            code="E0311",
            hint="the period runs from the first day to the last, both included",
        )
    # goals are observed at the end of the last day, or now when that is today
    end = dt.datetime.combine(until, dt.time(23, 59, 59), settings.timezone)
    as_of = min(end, dt.datetime.now(settings.timezone).replace(microsecond=0))
    bench = console.workbench
    # every valid playbook, disabled ones too: their past runs still count (as `report`)
    playbooks = bench.validator.validate_paths([settings.playbooks_dir]).playbooks
    doc = effect_report(
        bench.store,
        bench.dictionary,
        playbooks,
        as_of=as_of,
        since=since,
        until=until,
        tz=settings.timezone,
    )
    return render(
        request,
        "effect.html",
        viewer,
        doc=doc,
        since=since,
        until=until,
        as_of=as_of,
        verdict_text=verdict_text,
        percent=percent,
        points=points,
        banner=simulated_banner(doc),
        reason_label=reason_label,
    )


ROUTES = [
    RouteSpec("/preview", preview, ("GET",), (P.REPORTS_VIEW,)),
    RouteSpec("/report", effect, ("GET",), (P.REPORTS_VIEW,)),
]
