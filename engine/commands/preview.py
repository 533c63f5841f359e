"""``dry-run`` and ``run``: one execution path, two sinks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import click

from engine.commands import common
from engine.conditions.clock import Clock
from engine.dictionary import load_dictionary
from engine.execution import Executor, Outcome, slot_on
from engine.playbook import Playbook
from engine.reports.dryrun import report_json, report_text
from engine.sinks import RecordingSink, StoreSink
from engine.store.db import require_tables
from engine.store.models import CUSTOMER_TABLES, ENGINE_TABLES
from engine.validation import Validator


def execute_selected(
    db_url: str | None,
    as_of: str | None,
    wanted: Sequence[str],
    *,
    dry_run: bool,
    mask: bool,
) -> tuple[dt.datetime, list[Outcome], list[Playbook]]:
    settings = common.settings()
    moment, whole_day = common.parse_as_of(as_of, settings)
    dictionary = load_dictionary(settings.dictionary_path)
    validator = Validator(settings, dictionary)
    playbooks = common.select_playbooks(validator.validate_paths([settings.playbooks_dir]), wanted)
    store = common.store(settings, db_url)
    # dry-run reads the ledger too: it shows who is already done or cooling down
    require_tables(store, CUSTOMER_TABLES + ENGINE_TABLES)
    executor = Executor(store, settings, dictionary, validator.renderer)
    outcomes: list[Outcome] = []
    skipped: list[Playbook] = []
    for playbook in playbooks:
        at = slot_on(playbook, moment.date(), settings.timezone) if whole_day else moment
        if at is None:
            skipped.append(playbook)
            continue
        clock = Clock.at(at, settings.timezone)
        sink = RecordingSink(mask=mask) if dry_run else StoreSink(store)
        outcomes.append(executor.execute(playbook, clock, sink, keep_details=dry_run))
    store.dispose()
    return moment, outcomes, skipped


@click.command("dry-run")
@common.db_option
@click.option("--as-of", "as_of", default=None, help=common.AS_OF_HELP)
@click.option("--playbook", "playbooks", multiple=True, help="playbook id (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--out", type=click.Path(path_type=Path), help="write the report to a file")
@click.option("--show-sql", is_flag=True, help="print each audience's SQL")
@click.option("--show-personal-data", is_flag=True, help="do not mask names, phones and e-mails")
def dry_run(
    db_url: str | None,
    as_of: str | None,
    playbooks: tuple[str, ...],
    fmt: str,
    out: Path | None,
    show_sql: bool,
    show_personal_data: bool,
) -> None:
    """Preview every action that would fire, and why others would not. Writes nothing."""
    moment, outcomes, skipped = execute_selected(
        db_url, as_of, playbooks, dry_run=True, mask=not show_personal_data
    )
    if fmt == "json":
        text = json.dumps(report_json(moment, outcomes, skipped), ensure_ascii=False, indent=2)
    else:
        text = report_text(moment, outcomes, skipped)
        if show_personal_data:
            text = text.replace("(personal data masked)", "(PERSONAL DATA SHOWN)")
    if show_sql:
        sql = "\n\n".join(f"-- {o.playbook.id}\n{o.sql}" for o in outcomes)
        click.echo(sql + "\n", err=fmt == "json" and out is None)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + ("\n" if fmt == "json" else ""), encoding="utf-8")
        click.echo(f"report written to {out}")
    else:
        click.echo(text)


@click.command()
@common.db_option
@click.option("--as-of", "as_of", default=None, help=common.AS_OF_HELP)
@click.option("--playbook", "playbooks", multiple=True, help="playbook id (repeatable)")
def run(db_url: str | None, as_of: str | None, playbooks: tuple[str, ...]) -> None:
    """Execute once: write ledger, outbox and tasks. A rerun in the same window adds nothing."""
    _moment, outcomes, skipped = execute_selected(
        db_url, as_of, playbooks, dry_run=False, mask=False
    )
    for o in outcomes:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(o.effects.items())) or "nothing"
        held = ", ".join(f"{r} {n}" for r, n in sorted(o.suppressed.items()))
        click.echo(
            f"{o.playbook.id}: run {o.run_id} window {o.window}: matched {o.matched_count}, "
            f"acted {o.acted} ({kinds})" + (f"; suppressed: {held}" if held else "")
        )
    for p in skipped:
        click.echo(f"{p.id}: not scheduled on this day")
