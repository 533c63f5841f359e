"""Delivery commands: ``dispatch``, ``outbox`` (list / retry / cancel) and ``tasks`` (list /
done / escalate)."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from typing import Any

import click
from sqlalchemy import Engine, select

from engine.commands import common
from engine.core.calendarfile import work_calendar
from engine.core.clock import utc_naive
from engine.core.errors import UsageError
from engine.core.spreadsheet import SafeWriter
from engine.delivery import deadletters
from engine.delivery.dispatcher import DispatchCounts, Dispatcher
from engine.delivery.tasklist import (
    OUTCOMES,
    TaskQuery,
    complete,
    escalate_overdue,
    list_tasks,
    mask_personal,
)
from engine.policy import load_policy
from engine.store.db import require_tables
from engine.store.models import ENGINE_TABLES, outbox

STATUSES = ("pending", "sent", "failed", "cancelled")


def _open(db_url: str | None) -> Engine:
    store = common.store(common.settings(), db_url)
    require_tables(store, ENGINE_TABLES)
    return store


def _moment(as_of: str | None) -> dt.datetime:
    moment, _ = common.parse_as_of(as_of, common.settings())
    return moment


def _summary(counts: DispatchCounts) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.as_dict().items())


# --- dispatch ------------------------------------------------------------------------------


@click.command()
@common.db_option
@click.option("--once", is_flag=True, help="deliver what is due now, then exit")
@click.option("--as-of", "as_of", default=None, help="act as of this moment (implies --once)")
def dispatch(db_url: str | None, once: bool, as_of: str | None) -> None:
    """Deliver queued messages through the channels in config/channels.yaml."""
    settings = common.settings()
    store = _open(db_url)
    with Dispatcher(store, settings) as dispatcher:
        if once or as_of:
            click.echo(f"dispatch: {_summary(dispatcher.drain(_moment(as_of)))}")
            return
        poll = dispatcher.config.dispatch.poll_seconds
        click.echo(f"dispatching every {poll:g}s; Ctrl-C to stop", err=True)
        while True:
            counts = dispatcher.drain(_moment(None))
            if counts.claimed or counts.cancelled:
                now = dt.datetime.now(settings.timezone).isoformat(timespec="seconds")
                click.echo(f"{now} {_summary(counts)}")
            time.sleep(poll)


# --- outbox --------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@common.db_option
@click.option("--status", type=click.Choice([*STATUSES, "all"]), default="all")
@click.option("--channel", type=click.Choice(["sms", "email", "webhook"]), default=None)
@click.option("--playbook", default=None, help="only this playbook's messages")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--show-personal-data", is_flag=True, help="do not mask phones and e-mails")
@click.pass_context
def outbox_command(
    ctx: click.Context,
    db_url: str | None,
    status: str,
    channel: str | None,
    playbook: str | None,
    limit: int,
    fmt: str,
    show_personal_data: bool,
) -> None:
    """List queued, sent, dead-letter (failed) and cancelled messages; retry or cancel them."""
    ctx.ensure_object(dict)
    ctx.obj["db_url"] = db_url
    if ctx.invoked_subcommand is not None:
        return
    store = _open(db_url)
    o = outbox.c
    query = select(outbox).order_by(o.id.desc()).limit(limit)
    if status != "all":
        query = query.where(o.status == status)
    if channel:
        query = query.where(o.channel == channel)
    if playbook:
        query = query.where(o.playbook_id == playbook)
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    if show_personal_data and rows:
        common.record_unmasking(store, "outbox", messages=len(rows), format=fmt)
    store.dispose()
    for r in rows:
        if not show_personal_data:
            r["recipient"] = deadletters.mask_recipient(r["channel"], r["recipient"])
    if fmt == "json":
        tz = common.settings().timezone
        click.echo(json.dumps([_jsonable(r, tz) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no messages")
    for r in rows:
        error = f"  last error: {r['last_error']}" if r["last_error"] else ""
        click.echo(
            f"#{r['id']} {r['status']:<9} {r['channel']:<7} {r['recipient']:<24} "
            f"{r['playbook_id']} attempts {r['attempts']} key {r['idempotency_key'][:12]}…{error}"
        )


outbox_command.name = "outbox"


@outbox_command.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="every dead letter (status failed)")
@click.option("--as-of", "as_of", default=None, help="due from this moment (default: now)")
@click.pass_context
def outbox_retry(
    ctx: click.Context, ids: tuple[int, ...], all_failed: bool, as_of: str | None
) -> None:
    """Queue dead-letter or cancelled messages again (attempts start over)."""
    if not ids and not all_failed:
        raise UsageError("name message ids or give --failed", code="E0503")
    store = _open(ctx.obj["db_url"])
    n = deadletters.retry(store, ids, utc_naive(_moment(as_of)), all_failed=all_failed)
    store.dispose()
    click.echo(f"{n} message(s) queued again")


@outbox_command.command("cancel")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.pass_context
def outbox_cancel(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Cancel queued messages or dead letters (they are never sent)."""
    store = _open(ctx.obj["db_url"])
    n = deadletters.cancel(store, ids)
    store.dispose()
    click.echo(f"{n} message(s) cancelled")


# --- tasks ---------------------------------------------------------------------------------

TASK_COLUMNS = (
    "id",
    "due_local",
    "priority",
    "assignee_id",
    "assignee_role",
    "queue",
    "kind",
    "customer_id",
    "title",
    "status",
    "outcome",
    "checklist",
    "playbook_id",
    "escalation_level",
)


@click.group(invoke_without_command=True)
@common.db_option
@click.option("--manager", default=None, help="only this assignee's tasks (manager id)")
@click.option("--queue", default=None, help="only this team queue's tasks")
@click.option("--due", type=click.Choice(["today", "week", "overdue"]), default=None)
@click.option("--status", type=click.Choice(["open", "done", "all"]), default="open")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text")
@click.option("--as-of", "as_of", default=None, help=common.AS_OF_HELP)
@click.option(
    "--show-personal-data", is_flag=True, help="do not mask customer names, phones, e-mails"
)
@click.pass_context
def tasks_command(
    ctx: click.Context,
    db_url: str | None,
    manager: str | None,
    queue: str | None,
    due: Any,
    status: Any,
    fmt: str,
    as_of: str | None,
    show_personal_data: bool,
) -> None:
    """The managers' task list, soonest due first; `tasks done ID --outcome …` closes one."""
    ctx.ensure_object(dict)
    ctx.obj.update(db_url=db_url, as_of=as_of)
    if ctx.invoked_subcommand is not None:
        return
    store = _open(db_url)
    query = TaskQuery(manager=manager, queue=queue, due=due, status=status)
    rows = list_tasks(store, query, _moment(as_of))
    if not show_personal_data:
        mask_personal(store, rows)
    elif rows:
        common.record_unmasking(store, "tasks", tasks=len(rows), format=fmt)
    store.dispose()
    if fmt == "json":
        click.echo(
            json.dumps(
                [{k: r[k] for k in TASK_COLUMNS} for r in rows], ensure_ascii=False, indent=2
            )
        )
    elif fmt == "csv":
        out = io.StringIO()
        writer = SafeWriter(out)
        writer.writerow(TASK_COLUMNS)
        for r in rows:
            writer.writerow(
                ["; ".join(r[k]) if k == "checklist" and r[k] else r[k] for k in TASK_COLUMNS]
            )
        click.echo(out.getvalue(), nl=False)
    else:
        if not rows:
            click.echo("no tasks")
        for r in rows:
            who = r["assignee_id"] or f"queue:{r['queue']}"
            late = " OVERDUE" if r["overdue"] else ""
            click.echo(
                f"#{r['id']} due {r['due_local']}{late} [{r['priority']}] {who} {r['kind']} "
                f"{r['customer_id']} {r['title']}"
            )
            for step in r["checklist"] or []:
                click.echo(f"      □ {step}")


tasks_command.name = "tasks"


@tasks_command.command("done")
@click.argument("task_id", type=int)
@click.option(
    "--outcome",
    required=True,
    help="; ".join(f"{k.replace('_', '-')} {v}" for k, v in OUTCOMES.items()),
)
@click.option("--note", default=None, help="free text for the record")
@click.pass_context
def tasks_done(ctx: click.Context, task_id: int, outcome: str, note: str | None) -> None:
    """Close a task with its outcome (reached, no-answer, declined, …)."""
    store = _open(ctx.obj["db_url"])
    closed = complete(store, task_id, outcome, note, _moment(ctx.obj["as_of"]))
    store.dispose()
    extra = f"; {closed} escalation(s) resolved with it" if closed else ""
    click.echo(f"task {task_id} done{extra}")


@tasks_command.command("escalate")
@click.pass_context
def tasks_escalate(ctx: click.Context) -> None:
    """Escalate overdue tasks one level up (the daemon does this on its own)."""
    settings = common.settings()
    store = _open(ctx.obj["db_url"])
    created = escalate_overdue(
        store,
        load_policy(settings.policy_path).tasks,
        _moment(ctx.obj["as_of"]),
        tz=settings.timezone,
        calendar=work_calendar(settings.calendar_dir),
    )
    store.dispose()
    click.echo(f"{created} escalation task(s) created")


def _jsonable(row: dict[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    """The engine keeps naive UTC; an export says the bank's local time with its offset."""
    return {
        k: v.replace(tzinfo=dt.UTC).astimezone(tz).isoformat() if isinstance(v, dt.datetime) else v
        for k, v in row.items()
    }
