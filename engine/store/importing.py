"""CSV import: files described by an import mapping, streamed into tables, all or nothing.

When a bank can only hand over exports, ``python runner.py import`` loads them. The import is
checked before anything is written (the mapping against the database, every file's header),
then every file is streamed in one transaction: a bad row (wrong field count, a bad date, a
byte that is not in the file's encoding, a duplicate key, an unknown code) is reported with
its file, line and column, and by default nothing at all is written. With ``skip_bad`` the bad
rows go to a rejects file instead and the good ones are kept.

One transaction for the whole import, rather than one per file, keeps the tables consistent
with each other (accounts never refer to clients that were rolled back), and each file is
all-or-nothing as well. Tables the import had to create are dropped again when it fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.types import TypeEngine

from engine.core.diagnostics import Diagnostic
from engine.core.errors import UsageError, first_line
from engine.core.spreadsheet import SafeWriter
from engine.store.csvread import Rows, Target, check_header, open_file, read_records
from engine.store.introspect import table_columns, type_category
from engine.store.mapping import (
    ColumnSpec,
    DiagnosticsError,
    ImportMapping,
    TableSpec,
    ValueProblem,
    convert,
)

BATCH_SIZE = 2000
_SQL_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "string": String,
    "integer": Integer,
    "number": Float,
    "money": lambda: Numeric(18, 2, asdecimal=False),
    "date": Date,
    "datetime": DateTime,
    "boolean": Boolean,
}
_CATEGORY = {"money": "number"}


class ImportFailed(DiagnosticsError):
    """The import found problems; nothing was written (see ``diagnostics``)."""


@dataclass
class TableResult:
    table: str
    file: str | None
    rows: int = 0
    rejected: int = 0
    seconds: float = 0.0


@dataclass
class ImportReport:
    tables: list[TableResult] = field(default_factory=list)
    rejects: Path | None = None

    @property
    def rejected(self) -> int:
        return sum(t.rejected for t in self.tables)


def import_files(
    engine: Engine,
    mapping: ImportMapping,
    *,
    source_dir: Path | None = None,
    only: Sequence[str] = (),
    skip_bad: Path | None = None,
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Load the mapping's files into their tables; raise :class:`ImportFailed` on problems."""
    specs = _select(mapping, only)
    base = source_dir or mapping.source_dir or mapping.path.parent
    problems: list[Diagnostic] = []
    with engine.connect() as conn:
        targets = [_prepare(conn, mapping, spec, base, problems) for spec in specs]
    ready = [t for t in targets if t is not None]
    for target in ready:
        if target.path is not None:
            check_header(target, problems)
    if problems:
        raise ImportFailed(
            problems,
            f"{len(problems)} problem(s) before import; nothing was written",
            sources={str(mapping.path): mapping.text},
            code="E1010",
        )
    created = [t.table for t in ready if t.created]
    with engine.begin() as conn:
        for t in created:
            t.create(conn)
    try:
        report = _load(engine, ready, mapping, skip_bad, progress, batch_size)
    except BaseException:
        with contextlib.suppress(SQLAlchemyError), engine.begin() as conn:
            for t in reversed(created):
                t.drop(conn)
        raise
    return report


def _select(mapping: ImportMapping, only: Sequence[str]) -> list[TableSpec]:
    names = [t.name for t in mapping.tables]
    unknown = [o for o in only if o not in names]
    if unknown:
        raise UsageError(
            f"the mapping has no table {', '.join(repr(u) for u in unknown)}",
            code="E1011",
            hint=f"tables in {mapping.path.name}: {', '.join(names)}",
        )
    return [t for t in mapping.tables if not only or t.name in only]


# --- before writing: the mapping against the database, the files' headers ------------------


def _prepare(
    conn: Connection,
    mapping: ImportMapping,
    spec: TableSpec,
    base: Path,
    problems: list[Diagnostic],
) -> Target | None:
    where = str(mapping.path)

    def report(line: int, message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic("E1012", message, where, line, 1, (), hint))

    existing = table_columns(conn, spec.name)
    types: dict[str, str] = {}
    ok = True
    if existing is None:
        for c in spec.columns:
            types[c.name] = c.type or "string"
        table = _new_table(spec, types)
        key = spec.key
    else:
        table = Table(spec.name, MetaData(), autoload_with=conn)
        for c in spec.columns:
            if c.name not in existing:
                report(c.line, f"table '{spec.name}' has no column '{c.name}'", _near(c, existing))
                ok = False
                continue
            found = type_category(existing[c.name])
            ctype = c.type or found or "string"
            if found is not None and _CATEGORY.get(ctype, ctype) not in _fits(found):
                report(
                    c.line,
                    f"column '{spec.name}.{c.name}' is {existing[c.name]}; "
                    f"the mapping reads it as {ctype}",
                    "change the column's type in the mapping",
                )
                ok = False
            types[c.name] = ctype
        filled = {c.name for c in spec.columns}
        for col in table.columns:
            needs = not col.nullable and col.server_default is None and col.default is None
            # a single integer primary key numbers itself
            auto = (
                col.primary_key
                and isinstance(col.type, Integer)
                and len(table.primary_key.columns) == 1
            )
            if needs and not auto and col.name not in filled:
                report(
                    spec.line,
                    f"table '{spec.name}' needs column '{col.name}' (NOT NULL, no default), "
                    "but the mapping does not fill it",
                    "add it under columns, from a CSV column or as a fixed value",
                )
                ok = False
        key = spec.key or tuple(c.name for c in table.primary_key if c.name in filled)
    for c in spec.columns:
        if (
            c.source is None
            and isinstance(c.constant, str)
            and types.get(c.name, "string") != "string"
        ):
            try:
                convert(c, types[c.name], c.constant)
            except ValueProblem as exc:
                report(c.line, f"column '{spec.name}.{c.name}': the fixed value {exc}")
                ok = False
    path = None
    if spec.file is not None:
        path = base / spec.file
        if not path.is_file():
            report(spec.line, f"table '{spec.name}': file not found: {path}", "check --source")
            ok = False
    if not ok:
        return None
    return Target(spec, table, types, key, existing is None, path)


def _fits(category: str) -> set[str]:
    return {"number": {"number", "integer"}}.get(category, {category})


def _near(c: ColumnSpec, columns: dict[str, Any]) -> str | None:
    import difflib

    close = difflib.get_close_matches(c.name, list(columns), n=1)
    return f"did you mean '{close[0]}'?" if close else None


def _new_table(spec: TableSpec, types: dict[str, str]) -> Table:
    metadata = MetaData()
    columns = [
        Column(
            c.name,
            _SQL_TYPES[types[c.name]](),
            primary_key=c.name in spec.key,
            autoincrement=False,
        )
        for c in spec.columns
    ]
    table = Table(spec.name, metadata, *columns)
    for i, ix in enumerate(spec.indexes):
        Index(f"ix_{spec.name}_{i + 1}", *(table.c[c] for c in ix))
    return table


# --- writing ---------------------------------------------------------------------------------


class _WriteFailed(Exception):
    """A statement failed: the transaction is lost; carries the located problem."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _load(
    engine: Engine,
    targets: list[Target],
    mapping: ImportMapping,
    skip_bad: Path | None,
    progress: bool,
    batch_size: int,
) -> ImportReport:
    report = ImportReport(rejects=skip_bad)
    problems: list[Diagnostic] = []
    rejects: list[tuple[str, int, int, str, str]] = []
    seen: dict[str, dict[tuple[Any, ...], tuple[str, int]]] = {}
    skipping = skip_bad is not None
    with _progress(progress) as bar, engine.connect() as conn:
        tx = conn.begin()
        try:
            for t in reversed(targets):  # children before parents, for foreign keys
                if t.spec.mode == "replace":
                    _execute(conn, t, None, None)
            writing = True
            derived = [t for t in targets if t.spec.sql is not None]
            for t in [t for t in targets if t.spec.sql is None] + derived:
                if t is (derived[0] if derived else None) and (not problems or skipping):
                    _views(conn, mapping)  # derived tables may select from the views
                started = time.perf_counter()
                result = TableResult(t.spec.name, t.spec.file if t.spec.sql is None else "(SQL)")
                if t.spec.sql is not None and (not problems or skipping):
                    result.rows = _derive(conn, t, mapping)
                elif t.path is not None:
                    # after a bad file the others are still read, to report every problem
                    rows = _read(conn if writing else None, t, bar, batch_size, skipping, seen)
                    result.rows, result.rejected = rows.written, rows.bad
                    problems += rows.problems
                    rejects += [(str(t.path), *r) for r in rows.rejected]
                    writing = writing and (skipping or not rows.bad)
                result.seconds = time.perf_counter() - started
                report.tables.append(result)
            if not derived and (not problems or skipping):
                _views(conn, mapping)
        except _WriteFailed as exc:
            tx.rollback()
            raise ImportFailed(
                [*problems, exc.diagnostic],
                "the database refused the import; nothing was written",
                code="E1021",
            ) from None
        except BaseException:
            tx.rollback()
            raise
        if problems and not skipping:
            tx.rollback()
            raise ImportFailed(
                problems,
                f"{sum(r.rejected for r in report.tables)} bad row(s); nothing was written "
                "(the whole import is one transaction)",
                code="E1020",
                hint="fix the rows, or keep the good ones with --skip-bad FILE",
            )
        tx.commit()
        # fresh statistics: PostgreSQL plans the dictionary's correlated subqueries badly
        # over tables it believes empty, until autovacuum gets round to them
        with conn.begin():
            for t in targets:
                conn.execute(text(f"ANALYZE {t.spec.name}"))
    if skip_bad is not None:
        _write_rejects(skip_bad, rejects)
    return report


def _derive(conn: Connection, t: Target, mapping: ImportMapping) -> int:
    """Fill a derived table from its SELECT; its columns in declared order."""
    names = ", ".join(c.name for c in t.spec.columns)
    try:
        result = conn.execute(text(f"INSERT INTO {t.spec.name} ({names}) {t.spec.sql}"))
    except DBAPIError as exc:
        raise _WriteFailed(
            Diagnostic(
                "E1023",
                f"derived table '{t.spec.name}' cannot be filled: {first_line(exc)}",
                str(mapping.path),
                t.spec.line,
                1,
                hint="its SELECT must give the declared columns, in order, in portable SQL",
            )
        ) from exc
    return int(result.rowcount)


def _views(conn: Connection, mapping: ImportMapping) -> None:
    """(Re)create the mapping's views, in the import's transaction, dependents dropped first."""
    for view in reversed(mapping.views):
        conn.execute(text(f"DROP VIEW IF EXISTS {view.name}"))
    for view in mapping.views:
        try:
            conn.execute(text(f"CREATE VIEW {view.name} AS {view.sql}"))
        except DBAPIError as exc:
            raise _WriteFailed(
                Diagnostic(
                    "E1023",
                    f"view '{view.name}' cannot be created: {first_line(exc)}",
                    str(mapping.path),
                    view.line,
                    1,
                    hint="views must be portable SQL over the imported tables",
                )
            ) from exc


def _read(
    conn: Connection | None,
    t: Target,
    bar: Callable[[str, int], Callable[[int], None]],
    batch_size: int,
    skipping: bool,
    seen: dict[str, dict[tuple[Any, ...], tuple[str, int]]],
) -> Rows:
    """Stream one file; write its rows in batches unless ``conn`` is None or a row was bad."""
    assert t.path is not None
    advance = bar(f"{t.spec.name} ← {t.path.name}", t.path.stat().st_size)
    with open_file(t.path) as fh:
        records = read_records(fh, t.spec, advance)
        header = next(records)
        rows = Rows(
            t,
            [f.strip() for f in header.fields],
            seen.setdefault(t.spec.name, {}),
            keep_rejected=skipping,
        )
        batch: list[dict[str, Any]] = []
        first_line = 0
        for record in records:
            if not record.fields:
                continue  # a blank line
            row = rows.row(record)
            if row is None or conn is None or (rows.bad and not skipping):
                continue
            if not batch:
                first_line = record.line
            batch.append(row)
            if len(batch) >= batch_size:
                _execute(conn, t, batch, first_line)
                rows.written += len(batch)
                batch = []
        if batch and conn is not None and (skipping or not rows.bad):
            _execute(conn, t, batch, first_line)
            rows.written += len(batch)
    return rows


def _execute(
    conn: Connection, t: Target, batch: list[dict[str, Any]] | None, line: int | None
) -> None:
    """Empty the table (``batch`` None) or insert a batch; a refusal becomes a located problem."""
    try:
        if batch is None:
            conn.execute(t.table.delete())
        elif conn.dialect.name == "postgresql":
            _copy(conn, t, batch)
        else:
            conn.execute(t.table.insert(), batch)
    except (DBAPIError, psycopg.Error) as exc:
        if batch is None:
            message = f"cannot empty table '{t.spec.name}': {first_line(exc)}"
            hint = "rows of another table refer to it; import that table too, or mode: append"
        else:
            message = f"table '{t.spec.name}' refused rows from line {line} on: {first_line(exc)}"
            hint = "with mode: append, a key may already be in the table"
        where = str(t.path) if t.path is not None else t.spec.name
        raise _WriteFailed(Diagnostic("E1021", message, where, line or 1, 1, (), hint)) from exc


def _copy(conn: Connection, t: Target, batch: list[dict[str, Any]]) -> None:
    """PostgreSQL ``COPY … FROM STDIN``: several times faster than INSERTs for big files.
    Runs on the import's own connection, so it is part of its one transaction."""
    names = [c.name for c in t.spec.columns]
    dbapi: Any = conn.connection.dbapi_connection
    quoted = ", ".join(f'"{n}"' for n in names)
    with dbapi.cursor() as cursor, cursor.copy(f'COPY "{t.spec.name}" ({quoted}) FROM STDIN') as cp:
        for row in batch:
            cp.write_row([row[n] for n in names])


def _write_rejects(path: Path, rejects: list[tuple[str, int, int, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = SafeWriter(fh)  # a rejected record is whatever the export held: never a formula
        out.writerow(["file", "line", "column", "reason", "record"])
        for file, line, col, reason, raw in rejects:
            record = raw.rstrip("\r\n").encode("utf-8", "surrogateescape")
            out.writerow([file, line, col, reason, record.decode("utf-8", "backslashreplace")])


@contextlib.contextmanager
def _progress(show: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yield ``start(label, total_bytes) -> advance(n)``: a rich bar on stderr, or no-ops."""
    if not show:
        yield lambda _label, _total: lambda _n: None
        return
    import rich.progress as rp
    from rich.console import Console

    columns: list[rp.ProgressColumn] = [
        rp.TextColumn("{task.description}"),
        rp.BarColumn(),
        rp.DownloadColumn(),
        rp.TimeRemainingColumn(),
    ]
    with rp.Progress(*columns, console=Console(stderr=True), transient=False) as bar:

        def start(label: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(label, total=total)
            return lambda n: bar.advance(task, n)

        yield start
