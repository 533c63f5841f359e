"""Server-rendered pages: one Jinja environment for the console's own HTML (autoescaped,
unlike the sandbox that renders customer messages) and the filters people read numbers and
dates with."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from engine.console.auth import Viewer
from engine.console.roles import ROLE_LABELS, Permission
from engine.core.i18n import Lang, choose_lang
from engine.triggers.schedule import in_words

NAV: tuple[tuple[str, str, tuple[Permission, ...]], ...] = (
    ("/playbooks", "剧本 Playbooks", (Permission.PLAYBOOKS_VIEW,)),
    ("/tasks", "任务 Tasks", (Permission.TASKS_OWN, Permission.TASKS_BRANCH)),
    ("/preview", "预览 Preview", (Permission.REPORTS_VIEW,)),
    ("/report", "效果 Effect", (Permission.REPORTS_VIEW,)),
    ("/versions", "审批 Approvals", (Permission.VERSIONS_VIEW,)),
    ("/operations", "运行 Operations", (Permission.OPERATIONS_VIEW,)),
    ("/audit", "审计 Audit log", (Permission.AUDIT_VIEW,)),
    ("/history", "客户历史 History", (Permission.HISTORY_VIEW,)),
    ("/accounts", "账号 Accounts", (Permission.USERS_MANAGE,)),
)


def cn_date(value: Any) -> str:
    """2026-12-04 → 2026年12月4日"""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return f"{cn_date(value)} {value:%H:%M}"


def money(value: Any) -> str:
    """4.99万元 from 49900; yuan below ten thousand."""
    if value is None:
        return "—"
    amount = float(value)
    if abs(amount) >= 10_000:
        return f"{amount / 10_000:,.2f}万元"
    return f"{amount:,.2f}元"


def count(value: Any) -> str:
    return f"{int(value or 0):,}"


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("engine.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    cn_date=cn_date, cn_datetime=cn_datetime, money=money, count=count, cron_words=in_words
)
_env.globals.update(ROLE_LABELS=ROLE_LABELS)


def request_lang(request: Request) -> Lang:
    """The language of messages for this person: ``CARE_LANG`` when the deployment sets it,
    else the browser's first choice (Accept-Language: zh… → Chinese), else Chinese, the
    language of the bank's staff."""
    if os.environ.get("CARE_LANG", "").strip():
        return choose_lang()
    accepted = request.headers.get("accept-language", "").strip().lower()
    return "en" if accepted and not accepted.startswith("zh") else "zh"


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    nav = (
        []
        if viewer is None
        else [(h, label) for h, label, needs in NAV if any(map(viewer.can, needs))]
    )
    page = _env.get_template(template).render(
        request=request, viewer=viewer, nav=nav, path=request.url.path, **context
    )
    return HTMLResponse(page, status_code=status_code)


def message_page(
    request: Request, viewer: Viewer | None, status_code: int, title: str, text: str
) -> HTMLResponse:
    """A clear page for a refusal or a failure: what happened and what to do, no trace."""
    return render(request, "message.html", viewer, status_code, title=title, text=text)
