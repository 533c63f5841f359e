"""``audit`` (the audit log, filtered) and ``audit verify`` (is the chain intact?)."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from typing import Any

import click

from engine.commands import common
from engine.core.clock import local_to_utc, parse_day
from engine.core.errors import EXIT_FAILURE
from engine.core.spreadsheet import SafeWriter
from engine.store import audit as audit_log

COLUMNS = ("id", "at", "actor", "action", "subject", "customer_id", "detail")


@click.group("audit", invoke_without_command=True)
@common.db_option
@click.option("--since", default=None, help="only entries from this local day on (YYYY-MM-DD)")
@click.option("--actor", default=None, help="only this account (or cli:USER)")
@click.option("--action", default=None, help="only actions starting with this (login, playbook.)")
@click.option("--customer", "customer_id", default=None, help="only entries about this customer")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text")
@click.pass_context
def audit(
    ctx: click.Context,
    db_url: str | None,
    since: str | None,
    actor: str | None,
    action: str | None,
    customer_id: str | None,
    limit: int,
    fmt: str,
) -> None:
    """The audit log, newest first: logins, saves, role changes, unmasking, tasks closed."""
    if ctx.invoked_subcommand is not None:
        return
    settings = common.settings()
    store = common.store(settings, db_url)
    try:
        audit_log.ensure_tables(store)
        start = None
        if since:
            day = parse_day(since, "--since")
            start = local_to_utc(dt.datetime.combine(day, dt.time()), settings.timezone)
        rows = audit_log.entries(
            store, since=start, actor=actor, action=action, customer_id=customer_id, limit=limit
        )
    finally:
        store.dispose()
    tz = settings.timezone
    shown = [_shown(r, tz) for r in rows]
    if fmt == "json":
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = SafeWriter(out)
        writer.writerow(COLUMNS)
        for r in shown:
            writer.writerow([r[c] for c in COLUMNS])
        click.echo(out.getvalue(), nl=False)
    else:
        for r in shown:
            who = f" customer {r['customer_id']}" if r["customer_id"] else ""
            click.echo(
                f"{r['id']:>6} {r['at']} {r['actor']:<16} {r['action']:<22} "
                f"{r['subject']}{who} {r['detail']}".rstrip()
            )
        if not shown:
            click.echo("no entries")


@audit.command("verify")
@common.db_option
def verify(db_url: str | None) -> None:
    """Recompute the chain of hashes; exit 1 and say where when any entry was changed,
    removed or reordered."""
    store = common.store(common.settings(), db_url)
    try:
        audit_log.ensure_tables(store)
        found = audit_log.verify(store)
    finally:
        store.dispose()
    if found.intact:
        click.echo(f"audit log intact: {found.entries:,} entries")
        return
    for problem in found.problems:
        click.echo(f"error[E0620]: {problem}", err=True)
    click.echo(f"audit log NOT intact: {len(found.problems)} problem(s)", err=True)
    sys.exit(EXIT_FAILURE)


def _shown(row: dict[str, Any], tz: Any) -> dict[str, Any]:
    local = row["at"].replace(tzinfo=dt.UTC).astimezone(tz)
    return {**row, "at": local.isoformat(timespec="seconds"), "detail": row["detail"]}
