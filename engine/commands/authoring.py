"""Authoring commands: ``validate``, ``schema`` and ``test`` (playbook unit tests)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from engine.authoring.playbook_tests import CaseResult, discover_tests, junit_xml, run_test_file
from engine.commands import common
from engine.conditions.bounds import rests_on_workdays
from engine.core.diagnostics import format_json, format_text
from engine.core.dictionary import load_dictionary
from engine.core.errors import EXIT_FAILURE
from engine.core.i18n import LANGS, choose_lang, localize, t
from engine.core.settings import Settings
from engine.playbook.schema import render_schema
from engine.playbook.validation import Catalog, Validator
from engine.reports.calendar import load as load_calendar


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--lang",
    type=click.Choice(LANGS),
    default=None,
    help="messages in English or Chinese (default: CARE_LANG, else the locale: zh… → zh)",
)
def validate(paths: tuple[Path, ...], fmt: str, lang: str | None) -> None:
    """Check playbooks (files or folders; default playbooks/). Exit 1 when any is invalid."""
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    catalog = common.catalog(settings, dictionary, list(paths))
    chosen = choose_lang(lang)
    if fmt == "json":
        click.echo(format_json(catalog.diagnostics, chosen))
    else:
        if catalog.diagnostics:
            click.echo(format_text(catalog.diagnostics, catalog.sources, chosen))
            click.echo()
        summary = t(
            "summary.validate",
            files=catalog.files,
            valid=len(catalog.playbooks),
            errors=len(catalog.errors),
            warnings=len(catalog.warnings),
        )
        click.echo(localize(summary, chosen))
    calendar_ok = _calendar_notes(settings, catalog, fmt)
    if catalog.errors or not calendar_ok:
        sys.exit(EXIT_FAILURE)


LOOK_AHEAD = dt.timedelta(days=90)


def _calendar_notes(settings: Settings, catalog: Catalog, fmt: str) -> bool:
    """The holiday files checked with the playbooks (False when one is rejected), and a note
    when workday-only playbooks will meet guessed days within :data:`LOOK_AHEAD`."""
    calendar, errors = load_calendar(settings.calendar_dir)
    for exc in errors:
        click.echo(exc.render(), err=True)
    bound = [p.id for p in catalog.playbooks if rests_on_workdays(p.audience)]
    today = dt.datetime.now(settings.timezone).date()
    guesses = calendar.guesses_between(today, today + LOOK_AHEAD)
    if bound and guesses:
        years = sorted({d.year for d in guesses})
        files = ", ".join(f"config/calendar/CN-{y}.yaml" for y in years)
        click.echo(
            f"note: {len(bound)} playbook(s) decide by workdays ({', '.join(bound)}), and"
            f" from {guesses[0].isoformat()} the holiday calendar only estimates days near"
            f" holidays (no official schedule for {', '.join(map(str, years))}): type the"
            f" notice into {files} (docs/calendar.md). 节假日安排尚未录入,工作日为估算。",
            err=fmt == "json",
        )
    return not errors


@click.command()
@click.option("--check", is_flag=True, help="exit 1 if the shipped schema is out of date")
def schema(check: bool) -> None:
    """Write schemas/playbook.schema.json from the data dictionary and action types."""
    settings = common.settings()
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


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-k", "name_filter", default=None, help="only tests whose name contains this")
@click.option("--junit", type=click.Path(path_type=Path), help="also write JUnit XML here")
def test_command(paths: tuple[Path, ...], name_filter: str | None, junit: Path | None) -> None:
    """Run playbook unit tests (*.test.yaml; default tests/playbooks/). Exit 1 on failure."""
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    validator = Validator(settings, dictionary)
    found = validator.validate_paths([settings.playbooks_dir])
    playbooks = {p.id: p for p in found.playbooks}
    files = discover_tests(list(paths) or [settings.root / "tests" / "playbooks"])
    results: list[CaseResult] = []
    for path in files:
        results += run_test_file(
            path, playbooks, settings, dictionary, validator.renderer, name_filter
        )
    for r in results:
        mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {_shown(r.file)} :: {r.name}")
        for failure in r.failures:
            click.echo("      " + failure.replace("\n", "\n      "))
    failed = sum(not r.passed for r in results)
    click.echo(f"\n{len(results) - failed} passed, {failed} failed")
    if junit:
        junit.write_text(junit_xml(results), encoding="utf-8")
    if failed or not results:
        if not results:
            click.echo("no playbook tests found", err=True)
        sys.exit(EXIT_FAILURE)


def _shown(path: str) -> str:
    """A path relative to the current folder when it is inside it (shorter, still clickable)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path
