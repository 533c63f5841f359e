"""The console's ASGI app: routes from ``routes/``, each behind the guard; a body size limit;
security headers; and error pages that say what happened without a stack trace."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.console import accounts
from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import current_viewer, incident_id, route
from engine.console.pages import message_page
from engine.console.routes import ROUTES

log = logging.getLogger("engine.console")

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1_500_000
"""Bytes a request body may have: a playbook is at most 1 MB (PB0011) plus JSON quoting."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# CodeMirror writes its styles into <style> elements, hence 'unsafe-inline' for styles only;
# scripts come from the package's own files and nothing else.


def create_app(console: Console) -> Starlette:
    accounts.ensure_tables(console.store)
    routes: list[BaseRoute] = [route(spec) for spec in ROUTES]
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit, limit=MAX_BODY), Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.console = console
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    viewer = _viewer_or_none(request)
    titles = {
        404: ("找不到页面 Not found", "没有这个页面。There is no such page."),
        405: ("不支持的操作 Not allowed", "此页面不支持该操作。This page does not do that."),
        413: (
            "内容过大 Too large",
            f"提交的内容超过 {MAX_BODY:,} 字节。The request is over {MAX_BODY:,} bytes.",
        ),
    }
    title, text = titles.get(exc.status_code, ("请求有误 Bad request", str(exc.detail)))
    return message_page(request, viewer, exc.status_code, title, text)


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback under an incident id; the page shows only the id."""
    incident = incident_id()
    log.error(
        "console incident %s on %s %s", incident, request.method, request.url.path, exc_info=exc
    )
    return message_page(
        request,
        None,
        500,
        "出错了 Something went wrong",
        f"服务器内部错误,编号 {incident};请联系运维。An internal error (incident {incident}); "
        "please tell your operator.",
    )


def _viewer_or_none(request: Request) -> Viewer | None:
    try:
        return current_viewer(request, request.app.state.console)
    except Exception:  # an error page must render even when the store is what failed
        return None


class BodyLimit:
    """413 for a body over ``limit`` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(scope, send, self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited, send)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    text = (f"内容过大:超过 {limit:,} 字节。Request body over {limit:,} bytes.\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-store")
                    if not scope.get("path", "").startswith("/static/")
                    else (b"cache-control", b"public, max-age=3600"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
