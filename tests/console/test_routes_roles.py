"""Every route × every role over real HTTP: a role either may (no 401/403, never a 5xx) or
gets 403; a state-changing request without the session's CSRF token gets 403; nobody logged
in is sent to the login page (or told the session ended, for a background request)."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import Site, Work, branch_open_ids, csrf_of, open_ids
from support import REPO

from engine.console.guard import ANYONE, PUBLIC, RouteSpec
from engine.console.roles import ROLES, allows
from engine.console.routes import ROUTES
from engine.store.models import tasks

PLAYBOOK = "birthday_greeting.yaml"
SAMPLE_PARAMS = {"name": PLAYBOOK, "id": "1"}
PATH_SAMPLES = {"/templates/{name}": {"name": "birthday_greeting.sms.j2"}}


def concrete(spec: RouteSpec, task_id: int | None = None) -> str:
    params = {**PATH_SAMPLES.get(spec.path, SAMPLE_PARAMS), "task_id": str(task_id or 1)}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: params.get(m.group(1), "1"), spec.path)


def body_for(spec: RouteSpec) -> dict[str, str]:
    text = (REPO / "playbooks" / PLAYBOOK).read_text(encoding="utf-8")
    return {
        "file": PLAYBOOK,
        "text": text,
        "day": "2026-11-24",
        "customer_id": "C0000000043",
        "name": "birthday_greeting.sms.j2" if "template" in spec.path else "",
    }


def may(role: str, spec: RouteSpec) -> bool:
    if spec.needs in (PUBLIC, ANYONE):
        return True
    assert isinstance(spec.needs, tuple)
    return any(allows(role, p) for p in spec.needs)


GUARDED = [s for s in ROUTES if s.needs != PUBLIC and s.path not in ("/logout",)]


def call(
    client: httpx.Client,
    spec: RouteSpec,
    method: str,
    csrf: str | None,
    task_id: int | None = None,
) -> httpx.Response:
    headers = {"HX-Request": "true"} if method != "GET" else {}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    if method == "GET":
        return client.get(concrete(spec, task_id), headers=headers)
    if spec.path == "/api/validate":
        return client.post(concrete(spec), json=body_for(spec), headers=headers)
    return client.request(method, concrete(spec, task_id), data=body_for(spec), headers=headers)


def own_task(site: Site, work: Work, role: str) -> int | None:
    """An open task the role's account may work (a fresh one for each call: closing one
    takes it off the list), so a task route is refused only for want of permission."""
    if role == "manager":
        found = open_ids(site, tasks.c.assignee_id == work.manager_id)
    elif role == "leader":
        found = branch_open_ids(site, work.branch_id)
    else:
        return None
    return min(found)


@pytest.mark.parametrize("role", ROLES)
def test_every_route_allows_its_roles_and_refuses_the_others(
    site: Site, work: Work, role: str
) -> None:
    with site.client(role) as client:
        csrf = csrf_of(client)
        wrong = []
        for spec in GUARDED:
            for method in spec.methods:
                task = own_task(site, work, role) if "task_id" in spec.path else None
                got = call(client, spec, method, csrf, task).status_code
                allowed = may(role, spec)
                if (allowed and (got in (401, 403) or got >= 500)) or (not allowed and got != 403):
                    wrong.append(f"{method} {spec.path}: {got} (allowed: {allowed})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_a_state_change_without_the_csrf_token_is_refused(site: Site, role: str) -> None:
    with site.client(role) as client:
        other = "0" * 64
        for spec in GUARDED:
            for method in (m for m in spec.methods if m != "GET"):
                for token in (None, other):
                    response = call(client, spec, method, token)
                    assert response.status_code == 403, (method, spec.path, token)
                    assert "Traceback" not in response.text


def test_nobody_logged_in_is_sent_to_log_in(site: Site) -> None:
    with site.client() as client:
        for spec in GUARDED:
            for method in spec.methods:
                response = call(client, spec, method, None)
                if method == "GET":
                    assert response.status_code == 303, spec.path
                    assert response.headers["location"].startswith("/login?next=")
                else:
                    assert response.status_code == 401, spec.path
                    assert "重新登录" in response.text


def test_every_route_is_in_the_table_and_the_table_covers_every_role() -> None:
    """A route added without a permission would be public by accident."""
    for spec in ROUTES:
        assert spec.needs in (PUBLIC, ANYONE) or (isinstance(spec.needs, tuple) and spec.needs)
    public = sorted({s.path for s in ROUTES if s.needs == PUBLIC})
    assert public == ["/healthz", "/login"]
    reachable = {
        role for role in ROLES for s in ROUTES if isinstance(s.needs, tuple) and may(role, s)
    }
    assert reachable == set(ROLES)
