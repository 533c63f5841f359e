"""``history CUSTOMER_ID``: every decision the engine took about one customer; ``held RUN``:
whom one run held back, and why."""

from __future__ import annotations

import dataclasses
import json

import click

from engine.commands import common
from engine.core.errors import EngineError
from engine.reports.history import history, history_text, run_holds_of, run_holds_text
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


@click.command("held")
@click.argument("run_id", type=int)
@common.db_option
@click.option("--reason", help="only this reason, e.g. max_per_run or no_consent_sms")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def held_command(run_id: int, db_url: str | None, reason: str | None, fmt: str) -> None:
    """The customers one run held back, by reason (ids only: no personal data). A run's
    own limit (max_per_run) is stored as compact lists; this lists them on demand."""
    settings = common.settings()
    store = common.store(settings, db_url)
    try:
        require_tables(store, ENGINE_TABLES)
        found = run_holds_of(store, run_id, reason)
    finally:
        store.dispose()
    if found is None:
        raise EngineError(
            f"there is no run {run_id} in this store",
            code="E0314",
            hint="`runner.py run` prints each run's id; check --db",
        )
    if fmt == "json":
        click.echo(json.dumps(dataclasses.asdict(found), ensure_ascii=False, indent=2))
    else:
        click.echo(run_holds_text(found), nl=False)
