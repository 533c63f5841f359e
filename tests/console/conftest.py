"""A real console on loopback (uvicorn) over a demo store and a copy of the project's
playbooks, templates, segments, schemas and config (saves must never touch the checkout),
with one account per role."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from support import AS_OF, AS_OF_DATE, DEMO_CUSTOMERS, REPO

from engine.console import accounts
from engine.console.auth import Sessions
from engine.console.context import Console
from engine.console.server import ConsoleServer
from engine.core.dictionary import load_dictionary
from engine.core.settings import Settings
from engine.demo.generator import generate
from engine.execution.executor import Executor
from engine.execution.selection import decide
from engine.playbook.validation import Validator
from engine.store.db import open_store
from engine.store.models import customers, managers, tasks

PASSWORD = "correct horse battery"
SECRET = b"test secret of the console fixture"
FOLDERS = ("playbooks", "templates", "segments", "schemas", "config")


@dataclass
class Site:
    url: str
    root: Path
    settings: Settings
    store: Engine
    names: dict[str, str]  # role -> account name
    manager_id: str
    branch_id: str

    @contextmanager
    def client(self, role: str | None = None) -> Iterator[httpx.Client]:
        """A browser-like client; logged in as the role's account when ``role`` is given."""
        with httpx.Client(base_url=self.url, follow_redirects=False, timeout=60) as client:
            if role is not None:
                login(client, self.names[role])
            yield client


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token.group(1)}
    )


def csrf_of(client: httpx.Client, path: str = "/") -> str:
    """The session's CSRF token, as a page carries it."""
    page = client.get(path, follow_redirects=True)
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def copy_project(root: Path) -> Settings:
    for name in FOLDERS:
        shutil.copytree(REPO / name, root / name)
    return Settings(root=root)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Module scope: each module gets its own store, project copy and server (SQLite: what
    the console shows is the engine's, which the rest of the suite runs on both backends)."""
    root = tmp_path_factory.mktemp("console")
    settings = copy_project(root)
    store = open_store(f"sqlite:///{root / 'store.db'}")
    generate(store, customers=DEMO_CUSTOMERS, seed=11, as_of=AS_OF_DATE)
    with store.connect() as conn:
        # a manager who has tasks to work is made below by running a task playbook; any
        # manager row will do for the account itself
        manager = conn.execute(select(managers.c.id, managers.c.branch_id).limit(1)).one()
    names = {
        role: f"{role}1" for role in ("editor", "approver", "manager", "leader", "auditor", "admin")
    }
    for role, name in names.items():
        accounts.add(
            store,
            name,
            role,
            PASSWORD,
            manager_id=manager.id if role == "manager" else None,
            branch_id=manager.branch_id if role == "leader" else None,
        )
    console = Console(settings, store, Sessions(SECRET))
    server = ConsoleServer(console, "127.0.0.1", 0)
    server.start()
    try:
        yield Site(server.url, root, settings, store, names, manager.id, manager.branch_id)
    finally:
        server.stop()
        store.dispose()


def open_tasks(store: Engine, assignee: str) -> list[int]:
    with store.connect() as conn:
        rows = conn.execute(
            select(tasks.c.id).where(tasks.c.assignee_id == assignee, tasks.c.status == "open")
        )
        return [r.id for r in rows]


# --- tasks to work: made by running task playbooks, as the engine makes them -----------------

QUEUE = "网点服务台"
QUEUE_PLAYBOOK = f"""\
id: branch-desk-follow-up
title: 网点服务台跟进
trigger: {{schedule: "0 9 * * *"}}
audience:
  tier: [vip, private]
actions:
  - task: {{queue: {QUEUE}, kind: follow_up, title: "跟进 {{{{ customer.name }}}}", due_in: 1d}}
limits:
  max_per_run: 60
"""
TASK_PLAYBOOKS = (
    "vip-visit-manager-30d",
    "vip-visit-senior-90d",
    "new-customer-call-7d",
    "branch-desk-follow-up",
)


@dataclass
class Work:
    manager_id: str  # the manager account's managers row: it has open tasks
    other_id: str  # a colleague of the same branch (a senior manager) with open tasks
    branch_id: str


@pytest.fixture(scope="module")
def work(site: Any) -> Iterator[Work]:
    (site.root / "playbooks" / "branch_desk_follow_up.yaml").write_text(
        QUEUE_PLAYBOOK, encoding="utf-8"
    )
    dictionary = load_dictionary(site.settings.dictionary_path)
    validator = Validator(site.settings, dictionary)
    found = validator.validate_paths([site.settings.playbooks_dir])
    assert not found.errors, [f"{d.code} {d.message}" for d in found.errors]
    chosen = [p for p in found.playbooks if p.id in TASK_PLAYBOOKS]
    assert len(chosen) == len(TASK_PLAYBOOKS)
    executor = Executor(site.store, site.settings, dictionary, validator.renderer)
    decide(site.store, executor, chosen, AS_OF, whole_day=True, dry_run=False, mask=False)
    t, m = tasks.c, managers.c
    with site.store.connect() as conn:
        people = conn.execute(
            select(t.assignee_id, m.role, m.branch_id)
            .join(managers, m.id == t.assignee_id)
            .where(t.status == "open")
            .group_by(t.assignee_id, m.role, m.branch_id)
            .order_by(t.assignee_id)
        ).all()
        queue_branches = set(
            conn.execute(
                select(customers.c.branch_id)
                .join(tasks, t.customer_id == customers.c.id)
                .where(t.queue == QUEUE)
            ).scalars()
        )
    # a manager with tasks, in a branch where a colleague has tasks too and the team queue
    # has some; the colleague is the "other manager" whose tasks are not the account's
    mine, branch = next(
        (who, branch)
        for who, role, branch in people
        if role == "manager" and branch in queue_branches
    )
    other = next(who for who, _, b in people if b == branch and who != mine)
    accounts.set_role(site.store, site.names["manager"], "manager", manager_id=mine)
    accounts.set_role(site.store, site.names["leader"], "leader", branch_id=branch)
    site.manager_id, site.branch_id = mine, branch
    yield Work(mine, other, branch)


def open_ids(site: Any, *where: Any) -> set[int]:
    with site.store.connect() as conn:
        rows = conn.execute(select(tasks.c.id).where(tasks.c.status == "open", *where))
        return {r.id for r in rows}


def branch_open_ids(site: Any, branch: str) -> set[int]:
    """Open tasks of people in ``branch``, and of team queues for its customers."""
    t = tasks.c
    with site.store.connect() as conn:
        staff = set(
            conn.execute(select(managers.c.id).where(managers.c.branch_id == branch)).scalars()
        )
        own = conn.execute(
            select(t.id, t.assignee_id, customers.c.branch_id)
            .join(customers, customers.c.id == t.customer_id)
            .where(t.status == "open")
        ).all()
    return {i for i, who, cb in own if (who in staff) or (who is None and cb == branch)}
