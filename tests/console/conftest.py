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

import httpx
import pytest
from sqlalchemy import Engine, select
from support import AS_OF_DATE, DEMO_CUSTOMERS, REPO

from engine.console import accounts
from engine.console.auth import Sessions
from engine.console.context import Console
from engine.console.server import ConsoleServer
from engine.core.settings import Settings
from engine.demo.generator import generate
from engine.store.db import open_store
from engine.store.models import managers, tasks

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
