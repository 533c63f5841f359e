"""``playbook submit|approve|reject|publish|rollback|pause|resume|versions|diff``: the
governance workflow from the command line, over the same engine functions as the console.

The actor is ``cli:USER`` (the operating-system user), or ``--as NAME`` to act as that
console account with its role. Every change is one audit entry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from engine.commands import common
from engine.core.dictionary import load_dictionary
from engine.core.errors import UsageError
from engine.governance import service
from engine.governance.config import load_governance
from engine.governance.records import Actor

F = TypeVar("F", bound=Callable[..., Any])


def as_option(fn: F) -> F:
    return click.option(
        "--as",
        "as_name",
        default=None,
        help="act as this console account (its role decides what you may approve); "
        "default cli:USER",
    )(fn)


@contextmanager
def deployment(
    db_url: str | None, as_name: str | None
) -> Iterator[tuple[service.Deployment, Actor]]:
    settings = common.settings()
    gov = load_governance(settings.governance_path, required=True)
    store = common.store(settings, db_url)
    try:
        dictionary = load_dictionary(settings.dictionary_path)
        actor = service.resolve_actor(store, as_name, common.os_user())
        yield service.Deployment(store, settings, dictionary, gov), actor
    finally:
        store.dispose()


def _say(done: service.Done) -> None:
    click.echo(f"{done.playbook_id}@{done.number}: {done.message}")


@click.group("playbook")
def playbook() -> None:
    """Versions and approval: submit, approve or reject, publish, roll back, pause."""


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
@click.option("--as-of", "as_of", default=None, help="day of the audience estimate (default today)")
@click.option("--draft", is_flag=True, help="store it as a draft, not yet for review")
def submit(
    db_url: str | None, as_name: str | None, playbook_id: str, as_of: str | None, draft: bool
) -> None:
    """Store the playbook as it is in the folders as a new version for review, with its
    audience estimate and its diff against the live version."""
    settings = common.settings()
    moment, _ = common.parse_as_of(as_of, settings)
    with deployment(db_url, as_name) as (dep, actor):
        done = service.submit(dep, actor, playbook_id, day=moment.date(), draft=draft)
    _say(done)
    est = done.detail["estimate"]
    if est.get("audience") is not None:
        click.echo(
            f"  audience estimate on {est['day']}: {est['audience']:,} customer(s), "
            f"{est['sms_per_day']:,} SMS a day"
        )
    click.echo(done.detail["diff"] or "  (no difference in the files)", nl=False)


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
@click.argument("number", type=int)
@click.option("--comment", default=None, help="why, for the record")
def approve(
    db_url: str | None, as_name: str | None, playbook_id: str, number: int, comment: str | None
) -> None:
    """Approve a submitted version (never one's own)."""
    with deployment(db_url, as_name) as (dep, actor):
        _say(service.approve(dep, actor, playbook_id, number, comment))


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
@click.argument("number", type=int)
@click.option("--comment", required=True, help="what to change (required)")
def reject(
    db_url: str | None, as_name: str | None, playbook_id: str, number: int, comment: str
) -> None:
    """Send a version back to its author with a comment."""
    with deployment(db_url, as_name) as (dep, actor):
        _say(service.reject(dep, actor, playbook_id, number, comment))


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
@click.argument("number", type=int)
def publish(db_url: str | None, as_name: str | None, playbook_id: str, number: int) -> None:
    """Make an approved version live and write its files into the folders."""
    with deployment(db_url, as_name) as (dep, actor):
        _say(service.publish(dep, actor, playbook_id, number))


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
@click.argument("number", type=int)
def rollback(db_url: str | None, as_name: str | None, playbook_id: str, number: int) -> None:
    """Make an earlier approved version live again, with its exact files (a second person
    confirms with the same command when config/governance.yaml asks for two)."""
    with deployment(db_url, as_name) as (dep, actor):
        _say(service.rollback(dep, actor, playbook_id, number))


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
def pause(db_url: str | None, as_name: str | None, playbook_id: str) -> None:
    """Stop the live version from running; its files stay."""
    with deployment(db_url, as_name) as (dep, actor):
        _say(service.pause(dep, actor, playbook_id))


@playbook.command()
@common.db_option
@as_option
@click.argument("playbook_id")
def resume(db_url: str | None, as_name: str | None, playbook_id: str) -> None:
    """Let a paused live version run again."""
    with deployment(db_url, as_name) as (dep, actor):
        _say(service.resume(dep, actor, playbook_id))


@playbook.command()
@common.db_option
@click.argument("playbook_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def versions(db_url: str | None, playbook_id: str, fmt: str) -> None:
    """Every version of a playbook: state, author, approvals, estimate, events."""
    settings = common.settings()
    store = common.store(settings, db_url)
    try:
        found = service.history(store, playbook_id)
    finally:
        store.dispose()
    if fmt == "json":
        click.echo(json.dumps(found, ensure_ascii=False, indent=2, default=_json))
        return
    if not found:
        click.echo(f"{playbook_id}: no versions yet (`playbook submit {playbook_id}`)")
    tz = settings.timezone
    for v in found:
        live = "  <- live" if v["is_live"] else ""
        est = v["estimate"] or {}
        audience = est.get("audience")
        click.echo(
            f"v{v['number']} {v['state']:<9} {v['hash'][:12]} by {v['author']} "
            f"{_local(v['created_at'], tz)}; audience {audience if audience is not None else '-'}"
            f", needs {v['approvals_needed']} approver(s){live}"
        )
        for e in v["events"]:
            note = f": {e['comment']}" if e["comment"] else ""
            click.echo(f"    {_local(e['at'], tz)} {e['action']:<20} {e['actor']}{note}")


@playbook.command()
@common.db_option
@click.argument("playbook_id")
@click.option("--from", "old", type=int, default=None, help="version (default: the live one)")
@click.option("--to", "new", type=int, default=None, help="version (default: the folders now)")
def diff(db_url: str | None, playbook_id: str, old: int | None, new: int | None) -> None:
    """The difference between two versions, or between the live version and the folders."""
    settings = common.settings()
    if old is not None and new is not None and old == new:
        raise UsageError("--from and --to name the same version", code="E0650")
    store = common.store(settings, db_url)
    try:
        dep = service.Deployment(
            store,
            settings,
            load_dictionary(settings.dictionary_path),
            load_governance(settings.governance_path, required=False),
        )
        text = service.diff(dep, playbook_id, old, new)
    finally:
        store.dispose()
    click.echo(text or "no difference", nl=not text)


def _local(moment: dt.datetime | None, tz: Any) -> str:
    if moment is None:
        return "-"
    return moment.replace(tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="seconds")


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds")
    return str(value)
