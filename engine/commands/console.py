"""``console`` (the web workbench) and ``users`` (its accounts)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from engine.commands import common
from engine.console import accounts
from engine.console.auth import Sessions, load_secret
from engine.console.context import Console
from engine.console.roles import ROLE_LABELS, ROLES
from engine.console.server import ConsoleServer
from engine.core.errors import UsageError
from engine.core.settings import Settings
from engine.store import audit
from engine.store.replica import ReplicaConfig, ReplicaReads


def make_console(settings: Settings, store: Engine, replica: ReplicaReads | None = None) -> Console:
    secret = load_secret(settings.data_dir / "console.secret")
    return Console(settings, store, Sessions(secret), replica=replica)


@click.command("console")
@common.db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@common.replica_options
def console_command(
    db_url: str | None, host: str, port: int, replica: ReplicaConfig | None
) -> None:
    """Serve the web console (playbook editor, task list, previews) until Ctrl-C or SIGTERM
    (exit 0). With --replica-db, previews and audience estimates read the bank's data from a
    streaming replica."""
    settings = common.settings()
    store = common.store(settings, db_url)
    reads = common.replica(store, replica)
    server = ConsoleServer(make_console(settings, store, reads), host, port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    click.echo(f"console on {server.url}  (Ctrl-C stops it)")
    if not accounts.all_accounts(store):
        click.echo("no accounts yet: add one with `python runner.py users add NAME --role editor`")
    try:
        stop.wait()
    finally:
        server.stop()
        if reads is not None:
            reads.dispose()
        store.dispose()


@click.group("users")
def users() -> None:
    """Console accounts: add, list, disable, enable, change role or password."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--manager-id", default=None, help="manager role: the managers row they work as")
@click.option("--branch", "branch_id", default=None, help="leader role: the branch they lead")
@common.db_option
def users_add(
    name: str, role: str, manager_id: str | None, branch_id: str | None, db_url: str | None
) -> None:
    """Add an account; the password is asked for (or read from standard input)."""
    with _opened(db_url) as store:
        account = accounts.add(
            store, name, role, _password(), manager_id=manager_id, branch_id=branch_id
        )
        _audit(store, "account.add", name, role=role, manager_id=manager_id, branch_id=branch_id)
    click.echo(f"added {account.name} ({account.role} {ROLE_LABELS[account.role]})")


@users.command("list")
@common.db_option
def users_list(db_url: str | None) -> None:
    """Every account with its role, and whether it is disabled."""
    with _opened(db_url) as store:
        found = accounts.all_accounts(store)
    if not found:
        click.echo("no accounts")
    for a in found:
        scope = " ".join(
            part
            for part in (
                f"manager {a.manager_id}" if a.manager_id else "",
                f"branch {a.branch_id}" if a.branch_id else "",
            )
            if part
        )
        state = "disabled" if a.disabled else "active"
        click.echo(f"{a.name:<20} {a.role:<9} {state:<8} {scope}".rstrip())


@users.command("disable")
@click.argument("name")
@common.db_option
def users_disable(name: str, db_url: str | None) -> None:
    """Refuse the account from its next request on (its open sessions end too)."""
    _switch(name, db_url, enabled=False)


@users.command("enable")
@click.argument("name")
@common.db_option
def users_enable(name: str, db_url: str | None) -> None:
    _switch(name, db_url, enabled=True)


def _switch(name: str, db_url: str | None, *, enabled: bool) -> None:
    """Enable or disable an account, audited as the operator who typed the command."""
    word = "enable" if enabled else "disable"
    with _opened(db_url) as store:
        (accounts.enable if enabled else accounts.disable)(store, name)
        _audit(store, f"account.{word}", name)
    click.echo(f"{word}d {name}")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--manager-id", default=None)
@click.option("--branch", "branch_id", default=None)
@common.db_option
def users_role(
    name: str, role: str, manager_id: str | None, branch_id: str | None, db_url: str | None
) -> None:
    """Change an account's role (takes effect on its next request)."""
    with _opened(db_url) as store:
        accounts.set_role(store, name, role, manager_id=manager_id, branch_id=branch_id)
        _audit(store, "account.role", name, role=role, manager_id=manager_id, branch_id=branch_id)
    click.echo(f"{name} is now {role}")


@users.command("password")
@click.argument("name")
@common.db_option
def users_password(name: str, db_url: str | None) -> None:
    """Set a new password; every session opened with the old one ends."""
    with _opened(db_url) as store:
        accounts.set_password(store, name, _password())
        _audit(store, "account.password", name)
    click.echo(f"password of {name} changed")


@contextmanager
def _opened(db_url: str | None) -> Iterator[Engine]:
    """The store an account command works on, closed whatever happens."""
    store = common.store(common.settings(), db_url)
    try:
        yield store
    finally:
        store.dispose()


def _audit(store: Engine, action: str, name: str, **detail: str | None) -> None:
    """An account change made at the terminal: the actor is the operating-system user."""
    with store.begin() as conn:
        audit.record(
            conn,
            actor=f"cli:{common.os_user()}",
            action=action,
            subject=f"account:{name}",
            detail={k: v for k, v in detail.items() if v},
        )


def _password() -> str:
    """From the terminal (asked twice, not echoed), or one line of standard input for
    scripts: never from the command line, where it would land in shell history."""
    if sys.stdin.isatty():
        return str(click.prompt("password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError(
            "no password on standard input", code="E0607", hint="echo the password into the command"
        )
    return line
