"""Commands for connecting the bank's own data: ``import`` and ``check-mapping``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import func, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.commands import common
from engine.core.dictionary import load_dictionary
from engine.store.importing import import_files
from engine.store.introspect import check_dictionary
from engine.store.mapping import DiagnosticsError, load_mapping

MAPPING_FILE = "import_mapping.yaml"


@click.command("import")
@common.db_option
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"import mapping file (default: schemas/{MAPPING_FILE})",
)
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="folder holding the CSV files (default: the mapping's source_dir)",
)
@click.option("--table", "tables", multiple=True, help="import only this table (repeatable)")
@click.option(
    "--skip-bad",
    type=click.Path(dir_okay=False, path_type=Path),
    help="keep the good rows and write the rejected ones, with their reasons, to this CSV file",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="progress bars on stderr (default: when stderr is a terminal)",
)
def import_(
    db_url: str | None,
    mapping_path: Path | None,
    source: Path | None,
    tables: tuple[str, ...],
    skip_bad: Path | None,
    progress: bool | None,
) -> None:
    """Load CSV exports into tables as an import mapping describes. All or nothing."""
    settings = common.settings()
    mapping = load_mapping(mapping_path or settings.schemas_dir / MAPPING_FILE)
    store = common.store(settings, db_url, create=True)  # a bank's store begins with its import
    try:
        report = import_files(
            store,
            mapping,
            source_dir=source,
            only=tables,
            skip_bad=skip_bad,
            progress=sys.stderr.isatty() if progress is None else progress,
        )
    finally:
        store.dispose()
    for t in report.tables:
        origin = t.file or "(no file: created empty)"
        rejected = f", {t.rejected:,} rejected" if t.rejected else ""
        click.echo(f"{t.table:<16} ← {origin}: {t.rows:,} rows{rejected} ({t.seconds:.1f} s)")
    if report.rejects is not None:
        click.echo(f"{report.rejected:,} rejected row(s) written to {report.rejects}")
    click.echo(f"imported into {_shown(db_url or settings.default_db_url)}")


@click.command("check-mapping")
@common.db_option
def check_mapping(db_url: str | None) -> None:
    """Check the data dictionary against the live database: tables, columns, types, SQL."""
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    store = common.store(settings, db_url)
    try:
        check = check_dictionary(store, dictionary)
        if check.diagnostics:
            raise DiagnosticsError(
                check.diagnostics,
                f"{len(check.diagnostics)} problem(s): the data dictionary does not fit "
                "the database",
                sources=check.sources,
                code="E1060",
            )
        with store.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(table(dictionary.customer_table))
            ).scalar_one()
    finally:
        store.dispose()
    click.echo(
        f"{settings.dictionary_path}: {len(dictionary.fields)} field(s) fit "
        f"{_shown(db_url or settings.default_db_url)} "
        f"({dictionary.customer_table}: {count:,} customers)"
    )


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # the URL was already opened; this only shapes a message
        return url
