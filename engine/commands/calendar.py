"""``calendar show YEAR`` and ``calendar check``: what the holiday calendar says, from where.

The operator's yearly task is to type the State Council's notice into
``config/calendar/CN-YYYY.yaml``; ``check`` reads every file with located errors, and ``show``
prints the year line by line so it can be compared with the notice before it goes live.
"""

from __future__ import annotations

import datetime as dt
import json

import click

from engine.commands import common
from engine.core.errors import EngineError
from engine.reports.calendar import coverage, load, render_coverage, render_year, year_document


@click.group("calendar")
def calendar_command() -> None:
    """The holiday calendar: official days off and make-up workdays (节假日与调休)."""


@calendar_command.command("show")
@click.argument("year", type=click.IntRange(1900, 2100))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def show(year: int, fmt: str) -> None:
    """Each day off and make-up workday of YEAR, and where it came from: the bank's file,
    the chinese-calendar package, or an estimate."""
    calendar, errors = load(common.settings().calendar_dir)
    doc = year_document(calendar, year)
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        click.echo(render_year(doc))
    for exc in errors:  # the year shown is without the rejected file: say so
        click.echo(exc.render(), err=True)
    if errors:
        raise SystemExit(1)


@calendar_command.command("check")
def check() -> None:
    """Read every calendar file (located errors), and say which years are official."""
    settings = common.settings()
    calendar, errors = load(settings.calendar_dir)
    today = dt.datetime.now(settings.timezone).date()
    for line in render_coverage(coverage(calendar, errors, today)):
        click.echo(line)
    if errors:
        first = errors[0]
        raise EngineError(
            f"{len(errors)} calendar file(s) rejected",
            code=first.code,
            where=first.where,
            hint="fix the file; until then a running daemon keeps its last good calendar",
        )
