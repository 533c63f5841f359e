"""``report`` (effect measurement per playbook) and ``demo-outcomes`` (a simulated month)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from engine.commands import common
from engine.core.clock import parse_day
from engine.core.dictionary import load_dictionary
from engine.core.errors import UsageError
from engine.demo.outcomes import default_start, simulate
from engine.playbook.model import Playbook
from engine.playbook.validation import Catalog, Validator
from engine.reports.effect import effect_report
from engine.reports.effect_html import render_effect_html
from engine.reports.effect_text import render_text
from engine.store.db import require_tables
from engine.store.introspect import require_deployment
from engine.store.models import ENGINE_TABLES


def _day(text: str | None, option: str) -> dt.date | None:
    return None if text is None else parse_day(text, option)


def _playbooks(found: Catalog, wanted: tuple[str, ...]) -> list[Playbook]:
    """Every valid playbook (disabled ones too: their past runs still count), or the named."""
    if not wanted:
        common.select_playbooks(found, ())  # reports invalid files on stderr
        return list(found.playbooks)
    return common.select_playbooks(found, wanted)


@click.command("report")
@common.db_option
@click.option("--since", default=None, help="first local day of the period, YYYY-MM-DD")
@click.option("--until", default=None, help="last local day of the period (default: as-of)")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="the moment goals are observed at, ISO 8601 (default: now; a date alone: its end); "
    "windows ending later are pending",
)
@click.option("--playbook", "wanted", multiple=True, help="playbook id (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text")
@click.option("--out", type=click.Path(path_type=Path), help="write the report to a file")
def report(
    db_url: str | None,
    since: str | None,
    until: str | None,
    as_of: str | None,
    wanted: tuple[str, ...],
    fmt: str,
    out: Path | None,
) -> None:
    """Effect per playbook: acted, delivered, suppressed, tasks, and goal lift vs holdout."""
    settings = common.settings()
    first, last = _day(since, "--since"), _day(until, "--until")
    moment, whole_day = common.parse_as_of(as_of, settings)
    if whole_day:  # a date alone: goals observed at the end of that day
        moment = moment.replace(hour=23, minute=59, second=59)
    last = last or moment.date()
    if first is not None and first > last:
        raise UsageError(
            f"--since {first} is after --until {last}",
            code="E0311",
            hint="the period runs from --since to --until, both included",
        )
    dictionary = load_dictionary(settings.dictionary_path)
    playbooks = _playbooks(
        Validator(settings, dictionary).validate_paths([settings.playbooks_dir]), wanted
    )
    store = common.store(settings, db_url)
    try:
        require_deployment(store, dictionary)
        require_tables(store, ENGINE_TABLES)
        doc = effect_report(
            store,
            dictionary,
            playbooks,
            as_of=moment,
            since=first,
            until=last,
            tz=settings.timezone,
        )
    finally:
        store.dispose()
    if fmt == "json":
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "html":
        text = render_effect_html(doc)
    else:
        text = render_text(doc)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"report written to {out}")
    else:
        click.echo(text, nl=False)


@click.command("demo-outcomes")
@common.db_option
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.option(
    "--from",
    "start",
    default=None,
    help="first day (default: the day after the store's latest transaction)",
)
@click.option("--seed", default=7, show_default=True, type=int)
def demo_outcomes(db_url: str | None, days: int, start: str | None, seed: int) -> None:
    """SIMULATION on a demo store: run the pack day by day, simulate customers' outcomes."""

    settings = common.settings()
    first = _day(start, "--from")
    dictionary = load_dictionary(settings.dictionary_path)
    validator = Validator(settings, dictionary)
    playbooks = common.select_playbooks(validator.validate_paths([settings.playbooks_dir]), ())
    store = common.store(settings, db_url)
    try:
        require_deployment(store, dictionary)
        require_tables(store, ENGINE_TABLES)
        first = first or default_start(store)
        sim = simulate(
            store,
            settings,
            dictionary,
            validator.renderer,
            playbooks,
            start=first,
            days=days,
            seed=seed,
        )
    finally:
        store.dispose()
    summary = sim.summary()
    recorded = ", ".join(f"{k} {v:,}" for k, v in sorted(sim.recorded.items())) or "none"
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(sim.outcomes.items())) or "none"
    closed = ", ".join(f"{k} {v:,}" for k, v in sorted(sim.tasks_done.items())) or "none"
    click.echo(
        f"SIMULATED {days} days from {first} (seed {seed}): {sim.runs} real runs; recorded "
        f"{recorded}; simulated outcomes {outcomes}; tasks closed {closed}"
    )
    if sim.not_simulated:
        click.echo(f"no outcomes simulated for: {', '.join(sim.not_simulated)}")
    if summary["report_as_of"]:
        click.echo(
            f"then: runner.py report --since {first} --as-of {summary['report_as_of']}T23:59"
        )
