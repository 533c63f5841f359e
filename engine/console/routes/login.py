"""Logging in and out, the home page each role lands on, and a health check."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from engine.console import accounts
from engine.console.auth import LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Viewer
from engine.console.context import Console
from engine.console.guard import ANYONE, PUBLIC, Body, RouteSpec
from engine.console.pages import render

HOME = {
    "editor": "/playbooks",
    "approver": "/playbooks",
    "auditor": "/playbooks",
    "manager": "/tasks",
    "leader": "/tasks",
    "admin": "/operations",
}


def login_page(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    if viewer is not None:
        return RedirectResponse(HOME.get(viewer.account.role, "/playbooks"), status_code=303)
    return _form(request, console, next_path=_safe_next(body.get("next")))


def login(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    name = str(body.get("name", "")).strip()[:64]
    password = str(body.get("password", ""))[:1024]
    next_path = _safe_next(body.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not console.sessions.csrf_ok("login:" + nonce, body.get("csrf_token")):
        return _form(
            request,
            console,
            next_path,
            403,
            "页面已过期,请重新提交。The page expired; please try again.",
        )
    client = request.client.host if request.client else "?"
    key, address = f"name:{name.lower()}", f"ip:{client}"
    wait = max(console.throttle.wait(key), console.address_throttle.wait(address))
    if wait > 0:
        minutes = int(wait // 60) + 1
        return _form(
            request,
            console,
            next_path,
            429,
            f"尝试次数过多,请 {minutes} 分钟后再试。Too many attempts; try again in {minutes} min.",
        )
    account = accounts.authenticate(console.store, name, password)
    if account is None:
        console.throttle.failed(key)
        console.address_throttle.failed(address)
        console.audit(name or "?", "login.failed", f"address:{client}")
        return _form(request, console, next_path, 401, "用户名或密码错误。Wrong name or password.")
    console.throttle.succeeded(key)
    console.audit(account.name, "login", f"address:{client}", role=account.role)
    target = next_path or HOME.get(account.role, "/playbooks")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        console.sessions.issue(account),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def logout(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    if viewer is not None:
        console.audit(viewer.account.name, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def home(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    return RedirectResponse(HOME.get(viewer.account.role, "/playbooks"), status_code=303)


def healthz(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    return PlainTextResponse("ok\n")


def _form(
    request: Request,
    console: Console,
    next_path: str | None,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(16)
    response = render(
        request,
        "login.html",
        None,
        status_code,
        csrf=console.sessions.csrf_for("login:" + nonce),
        next_path=next_path or "",
        error=error,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="lax",
        path="/login",
        secure=request.url.scheme == "https",
    )
    return response


def _safe_next(value: object) -> str | None:
    """Only a path of this site: never an absolute or scheme-relative URL (open redirect)."""
    text = str(value or "")
    if text.startswith("/") and not text.startswith("//") and "\\" not in text:
        return text[:500]
    return None


ROUTES = [
    RouteSpec("/login", login_page, ("GET",), PUBLIC),
    RouteSpec("/login", login, ("POST",), PUBLIC),
    RouteSpec("/logout", logout, ("POST",), ANYONE),
    RouteSpec("/", home, ("GET",), ANYONE),
    RouteSpec("/healthz", healthz, ("GET",), PUBLIC),
]
