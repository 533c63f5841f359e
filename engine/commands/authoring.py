"""Authoring commands: ``validate`` and ``schema``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.commands import common
from engine.diagnostics import format_json, format_text
from engine.dictionary import load_dictionary
from engine.errors import EXIT_FAILURE
from engine.schema import render_schema


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def validate(paths: tuple[Path, ...], fmt: str) -> None:
    """Check playbooks (files or folders; default playbooks/). Exit 1 when any is invalid."""
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    catalog = common.catalog(settings, dictionary, list(paths))
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
