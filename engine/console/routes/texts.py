"""The template editor: a message template's text beside its live render for a sample
customer (masked), with the SMS parts it bills, signature and opt-out included."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from engine.console.auth import Viewer
from engine.console.context import Console
from engine.console.guard import Body, RouteSpec
from engine.console.pages import render
from engine.console.roles import Permission as P


def template_editor(
    request: Request, console: Console, viewer: Viewer | None, body: Body
) -> Response:
    assert viewer is not None
    name = request.path_params["name"]
    text = console.workbench.template_text(name)
    rendered = console.workbench.render_template(name, text)
    return render(
        request,
        "template_editor.html",
        viewer,
        name=name,
        text=text,
        rendered=rendered,
        can_edit=viewer.can(P.PLAYBOOKS_EDIT),
    )


def render_preview(
    request: Request, console: Console, viewer: Viewer | None, body: Body
) -> Response:
    name = str(body.get("name") or "")
    rendered = console.workbench.render_template(name, str(body.get("text") or ""))
    return render(request, "fragments/rendered.html", viewer, rendered=rendered, name=name)


def save_template(
    request: Request, console: Console, viewer: Viewer | None, body: Body
) -> Response:
    name = str(body.get("name") or "")
    text = str(body.get("text") or "")
    rendered = console.workbench.save_template(name, text)
    if rendered["ok"] and viewer is not None:
        digest = hashlib.sha256(text.encode()).hexdigest()
        console.audit(viewer.account.name, "template.save", f"template:{name}", sha256=digest)
    return render(
        request,
        "fragments/rendered.html",
        viewer,
        rendered=rendered,
        name=name,
        saved=rendered["ok"],
    )


ROUTES = [
    RouteSpec("/templates/{name}", template_editor, ("GET",), (P.PLAYBOOKS_VIEW,)),
    RouteSpec("/editor/render", render_preview, ("POST",), (P.PLAYBOOKS_VIEW,)),
    RouteSpec("/editor/save-template", save_template, ("POST",), (P.PLAYBOOKS_EDIT,)),
]
