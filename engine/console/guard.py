"""Every route declares what it needs, and one wrapper enforces it: a session (else the login
page, or a clear "session expired" for a background request), the route's permission (else
403), and on every state-changing request the session's CSRF token (else 403). Endpoints are
plain functions run in a worker thread, given the request's parsed body."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from engine.console import accounts
from engine.console.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Viewer
from engine.console.context import Console
from engine.console.pages import message_page
from engine.console.roles import Permission
from engine.core.errors import EngineError

log = logging.getLogger("engine.console")

PUBLIC = "public"
"""``needs`` of a route anyone may open (the login page, health)."""
ANYONE = "anyone"
"""``needs`` of a route any logged-in person may open (home, logout)."""
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Body = Mapping[str, Any]
Endpoint = Callable[[Request, Console, Viewer | None, Body], Response]


@dataclass(frozen=True)
class RouteSpec:
    path: str
    endpoint: Endpoint
    methods: tuple[str, ...]
    needs: tuple[Permission, ...] | str  # any one of these permissions, PUBLIC or ANYONE


def route(spec: RouteSpec) -> Route:
    async def guarded(request: Request) -> Response:
        console: Console = request.app.state.console
        viewer = current_viewer(request, console)
        unsafe = request.method in UNSAFE
        if spec.needs != PUBLIC:
            if viewer is None:
                return _expired(request, unsafe)
            if isinstance(spec.needs, tuple) and not any(map(viewer.can, spec.needs)):
                return message_page(
                    request,
                    viewer,
                    403,
                    "无权访问 Not allowed",
                    "您的角色没有此页面的权限。Your role does not have access to this page.",
                )
        try:
            body = await _body(request) if unsafe else dict(request.query_params)
        except ValueError:
            return message_page(
                request,
                viewer,
                400,
                "请求无法读取 Bad request",
                "请求的内容无法读取。The request body could not be read.",
            )
        if unsafe and viewer is not None and spec.needs != PUBLIC:
            token = request.headers.get(CSRF_HEADER) or body.get(CSRF_FIELD)
            if not console.sessions.csrf_ok(viewer.nonce, token):
                return message_page(
                    request,
                    viewer,
                    403,
                    "页面已过期 Page expired",
                    "安全令牌缺失或无效,请刷新页面后重试。The security token is missing or "
                    "invalid: reload the page and try again.",
                )
        try:
            return await run_in_threadpool(spec.endpoint, request, console, viewer, body)
        except EngineError as exc:
            return message_page(
                request,
                viewer,
                400 if exc.exit_code == 2 else 422,
                "无法完成 Cannot do that",
                exc.render(),
            )

    guarded.__name__ = spec.endpoint.__name__
    return Route(spec.path, guarded, methods=list(spec.methods), name=spec.endpoint.__name__)


def current_viewer(request: Request, console: Console) -> Viewer | None:
    read = console.sessions.read(request.cookies.get(SESSION_COOKIE))
    if read is None:
        return None
    name, nonce, stamp = read
    account = accounts.get(console.store, name)
    return None if account is None else console.sessions.viewer(account, nonce, stamp)


def _expired(request: Request, unsafe: bool) -> Response:
    if not unsafe and "hx-request" not in request.headers:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    response = message_page(
        request,
        None,
        401,
        "请重新登录 Please log in again",
        "您的登录已过期,未保存的内容仍在浏览器中;请在新窗口登录后重试。Your session has ended; "
        "log in again (in a new tab, to keep unsaved work) and retry.",
    )
    if "hx-request" in request.headers:
        response.headers["HX-Retarget"] = "body"
    return response


async def _body(request: Request) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        raw = await request.body()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ValueError("not JSON") from exc
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=200)
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return {}


def incident_id() -> str:
    return secrets.token_hex(4)
