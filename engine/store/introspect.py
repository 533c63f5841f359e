"""Check a data dictionary against the live database it is meant to read.

A deployment over the bank's own tables is only as good as its mapping: a renamed column or
a view that lost a join turns into SQL errors in the middle of a run. These checks run the
dictionary against the database before anything else does and name the field, its line in
the dictionary file and what is wrong: a missing table, a missing column, a column whose
type does not fit the field, an SQL expression that fails or gives values of the wrong type,
or enum values the dictionary does not know.

Tables are looked up as the connection sees them (PostgreSQL's ``search_path``), so the bank's
tables may live in one schema and the engine's own in another.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    Numeric,
    String,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.types import TypeEngine

from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.diagnostics import Diagnostic
from engine.core.dictionary import ChangeSeries, DataDictionary, Field
from engine.core.errors import StoreError, first_line
from engine.core.yamlfile import Document, load_file
from engine.store.mapping import DiagnosticsError
from engine.store.models import ENGINE_TABLES, consents

SAMPLE_ROWS = 500
# Column type categories each dictionary type accepts.
ACCEPTS: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "enum": frozenset({"string"}),
    "integer": frozenset({"integer"}),
    "number": frozenset({"integer", "number"}),
    "money": frozenset({"integer", "number"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"datetime"}),
    "boolean": frozenset({"boolean"}),
}


WHERE_ACCEPTS: dict[str, frozenset[str]] = {
    "string": frozenset({"text"}),
    "integer": frozenset({"number"}),
    "number": frozenset({"number"}),
    "boolean": frozenset({"true/false"}),
    "date": frozenset({"text"}),
    "datetime": frozenset({"text"}),
}
"""Per column kind, the kinds of ``where`` value a grouped lookup may compare it with."""


def _where_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    return "number" if isinstance(value, int | float) else "text"


def type_category(sql_type: TypeEngine[Any]) -> str | None:
    """A database column type reduced to the dictionary's vocabulary, or None if unknown."""
    if isinstance(sql_type, Boolean):
        return "boolean"
    if isinstance(sql_type, Integer):
        return "integer"
    if isinstance(sql_type, Numeric):
        return "number"
    if isinstance(sql_type, DateTime):
        return "datetime"
    if isinstance(sql_type, Date):
        return "date"
    if isinstance(sql_type, String):
        return "string"
    return None


def table_columns(conn: Connection, name: str) -> dict[str, TypeEngine[Any]] | None:
    """Columns of a table or view as the connection sees it, or None when there is none."""
    inspector = inspect(conn)
    if not inspector.has_table(name):
        return None
    return {str(c["name"]): c["type"] for c in inspector.get_columns(name)}


def unique_key(conn: Connection, name: str, column: str) -> bool:
    """Whether ``column`` alone is the table's primary key or has a unique constraint or
    index: what the database itself guarantees, not what today's rows happen to show."""
    inspector = inspect(conn)
    if inspector.get_pk_constraint(name).get("constrained_columns") == [column]:
        return True
    uniques = [u.get("column_names") for u in inspector.get_unique_constraints(name)]
    indexes = [i.get("column_names") for i in inspector.get_indexes(name) if i.get("unique")]
    return [column] in uniques or [column] in indexes


def missing_tables(conn: Connection, names: Iterable[str]) -> list[str]:
    inspector = inspect(conn)
    return [n for n in names if not inspector.has_table(n)]


def value_fits(kind: str, value: Any) -> bool:
    """Whether a value read through the field's SQL type is what the field promises."""
    if kind in ("string", "enum"):
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("number", "money"):
        return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if kind == "date":
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if kind == "datetime":
        return isinstance(value, dt.datetime)
    if kind == "boolean":
        return isinstance(value, bool)
    return True


class DictionaryCheck:
    """Every problem of one dictionary against one database, located in the dictionary file."""

    def __init__(self, dictionary: DataDictionary) -> None:
        self.dictionary = dictionary
        self.document: Document | None = None
        if dictionary.source is not None and dictionary.source.is_file():
            self.document = load_file(dictionary.source)
        self.path = str(dictionary.source or "data dictionary")
        self.diagnostics: list[Diagnostic] = []
        # a fixed clock: the compiler needs one, and no check depends on the date
        self.clock = Clock(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))

    @property
    def sources(self) -> dict[str, str]:
        return {self.path: self.document.text} if self.document else {}

    def report(self, code: str, message: str, where: Sequence[str], hint: str | None) -> None:
        line, col = 1, 1
        if self.document is not None:
            mark = self.document.mark(tuple(where))
            line, col = mark.line, mark.col
        self.diagnostics.append(Diagnostic(code, message, self.path, line, col, (), hint))

    def run(self, conn: Connection, *, engine_tables: bool = True) -> list[Diagnostic]:
        d = self.dictionary
        if self._fields(conn, d, ()) and engine_tables:
            self._engine_tables(conn)
        for name, rel in d.related.items():
            self._fields(conn, rel.scope, ("related", name))
        for name, series in d.changes.items():
            self._history(conn, name, series)
        return self.diagnostics

    def _fields(self, conn: Connection, d: DataDictionary, prefix: tuple[str, ...]) -> bool:
        """Check one table (the customers', or a related one) and its fields."""
        where = [*prefix, "table"] if prefix else ["customer_table"]
        what = f"{'related table' if prefix else 'customer table'} '{d.customer_table}'"
        columns = table_columns(conn, d.customer_table)
        if columns is None:
            self.report(
                "E1061",
                f"{what} does not exist in the database",
                where,
                "check the table name, the database URL and (PostgreSQL) its search_path",
            )
            return False
        if d.key not in columns:
            self.report(
                "E1062",
                f"key column '{d.key}' is not a column of {what}",
                [*prefix, "key"] if prefix else ["key"],
                _did_you_mean(d.key, columns),
            )
            return False
        inner = (*prefix, "columns") if prefix else ("fields",)
        for f in d:
            if f.column is not None:
                self._column(conn, d, f, columns, inner)
            elif f.sql is not None:
                self._sql(conn, d, f, inner)
            elif f.tags is not None:
                self._tags(conn, f, inner)
            elif f.lookup is not None:
                self._lookup(conn, d, f, columns, inner)
        return True

    def _history(self, conn: Connection, name: str, series: ChangeSeries) -> None:
        where = ["changes", name, "history"]
        columns = table_columns(conn, series.table)
        if columns is None:
            message = f"change '{name}': history table '{series.table}' does not exist"
            self.report("E1061", message, where, None)
            return
        wanted: list[tuple[str, set[str] | None]] = [
            (series.link, None),
            (series.at, {"date", "datetime"}),
            (series.value, {"integer", "number"}),
        ]
        for part, kinds in wanted:
            if part not in columns:
                message = f"change '{name}': '{series.table}' has no column '{part}'"
                self.report("E1062", message, where, _did_you_mean(part, columns))
                continue
            found = type_category(columns[part])
            if kinds is not None and found is not None and found not in kinds:
                message = (
                    f"change '{name}': '{series.table}.{part}' is {columns[part]}, "
                    f"expected {' or '.join(sorted(kinds))}"
                )
                self.report("E1063", message, where, None)

    def _label(self, f: Field) -> str:
        return f"field '{f.key}' ({f.label})"

    def _column(
        self,
        conn: Connection,
        d: DataDictionary,
        f: Field,
        columns: dict[str, TypeEngine[Any]],
        inner: tuple[str, ...],
    ) -> None:
        where = [*inner, f.key, "column"]
        assert f.column is not None
        if f.column not in columns:
            self.report(
                "E1062",
                f"{self._label(f)}: '{d.customer_table}' has no column '{f.column}'",
                where,
                _did_you_mean(f.column, columns),
            )
            return
        found = type_category(columns[f.column])
        if found is not None and found not in ACCEPTS[f.type]:
            self.report(
                "E1063",
                f"{self._label(f)} is declared {f.type}, but column "
                f"'{d.customer_table}.{f.column}' is {columns[f.column]} ({found})",
                where,
                "change the field's type, or map it to a column or SQL expression of that type",
            )
        elif f.type == "enum":
            self._sample(conn, d, f, inner, where)

    def _sql(self, conn: Connection, d: DataDictionary, f: Field, inner: tuple[str, ...]) -> None:
        self._sample(conn, d, f, inner, [*inner, f.key, "sql"])

    def _sample(
        self,
        conn: Connection,
        d: DataDictionary,
        f: Field,
        inner: tuple[str, ...],
        where: list[str],
    ) -> None:
        """Read the field over the first rows: the SQL must run and give the promised type."""
        customer = d.customer_table
        compiler = SqlCompiler(d, self.clock)
        expr = compiler.field(f).label("v")
        # the expression sees the first rows under the table's own name, so its correlated
        # subqueries and lookup joins work unchanged and a big table is not scanned whole
        key: ColumnElement[Any] = literal_column(f"{customer}.{d.key}")
        first = (
            (select(literal_column("*")).select_from(compiler.customers).order_by(key))
            .limit(SAMPLE_ROWS)
            .subquery(customer)
        )
        try:
            query = compiler.joined(select(expr).select_from(first), first)
            values = [row[0] for row in conn.execute(query)]
        except (DBAPIError, StatementError, ValueError, TypeError) as exc:
            conn.rollback()  # PostgreSQL: a failed statement spoils the transaction
            self.report(
                "E1064",
                f"{self._label(f)}: its SQL fails on this database: {first_line(exc)}",
                where,
                f"the expression must run on SQLite and PostgreSQL, with the row as `{customer}`",
            )
            return
        self._values(f, values, where, inner)

    def _values(
        self, f: Field, values: list[Any], where: list[str], inner: tuple[str, ...]
    ) -> None:
        wrong = [v for v in values if v is not None and not value_fits(f.type, v)]
        if wrong:
            self.report(
                "E1063",
                f"{self._label(f)} is declared {f.type}, but its SQL gives "
                f"{type(wrong[0]).__name__} values such as {wrong[0]!r}",
                where,
                "cast the expression, or change the field's type",
            )
            return
        if f.type == "enum":
            unknown = sorted({str(v) for v in values if v is not None} - set(f.values))
            if unknown:
                self.report(
                    "E1065",
                    f"{self._label(f)}: the database holds values the dictionary does not list: "
                    f"{', '.join(unknown[:8])}",
                    [*inner, f.key, "values"],
                    "add them to 'values' with their Chinese label",
                )

    def _tags(self, conn: Connection, f: Field, inner: tuple[str, ...]) -> None:
        assert f.tags is not None
        where = [*inner, f.key, "tags"]
        columns = table_columns(conn, f.tags.table)
        if columns is None:
            self.report(
                "E1061",
                f"{self._label(f)}: tag table '{f.tags.table}' does not exist",
                where,
                None,
            )
            return
        for part in (f.tags.key, f.tags.column):
            if part not in columns:
                self.report(
                    "E1062",
                    f"{self._label(f)}: '{f.tags.table}' has no column '{part}'",
                    where,
                    _did_you_mean(part, columns),
                )

    def _lookup(
        self,
        conn: Connection,
        d: DataDictionary,
        f: Field,
        columns: dict[str, TypeEngine[Any]],
        inner: tuple[str, ...],
    ) -> None:
        """The lookup's table and columns exist, and its key is unique there: a key two rows
        share would count a customer once per row and give a field two values (E0533). A
        grouped lookup (``pick``) joins one row per key by construction; its ``where`` columns
        must exist (E0537) and take its values (E0538) instead."""
        lookup = f.lookup
        assert lookup is not None
        where = [*inner, f.key, "lookup"]
        if lookup.by not in columns:
            self.report(
                "E1062",
                f"{self._label(f)}: '{d.customer_table}' has no column '{lookup.by}'",
                [*where, "by"],
                _did_you_mean(lookup.by, columns),
            )
            return
        theirs = table_columns(conn, lookup.table)
        if theirs is None:
            message = f"{self._label(f)}: lookup table '{lookup.table}' does not exist"
            self.report("E1061", message, [*where, "table"], None)
            return
        for part in ("key", "column"):
            name = getattr(lookup, part)
            if name not in theirs:
                self.report(
                    "E1062",
                    f"{self._label(f)}: '{lookup.table}' has no column '{name}'",
                    [*where, part],
                    _did_you_mean(name, theirs),
                )
                return
        if lookup.grouped:
            if self._lookup_where(f, theirs, where):
                self._sample(conn, d, f, inner, where)
            return
        if not unique_key(conn, lookup.table, lookup.key):
            self.report(
                "E0533",
                f"{self._label(f)}: '{lookup.table}.{lookup.key}' is not unique (no primary key "
                "or unique constraint or index on it alone), so a customer could match two rows",
                [*where, "key"],
                "declare the column the table's primary key or give it a unique index; a "
                "value chosen among the key's rows is a grouped lookup (pick: min or max)",
            )
            return
        self._sample(conn, d, f, inner, where)

    def _lookup_where(self, f: Field, theirs: dict[str, TypeEngine[Any]], where: list[str]) -> bool:
        """A grouped lookup's ``where``: each column is its table's, and each value of a kind
        the column holds (PostgreSQL will not compare a text column with a number)."""
        lookup = f.lookup
        assert lookup is not None
        fine = True
        for name, value in lookup.where:
            if name not in theirs:
                self.report(
                    "E0537",
                    f"{self._label(f)}: lookup 'where' names '{name}', which '{lookup.table}' "
                    "does not have",
                    [*where, "where", name],
                    _did_you_mean(name, theirs),
                )
                fine = False
                continue
            kind = type_category(theirs[name])
            given = _where_kind(value)
            if kind is not None and given not in WHERE_ACCEPTS.get(kind, frozenset({given})):
                self.report(
                    "E0538",
                    f"{self._label(f)}: lookup 'where' compares '{lookup.table}.{name}' "
                    f"({theirs[name]}) with {value!r}, a {given}",
                    [*where, "where", name],
                    "write the value as the column holds it: quote a code kept as text "
                    "(role: '01'), leave numbers and true/false bare",
                )
                fine = False
        return fine

    def _engine_tables(self, conn: Connection) -> None:
        needed = [consents.name, *(t.name for t in ENGINE_TABLES)]
        missing = missing_tables(conn, needed)
        if missing:
            self.report(
                "E1066",
                f"the engine's own table(s) {', '.join(missing)} are missing",
                ["customer_table"],
                "create them with `python runner.py init-db --engine-only`; a deployment "
                "whose source has no consents declares an empty consents table in its mapping",
            )


def check_dictionary(
    engine: Engine, dictionary: DataDictionary, *, engine_tables: bool = True
) -> DictionaryCheck:
    """Run every check; the result holds the diagnostics (empty when all is well)."""
    check = DictionaryCheck(dictionary)
    try:
        with engine.connect() as conn:
            check.run(conn, engine_tables=engine_tables)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot inspect the database: {first_line(exc)}", code="E1060") from exc
    return check


def require_deployment(engine: Engine, dictionary: DataDictionary) -> None:
    """Before a run: the tables the engine reads and writes exist and every field answers.

    One cheap probe (every field, no rows) covers the normal case; only when it fails are the
    fields checked one by one, to name the culprit instead of showing a database error.
    """
    needed = [dictionary.customer_table, consents.name, *(t.name for t in ENGINE_TABLES)]
    needed += [f.tags.table for f in dictionary if f.tags is not None]
    needed += [r.table for r in dictionary.related.values()]
    needed += [c.table for c in dictionary.changes.values()]
    with engine.connect() as conn:
        missing = missing_tables(conn, dict.fromkeys(needed))
    if missing:
        raise StoreError(
            f"the store has no table(s) {', '.join(missing)}",
            code="E0104",
            hint="create the demo store with `python runner.py demo-data`; over your own tables "
            "run `python runner.py init-db --engine-only` and `python runner.py check-mapping`",
        )
    compiler = SqlCompiler(dictionary, Clock(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    probe = compiler.joined(
        select(*(compiler.field(f).label(f.key) for f in dictionary if f.tags is None))
        .select_from(compiler.customers)
        .limit(0)
    )
    try:
        with engine.connect() as conn:
            conn.execute(probe).all()
    except DBAPIError:
        check = check_dictionary(engine, dictionary, engine_tables=False)
        if check.diagnostics:
            raise DiagnosticsError(
                check.diagnostics,
                "the data dictionary does not fit the database",
                sources=check.sources,
                code="E1060",
                hint="run `python runner.py check-mapping` after fixing it",
            ) from None
        raise


def _did_you_mean(name: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"did you mean '{close[0]}'?" if close else None
