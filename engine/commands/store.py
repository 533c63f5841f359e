"""Store commands: ``demo-data``, ``init-db`` and ``stats``."""

from __future__ import annotations

import json

import click
from sqlalchemy import Table, func, select

from engine.commands import common
from engine.core.clock import utc_naive
from engine.demo.generator import generate
from engine.store.db import (
    create_all,
    create_engine_tables,
    create_governance_tables,
    mark_demo_store,
    require_tables,
)
from engine.store.models import ENGINE_TABLES, action_ledger, outbox, runs, tasks
from engine.store.retention import load_retention, purge


@click.command("demo-data")
@common.db_option
@click.option("--customers", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--as-of", "as_of", default=None, help="anchor date of the history (default: today)")
def demo_data(db_url: str | None, customers: int, seed: int, as_of: str | None) -> None:
    """(Re)create the demo store: realistic customers with their history."""

    settings = common.settings()
    moment, _ = common.parse_as_of(as_of, settings)
    store = common.store(settings, db_url, create=True)
    counts = generate(store, customers=customers, seed=seed, as_of=moment.date(), progress=True)
    mark_demo_store(store)  # demo-outcomes may simulate into this store, and no other
    store.dispose()
    summary = ", ".join(f"{table} {n:,}" for table, n in counts.items())
    click.echo(f"demo store ready ({db_url or settings.default_db_url}): {summary}")


@click.command("init-db")
@common.db_option
@click.option("--engine-only", is_flag=True, help="only the engine's own tables")
def init_db(db_url: str | None, engine_only: bool) -> None:
    """Create missing tables (all, or only the engine's own over a bank's store)."""
    settings = common.settings()
    store = common.store(settings, db_url, create=True)
    try:
        # a store made by an earlier release is upgraded in place, an empty one created at
        # the newest revision, a current one left as it is; anything else refused
        done = (create_engine_tables if engine_only else create_all)(store)
        create_governance_tables(store)  # a bank's store too: versions and approvals are ours
    finally:
        store.dispose()
    click.echo(done)


@click.command()
@common.db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def stats(db_url: str | None, fmt: str) -> None:
    """Counts of runs, ledger rows, outbox messages by status and tasks by status."""
    settings = common.settings()
    store = common.store(settings, db_url)
    require_tables(store, ENGINE_TABLES)
    with store.connect() as conn:

        def by_status(table: Table) -> dict[str, int]:
            query = select(table.c.status, func.count()).group_by(table.c.status)
            return {str(status): int(n) for status, n in conn.execute(query)}

        def count(table: Table) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        outbox_status, task_status = by_status(outbox), by_status(tasks)
        message_counts = {s: outbox_status.get(s, 0) for s in ("pending", "sent", "failed")}
        task_counts = {s: task_status.get(s, 0) for s in ("open", "done")}
        data = {
            "runs": count(runs),
            "ledger": count(action_ledger),
            "outbox": message_counts,
            "tasks": task_counts,
        }
    store.dispose()
    if fmt == "json":
        click.echo(json.dumps(data))
    else:
        o, t = message_counts, task_counts
        click.echo(
            f"runs {data['runs']}, ledger {data['ledger']}, outbox pending {o['pending']} "
            f"sent {o['sent']} failed {o['failed']}, tasks open {t['open']} done {t['done']}"
        )


@click.command("purge")
@common.db_option
@click.option("--as-of", "as_of", default=None, help="purge as if it were then (default now)")
@click.option("--dry-run", is_flag=True, help="count what would be blanked; change nothing")
def purge_command(db_url: str | None, as_of: str | None, dry_run: bool) -> None:
    """Blank personal content older than config/retention.yaml allows (message texts and
    addresses, closed tasks' texts, event fields), keeping the facts; one audit entry."""
    settings = common.settings()
    rules = load_retention(settings.retention_path)
    moment, _ = common.parse_as_of(as_of, settings)
    store = common.store(settings, db_url)
    try:
        require_tables(store, ENGINE_TABLES)
        done = purge(store, rules, utc_naive(moment), f"cli:{common.os_user()}", dry_run=dry_run)
    finally:
        store.dispose()
    click.echo(("would blank " if dry_run else "blanked ") + str(done))
