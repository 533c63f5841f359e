"""The console as an operator starts it: accounts from `users` (the password from standard
input, as a script gives it), `console` in its own process, and `daemon --console-port`
serving it beside the schedule; SIGTERM stops both cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import PASSWORD, copy_project, login
from daemon_support import Processes, cli_env
from gateways import free_port
from support import AS_OF_DATE, REPO

from engine.demo.generator import generate
from engine.store.db import open_store


def users(root: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "users", *args],
        cwd=root,
        input=password + "\n" if password is not None else "",
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )


def healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the process ended before serving"
        try:
            if httpx.get(url + "healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} never answered")


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, str]:
    copy_project(tmp_path)
    url = f"sqlite:///{tmp_path / 'data' / 'engine.db'}"
    store = open_store(url)
    try:
        generate(store, customers=200, seed=3, as_of=AS_OF_DATE)
    finally:
        store.dispose()
    return tmp_path, url


def test_users_commands_keep_accounts_and_refuse_bad_ones(deployment: tuple[Path, str]) -> None:
    root, url = deployment
    added = users(root, "add", "li.na", "--role", "editor", "--db", url, password=PASSWORD)
    assert added.returncode == 0, added.stderr
    short = users(root, "add", "wang", "--role", "editor", "--db", url, password="short")
    assert short.returncode == 2 and "E0607" in short.stderr
    twice = users(root, "add", "li.na", "--role", "approver", "--db", url, password=PASSWORD)
    assert twice.returncode == 2 and "E0602" in twice.stderr
    no_row = users(
        root,
        "add",
        "zhao",
        "--role",
        "manager",
        "--manager-id",
        "M404",
        "--db",
        url,
        password=PASSWORD,
    )
    assert no_row.returncode == 2 and "E0604" in no_row.stderr
    assert users(root, "role", "li.na", "approver", "--db", url).returncode == 0
    assert users(root, "disable", "li.na", "--db", url).returncode == 0
    listed = users(root, "list", "--db", url).stdout
    assert "li.na" in listed and "approver" in listed and "disabled" in listed
    stored = (root / "data" / "engine.db").read_bytes()
    assert PASSWORD.encode() not in stored and b"$argon2id$" in stored


def test_console_and_daemon_serve_it_and_stop_on_sigterm(
    deployment: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = deployment
    assert (
        users(root, "add", "ed", "--role", "editor", "--db", url, password=PASSWORD).returncode == 0
    )
    procs = Processes()
    try:
        for args in (
            ["console", "--db", url, "--port", str(port := free_port())],
            ["daemon", "--db", url, "--no-dispatch", "--console-port", str(port2 := free_port())],
        ):
            chosen = port if args[0] == "console" else port2
            proc = procs.spawn(root, tmp_path / f"{args[0]}.log", *args)
            base = f"http://127.0.0.1:{chosen}/"
            healthy(base, proc)
            with httpx.Client(base_url=base, timeout=30) as client:
                assert login(client, "ed").status_code == 303
                assert "birthday_greeting.yaml" in client.get("/playbooks").text
            with httpx.Client(base_url=base, timeout=30) as client:
                assert login(client, "ed", "wrong password!").status_code == 401
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, (tmp_path / f"{args[0]}.log").read_text()
    finally:
        procs.kill_all()
