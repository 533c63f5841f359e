"""Command line: thin commands over the engine. The one place errors become exit codes.

Exit codes: 0 success, 1 failure (invalid playbook, unreachable store, …), 2 usage error.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine, Table, func, select

from engine import __version__
from engine.conditions.clock import Clock
from engine.config import Settings
from engine.diagnostics import format_json, format_text
from engine.dictionary import DataDictionary, load_dictionary
from engine.errors import EXIT_FAILURE, EXIT_OK, EngineError, UsageError
from engine.execution import Executor, Outcome, slot_on
from engine.playbook import Playbook
from engine.reports.dryrun import report_json, report_text
from engine.schema import render_schema
from engine.sinks import RecordingSink, StoreSink
from engine.store.db import create_all, create_engine_tables, open_store, require_tables
from engine.store.models import CUSTOMER_TABLES, ENGINE_TABLES, action_ledger, outbox, runs, tasks
from engine.validation import Catalog, Validator

F = TypeVar("F", bound=Callable[..., Any])

DB_HELP = "SQLAlchemy URL of the store (default: sqlite:///data/engine.db); env CARE_DB"
AS_OF_HELP = (
    "the moment to act as of, ISO 8601 (default: now). A date alone previews that day: "
    "each playbook at its scheduled time on it."
)


def db_option(fn: F) -> F:
    return click.option("--db", "db_url", envvar="CARE_DB", default=None, help=DB_HELP)(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="care-playbooks")
def cli() -> None:
    """Customer-care playbook engine for retail banks (客户维护剧本引擎)."""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; an :class:`EngineError` becomes one clear line and its exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except EngineError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(EXIT_OK)


# --- helpers ----------------------------------------------------------------------------------


def _settings() -> Settings:
    return Settings()


def _store(settings: Settings, db_url: str | None) -> Engine:
    return open_store(db_url or settings.default_db_url)


def _parse_as_of(text: str | None, settings: Settings) -> tuple[dt.datetime, bool]:
    """(aware moment, whether only a date was given)."""
    tz = settings.timezone
    if text is None:
        return dt.datetime.now(tz).replace(microsecond=0), False
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(), tz), True
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            f"--as-of {text!r} is not an ISO 8601 date or time",
            code="E0301",
            hint="for example 2026-11-23 or 2026-11-23T09:00+08:00",
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(tz), False


def _catalog(settings: Settings, dictionary: DataDictionary, paths: Sequence[Path]) -> Catalog:
    return Validator(settings, dictionary).validate_paths(paths or [settings.playbooks_dir])


def _select(catalog: Catalog, wanted: Sequence[str]) -> list[Playbook]:
    if catalog.errors:
        sys.stderr.write(format_text(catalog.errors, catalog.sources) + "\n")
        names = sorted({d.file for d in catalog.errors})
        sys.stderr.write(
            f"\n{len(catalog.errors)} error(s) in {', '.join(names)}; "
            "those playbooks are left out\n\n"
        )
    by_id = {p.id: p for p in catalog.playbooks}
    if not wanted:
        return [p for p in catalog.playbooks if p.enabled]
    unknown = [w for w in wanted if w not in by_id]
    if unknown:
        raise UsageError(
            f"no valid playbook with id {', '.join(repr(u) for u in unknown)}",
            code="E0302",
            hint=f"known: {', '.join(sorted(by_id)) or 'none'}",
        )
    return [by_id[w] for w in wanted]


def _execute(
    db_url: str | None,
    as_of: str | None,
    wanted: Sequence[str],
    *,
    dry_run: bool,
    mask: bool,
) -> tuple[dt.datetime, list[Outcome], list[Playbook]]:
    settings = _settings()
    moment, whole_day = _parse_as_of(as_of, settings)
    dictionary = load_dictionary(settings.dictionary_path)
    catalog = _catalog(settings, dictionary, [])
    playbooks = _select(catalog, wanted)
    store = _store(settings, db_url)
    # dry-run reads the ledger too: it shows who is already done or cooling down
    require_tables(store, CUSTOMER_TABLES + ENGINE_TABLES)
    executor = Executor(store, settings, dictionary, Validator(settings, dictionary).renderer)
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


# --- commands ---------------------------------------------------------------------------------


@cli.command("demo-data")
@db_option
@click.option("--customers", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--as-of", "as_of", default=None, help="anchor date of the history (default: today)")
def demo_data(db_url: str | None, customers: int, seed: int, as_of: str | None) -> None:
    """(Re)create the demo store: realistic customers with their history."""
    from engine.store.demo import generate

    settings = _settings()
    moment, _ = _parse_as_of(as_of, settings)
    store = _store(settings, db_url)
    counts = generate(store, customers=customers, seed=seed, as_of=moment.date(), progress=True)
    store.dispose()
    summary = ", ".join(f"{table} {n:,}" for table, n in counts.items())
    click.echo(f"demo store ready ({db_url or settings.default_db_url}): {summary}")


@cli.command("init-db")
@db_option
@click.option("--engine-only", is_flag=True, help="only the engine's own tables")
def init_db(db_url: str | None, engine_only: bool) -> None:
    """Create missing tables (all, or only the engine's own over a bank's store)."""
    settings = _settings()
    store = _store(settings, db_url)
    (create_engine_tables if engine_only else create_all)(store)
    store.dispose()
    click.echo("tables ready")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def validate(paths: tuple[Path, ...], fmt: str) -> None:
    """Check playbooks (files or folders; default playbooks/). Exit 1 when any is invalid."""
    settings = _settings()
    dictionary = load_dictionary(settings.dictionary_path)
    catalog = _catalog(settings, dictionary, list(paths))
    if fmt == "json":
        click.echo(format_json(catalog.diagnostics))
    else:
        if catalog.diagnostics:
            click.echo(format_text(catalog.diagnostics, catalog.sources))
            click.echo()
        click.echo(
            f"{catalog.files} file(s): {len(catalog.playbooks)} valid, "
            f"{len(catalog.errors)} error(s), {len(catalog.warnings)} warning(s)"
        )
    if catalog.errors:
        sys.exit(EXIT_FAILURE)


@cli.command("dry-run")
@db_option
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
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
    moment, outcomes, skipped = _execute(
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


@cli.command()
@db_option
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
@click.option("--playbook", "playbooks", multiple=True, help="playbook id (repeatable)")
def run(db_url: str | None, as_of: str | None, playbooks: tuple[str, ...]) -> None:
    """Execute once: write ledger, outbox and tasks. A rerun in the same window adds nothing."""
    _moment, outcomes, skipped = _execute(db_url, as_of, playbooks, dry_run=False, mask=False)
    for o in outcomes:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(o.effects.items())) or "nothing"
        held = ", ".join(f"{r} {n}" for r, n in sorted(o.suppressed.items()))
        click.echo(
            f"{o.playbook.id}: run {o.run_id} window {o.window}: matched {o.matched_count}, "
            f"acted {o.acted} ({kinds})" + (f"; suppressed: {held}" if held else "")
        )
    for p in skipped:
        click.echo(f"{p.id}: not scheduled on this day")


@cli.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def stats(db_url: str | None, fmt: str) -> None:
    """Counts of runs, ledger rows, outbox messages by status and tasks by status."""
    settings = _settings()
    store = _store(settings, db_url)
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


@cli.command()
@click.option("--check", is_flag=True, help="exit 1 if the shipped schema is out of date")
def schema(check: bool) -> None:
    """Write schemas/playbook.schema.json from the data dictionary and action types."""
    settings = _settings()
    text = render_schema(load_dictionary(settings.dictionary_path))
    target = settings.schemas_dir / "playbook.schema.json"
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            click.echo(f"{target} is out of date; run `python runner.py schema`", err=True)
            sys.exit(EXIT_FAILURE)
        click.echo(f"{target} is up to date")
        return
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}")
