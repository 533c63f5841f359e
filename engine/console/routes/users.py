"""The accounts page (admins): every account with its role and scope; change a role,
disable or enable an account. Passwords are set from the terminal (`users add`, `users
password`), never through a page an admin could read them on."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.console import accounts
from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import message_page, render
from engine.console.roles import ROLES
from engine.console.roles import Permission as P


def account_list(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    return render(
        request, "accounts.html", viewer, accounts=accounts.all_accounts(console.store), roles=ROLES
    )


def change(request: Request, console: Console, viewer: Viewer | None, body: Body) -> Response:
    assert viewer is not None
    name, what = request.path_params["name"], request.path_params["what"]
    if name == viewer.account.name:
        return message_page(
            request,
            viewer,
            409,
            "不能修改自己 Not your own account",
            "管理员不能停用自己或更改自己的角色,以免无人可管理。An admin cannot disable or "
            "demote themselves; ask another admin.",
        )
    if what == "disable":
        accounts.disable(console.store, name)
    elif what == "enable":
        accounts.enable(console.store, name)
    elif what == "role":
        role = str(body.get("role") or "")
        accounts.set_role(
            console.store,
            name,
            role,
            manager_id=str(body.get("manager_id") or "") or None,
            branch_id=str(body.get("branch_id") or "") or None,
        )
    else:
        return message_page(request, viewer, 404, "找不到页面 Not found", what)
    changed = {k: v for k, v in body.items() if k in ("role", "manager_id", "branch_id") and v}
    console.audit(viewer.account.name, f"account.{what}", f"account:{name}", **changed)
    return RedirectResponse("/accounts", status_code=303)


ROUTES = [
    RouteSpec("/accounts", account_list, ("GET",), (P.USERS_MANAGE,)),
    RouteSpec("/accounts/{name}/{what}", change, ("POST",), (P.USERS_MANAGE,)),
]
