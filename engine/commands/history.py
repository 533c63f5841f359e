"""``history CUSTOMER_ID``: every decision the engine took about one customer."""

from __future__ import annotations

import dataclasses
import json

import click

from engine.commands import common
from engine.reports.history import history, history_text
from engine.store.db import require_tables
from engine.store.models import ENGINE_TABLES


@click.command("history")
@click.argument("customer_id")
@common.db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--show-personal-data",
    is_flag=True,
    help="do not mask names, phones and e-mails (recorded in the audit log)",
)
def history_command(
    customer_id: str, db_url: str | None, fmt: str, show_personal_data: bool
) -> None:
    """Every action, suppression, task and holdout of one customer, oldest first, each with
    the playbook version that decided it, in local time; and who looked at their data."""
    settings = common.settings()
    store = common.store(settings, db_url)
    try:
        require_tables(store, ENGINE_TABLES)
        if show_personal_data:  # an export of personal data: recorded before it is shown
            common.record_unmasking(store, "history", customer_id=customer_id)
        found = history(store, customer_id, settings.timezone, mask=not show_personal_data)
    finally:
        store.dispose()
    if fmt == "json":
        click.echo(json.dumps(dataclasses.asdict(found), ensure_ascii=False, indent=2))
    else:
        click.echo(history_text(found), nl=False)
