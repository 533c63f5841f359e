"""Compile a condition tree to one SQLAlchemy Core expression over the customer table.

Field names come only from the data dictionary; every value is a bound parameter. Each test
compiles to a strictly true/false predicate (see :mod:`engine.conditions.ast` on empty
fields), so ``not`` needs no three-valued care. Related records become correlated
``EXISTS`` / scalar subqueries and calendar facts about the run date become ``true()`` or
``false()``, so an audience is always one query. A lookup field (a column of another table
by key) is read through that table's LEFT JOIN, which :meth:`SqlCompiler.joined` adds once
to a finished statement for every lookup it reads, however deep.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    extract,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FromClause, Join, TableClause
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeEngine

from engine.conditions.ast import (
    RELATIVE_OPERATORS,
    All,
    Anniversary,
    AnyOf,
    CalendarTest,
    Change,
    Condition,
    Not,
    Related,
    SegmentRef,
    Test,
)
from engine.conditions.bounds import calendar_holds, change_cutoff, relative_range
from engine.conditions.validity import bounded
from engine.core import calendar as cal
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary, Field, Lookup, sql_parameters

Ts = TypeVarTuple("Ts")

_SQL_TYPES: dict[str, TypeEngine[Any]] = {
    "string": String(),
    "enum": String(),
    "integer": Integer(),
    "number": Float(),
    "money": Float(),
    "date": Date(),
    "datetime": DateTime(),
    "boolean": Boolean(),
}


class text_position(FunctionElement[int]):
    """1-based position of a text inside another, 0 when absent; case-sensitive everywhere.

    ``LIKE`` would be case-insensitive for ASCII on SQLite but not on PostgreSQL, and the
    Python reference uses ``in``: ``instr`` / ``strpos`` mean the same thing on both.
    """

    type = Integer()
    name = "text_position"
    inherit_cache = True


@compiles(text_position)
def _instr(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(text_position, "postgresql")
def _strpos(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


class _checked(FunctionElement[Any]):
    """A stored value, or NULL when it is not well formed for its type.

    PostgreSQL's typed columns hold only well-formed values, so elsewhere this is the value
    itself. SQLite keeps whatever was written (``'not-a-date'`` in a date column, ``'abc'``
    in a number column): read raw, it would crash the row's conversion in Python and compare
    as text in SQL. Checked, it is empty, so every condition on it is false (except ne /
    not_in / is_null: true) in SQL and in the reference evaluator alike, and the run counts it.
    """

    inherit_cache = True

    def __init__(self, value: ColumnElement[Any], sql_type: TypeEngine[Any]) -> None:
        super().__init__(value)
        self.type = sql_type


class checked_date(_checked):
    name = "checked_date"
    inherit_cache = True


class checked_datetime(_checked):
    name = "checked_datetime"
    inherit_cache = True


class checked_number(_checked):
    name = "checked_number"
    inherit_cache = True


_CHECKED: dict[str, type[_checked]] = {
    "date": checked_date,
    "datetime": checked_datetime,
    "integer": checked_number,
    "number": checked_number,
    "money": checked_number,
}
CHECKED_TYPES = frozenset(_CHECKED)  # field types whose stored values are checked
_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"


@compiles(checked_date)
@compiles(checked_datetime)
@compiles(checked_number)
def _as_stored(element: _checked, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(checked_date, "sqlite")
def _sqlite_date(element: _checked, compiler: SQLCompiler, **kw: Any) -> str:
    v = compiler.process(element.clauses, **kw)
    # date() keeps '2026-02-30' as it is; adding 0 days normalises it, so it no longer matches
    return f"(CASE WHEN {v} GLOB '{_DATE_GLOB}' AND date({v}, '+0 days') = {v} THEN {v} END)"


@compiles(checked_datetime, "sqlite")
def _sqlite_datetime(element: _checked, compiler: SQLCompiler, **kw: Any) -> str:
    v = compiler.process(element.clauses, **kw)
    day = f"date({v}, '+0 days') = substr({v}, 1, 10)"
    return f"(CASE WHEN {v} GLOB '{_DATE_GLOB}*' AND {day} THEN {v} END)"


@compiles(checked_number, "sqlite")
def _sqlite_number(element: _checked, compiler: SQLCompiler, **kw: Any) -> str:
    v = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN typeof({v}) IN ('integer', 'real') THEN {v} END)"


class _prefilter(FunctionElement[Any]):
    """A test on the stored value placed before the test it is implied by, on one database
    only (TRUE on the others): see the two kinds below."""

    # untyped: a Boolean-typed element would be compared with 1 on SQLite (no native boolean)
    # and its column no longer searchable by an index
    type = NullType()
    inherit_cache = True


class sqlite_prefilter(_prefilter):
    """A test on the stored value that a checked test implies, placed before it on SQLite.

    A checked value is either NULL or the stored value itself, so ``checked(x) >= v`` implies
    ``x >= v``: testing the bare column first costs a comparison per row (or an index search)
    and skips the format check (a ``date()`` call, ten times dearer) for every row that
    cannot match. PostgreSQL checks nothing (typed columns), so there it is TRUE."""

    name = "sqlite_prefilter"
    inherit_cache = True


class postgresql_prefilter(_prefilter):
    """A cheap test on the stored value that a test of the bounded value implies, placed
    before it on PostgreSQL (TRUE elsewhere). A bounded value is NULL or the stored value
    itself, so a solar anniversary of it is one of the stored dates listed: comparing the date
    with that list rejects almost every row before ``EXTRACT`` takes the value apart (2.2× the
    hand-written query without it at 1M customers). SQLite has :class:`sqlite_prefilter`."""

    name = "postgresql_prefilter"
    inherit_cache = True


@compiles(sqlite_prefilter)
@compiles(postgresql_prefilter)
def _no_prefilter(element: _prefilter, compiler: SQLCompiler, **kw: Any) -> str:
    return "true"


@compiles(sqlite_prefilter, "sqlite")
@compiles(postgresql_prefilter, "postgresql")
def _prefilter_here(element: _prefilter, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


FIRST_LISTED_YEAR = 1900
"""The solar-anniversary list starts here; an earlier stored date is let through to the
exact test (the list would otherwise be two thousand dates long)."""


# operators whose checked test is false on an empty value, so the stored value must pass too
_IMPLIED = frozenset(
    {"eq", "in", "gt", "gte", "lt", "lte", "between", "in_past", *RELATIVE_OPERATORS}
)


def checked(value: ColumnElement[Any], kind: str) -> ColumnElement[Any]:
    """``value`` as read for a field of type ``kind``: NULL when malformed (see _checked)."""
    sql_type = _SQL_TYPES.get(kind, String())
    maker = _CHECKED.get(kind)
    return value if maker is None else maker(value, sql_type)


def untyped_in(column: ColumnElement[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN (values)`` with the values bound without a type: the database reads them
    as the column's own type, so text ids find an integer key, and its index still serves.
    ``column`` must be untyped too (a bare ``literal_column``), or the values take its type."""
    found = bindparam("ids", list(values), expanding=True, unique=True, type_=NullType())
    return column.in_(found)


class SqlCompiler:
    """Builds WHERE clauses and the audience SELECT for one dictionary and one clock."""

    def __init__(self, dictionary: DataDictionary, clock: Clock) -> None:
        self.dictionary = dictionary
        self.clock = clock
        self.customers: TableClause = table(dictionary.customer_table, column(dictionary.key))
        self.key = literal_column(f"{dictionary.customer_table}.{dictionary.key}", String())
        self._lookups = _lookup_aliases(dictionary)

    def at(self, clock: Clock) -> SqlCompiler:
        """This compiler for another moment, sharing its lookup joins: predicates compiled
        for several moments (a goal per cohort) go into one statement over one join."""
        other = copy.copy(self)
        other.clock = clock
        return other

    def lookup(self, lookup: Lookup) -> FromClause:
        """The aliased table a lookup reads, the same object for every field of that table
        and key, so they share one join."""
        return self._lookups[lookup.shared][0]

    def joined(self, query: Select[*Ts], base: FromClause | None = None) -> Select[*Ts]:
        """``query`` with a LEFT JOIN from ``base`` (the customer table) for every lookup it
        reads anywhere, subqueries included (they correlate to the join), and not joined yet.
        LEFT, so a customer whose key is empty or names no row stays, with an empty value.
        Call it on the finished statement: any field read afterwards is not joined."""
        wanted = {
            id(read)
            for el in visitors.iterate(query)
            if isinstance(read := getattr(el, "table", None), FromClause)
        }
        done = {id(a) for f in query.get_final_froms() for a in _joined_aliases(f)}
        for alias, on in self._lookups.values():
            if id(alias) in wanted and id(alias) not in done:
                query = query.outerjoin_from(self.customers if base is None else base, alias, on)
        return query

    def key_in(self, ids: Sequence[str]) -> ColumnElement[bool]:
        """The customers with these ids. The engine's ids are text and a bank's key column
        may be an integer (Berka's client_id): the values are bound untyped, so the database
        reads them as the column's own type (PostgreSQL will not compare an integer with a
        value declared text) and the key's index still serves the lookup."""
        column: ColumnElement[Any] = literal_column(
            f"{self.dictionary.customer_table}.{self.dictionary.key}"
        )
        return untyped_in(column, ids)

    def field(self, f: Field) -> ColumnElement[Any]:
        """The column or expression behind a scalar field, typed for binding; a malformed
        value in a column reads as empty (:func:`checked`), and so does one outside the
        field's ``valid:`` bounds (:func:`engine.conditions.validity.bounded`). ``sql:``
        expressions compute their values, so they are taken as they come (checking one would
        evaluate it twice)."""
        return bounded(self.stored(f), f, self.clock)

    def stored(self, f: Field) -> ColumnElement[Any]:
        """The well-formed stored value, bounds not applied (to count implausible rows)."""
        raw = self.raw_field(f)
        return checked(raw, f.type) if f.is_stored else raw

    def raw_field(self, f: Field) -> ColumnElement[Any]:
        """The stored value as it is, malformed or not (to count malformed rows)."""
        sql_type = _SQL_TYPES[f.type]
        if f.column is not None:
            return literal_column(f"{self.dictionary.customer_table}.{f.column}", sql_type)
        if f.lookup is not None:
            return type_coerce(self.lookup(f.lookup).c[f.lookup.column], sql_type)
        assert f.sql is not None
        return self.expression(f.sql, sql_type)

    def expression(self, sql: str, sql_type: TypeEngine[Any]) -> ColumnElement[Any]:
        """A dictionary field's SQL, with the run's clock bound where it names ``:as_of`` (the
        local calendar day) or ``:as_of_time`` (the local date and time): a field can read a
        dated table as of the run date, so a dry-run for a past day sees that day. The
        dictionary refused any other parameter at load (E0520)."""
        values: dict[str, tuple[Any, TypeEngine[Any]]] = {
            "as_of": (self.clock.today, Date()),
            "as_of_time": (self.clock.now, DateTime()),
        }
        binds = [bindparam(p, *values[p]) for p in sql_parameters(sql)]
        return type_coerce(text(sql).bindparams(*binds), sql_type)

    def where(self, condition: Condition, *, hoisted: bool = False) -> ColumnElement[bool]:
        """``hoisted``: the condition's prefilter is already in the enclosing ``all``."""
        if isinstance(condition, All):
            if not condition.items:
                return true()
            # every cheap test on a stored value first: each can rule a row out before any
            # checked test runs (SQLite evaluates the terms of an AND in order)
            cheap = [p for c in condition.items if (p := self.prefilter(c)) is not None]
            return and_(*cheap, *self._joined(condition.items, and_, hoisted=True))
        if isinstance(condition, AnyOf):
            return or_(*self._joined(condition.items, or_))
        if isinstance(condition, Not):
            return not_(self.where(condition.item))
        if isinstance(condition, SegmentRef):
            return self.where(condition.item)
        if isinstance(condition, CalendarTest):
            return true() if calendar_holds(condition, self.clock) else false()
        if isinstance(condition, Related):
            return self.related(condition)
        if isinstance(condition, Change):
            return self.change(condition)
        test = self.test(condition)
        implied = None if hoisted else self.prefilter(condition)
        return test if implied is None else and_(implied, test)

    def prefilter(self, condition: Condition) -> ColumnElement[bool] | None:
        """The test of a stored value that ``condition`` (a field test) implies, or None."""
        if not isinstance(condition, Test):
            return None
        f = self.dictionary.fields[condition.field]
        if f.column is None or f.type not in CHECKED_TYPES or condition.op not in _IMPLIED:
            return None
        raw = self.compare(self.raw_field(f), f.type, condition.op, condition.value)
        return sqlite_prefilter(raw)

    def _joined(
        self,
        items: Sequence[Condition],
        joined: Callable[..., ColumnElement[bool]],
        *,
        hoisted: bool = False,
    ) -> list[ColumnElement[bool]]:
        """The items of an ``all`` (``joined`` is ``and_``) or ``any`` (``or_``), changes of one
        series and cut-off compiled together into one history search."""
        return [
            self.changes(item, joined)
            if isinstance(item, tuple)
            else self.where(item, hoisted=hoisted)
            for item in _change_groups(items, self.clock)
        ]

    def test(self, t: Test) -> ColumnElement[bool]:
        f = self.dictionary.fields[t.field]
        if f.type == "tags":
            return self._tags(f, t)
        if t.op == "anniversary":
            return self.anniversary(f, t.value)
        return self.compare(self.field(f), f.type, t.op, t.value)

    def compare(self, col: ColumnElement[Any], kind: str, op: str, v: Any) -> ColumnElement[bool]:
        """``col <op> v`` for a value of field type ``kind``, false on an empty value except
        for ne / not_in / is_null: true."""
        present = col.is_not(None)
        if op == "is_null":
            return col.is_(None) if v else present
        if op == "eq":
            return and_(present, col == v)
        if op == "ne":
            return or_(col.is_(None), col != v)
        if op == "in":
            return and_(present, col.in_(v))
        if op == "not_in":
            return or_(col.is_(None), col.not_in(v))
        if op == "gt":
            return and_(present, col > v)
        if op == "gte":
            return and_(present, col >= v)
        if op == "lt":
            return and_(present, col < v)
        if op == "lte":
            return and_(present, col <= v)
        if op == "between":
            return and_(present, col >= v[0], col <= v[1])
        if op == "contains":
            return and_(present, text_position(col, literal(v, String())) > 0)
        if op == "in_past":
            anchor = self.clock.today if kind == "date" else self.clock.now
            return and_(present, col < anchor if v else col >= anchor)
        if op in RELATIVE_OPERATORS:
            low, high, exclusive = relative_range(op, v, kind, self.clock)
            parts: list[ColumnElement[bool]] = [present]
            if low is not None:
                parts.append(col >= low)
            if high is not None:
                parts.append(col < high if exclusive else col <= high)
            return and_(*parts)
        raise ValueError(f"operator {op!r} has no SQL form")

    def _tags(self, f: Field, t: Test) -> ColumnElement[bool]:
        assert f.tags is not None
        src = f.tags
        tag_table = table(src.table, column(src.key), column(src.column))
        tag = tag_table.c[src.column]
        linked = tag_table.c[src.key] == self.key

        def has(values: tuple[str, ...]) -> ColumnElement[bool]:
            return exists().where(linked, tag.in_(values))

        if t.op in ("contains", "eq"):
            return has((t.value,))
        if t.op == "in":
            return has(t.value)
        if t.op == "not_in":
            return not_(has(t.value))
        return false()

    # --- anniversaries -----------------------------------------------------------------------

    def anniversary(self, f: Field, spec: Anniversary) -> ColumnElement[bool]:
        """Solar: month and day (29 Feb rule) extracted portably; lunar: the birth dates whose
        lunar anniversary is the target, precomputed and bound as one ``IN`` list."""
        col = self.field(f)
        target = self.clock.today + dt.timedelta(days=spec.in_days)
        if spec.calendar == "solar":
            return and_(
                self._solar_prefilter(f, target), self._solar_anniversary(col, target, spec)
            )
        if spec.calendar == "lunar":
            return self._lunar_anniversary(col, target, spec)
        assert f.calendar_field is not None
        flag = func.coalesce(self.field(self.dictionary.fields[f.calendar_field]), "")
        return or_(
            and_(flag == "lunar", self._lunar_anniversary(col, target, spec)),
            and_(
                flag != "lunar",
                self._solar_prefilter(f, target),
                self._solar_anniversary(col, target, spec),
            ),
        )

    def _solar_prefilter(self, f: Field, target: dt.date) -> ColumnElement[bool]:
        """The stored text's month and day (``MM-DD`` of an ISO date) among the target's, on
        SQLite, before the date is checked and taken apart (see :class:`sqlite_prefilter`)."""
        if f.column is None or f.type != "date":
            return true()
        pairs = cal.solar_month_days(target)
        days = [f"{m:02d}-{d:02d}" for m, d in pairs]
        raw = self.raw_field(f)
        dates = [
            day
            for year in range(FIRST_LISTED_YEAR, target.year)
            for m, d in pairs
            if (day := _date_or_none(year, m, d)) is not None
        ]
        first = dt.date(FIRST_LISTED_YEAR, 1, 1)
        listed = or_(raw.in_(dates), raw < literal(first, Date())) if dates else true()
        return and_(
            sqlite_prefilter(func.substr(raw, 6, 5).in_(days)), postgresql_prefilter(listed)
        )

    def _solar_anniversary(
        self, col: ColumnElement[Any], target: dt.date, spec: Anniversary
    ) -> ColumnElement[bool]:
        def part(name: str) -> ColumnElement[int]:
            return cast(extract(name, col), Integer)

        year = part("year")
        days = or_(
            *(and_(part("month") == m, part("day") == d) for m, d in cal.solar_month_days(target))
        )
        parts = [col.is_not(None), days, year < target.year]
        if spec.years.years is not None:
            parts.append(year.in_([target.year - n for n in spec.years.years]))
        elif spec.years.every is not None:
            parts.append((literal(target.year, Integer()) - year) % spec.years.every == 0)
        return and_(*parts)

    def _lunar_anniversary(
        self, col: ColumnElement[Any], target: dt.date, spec: Anniversary
    ) -> ColumnElement[bool]:
        births = cal.lunar_anniversary_births(target, spec.years)
        if not births:
            return false()
        return and_(col.is_not(None), col.in_(births))

    # --- related records and histories -------------------------------------------------------

    def related(self, r: Related) -> ColumnElement[bool]:
        rel = self.dictionary.related[r.name]
        sub = SqlCompiler(rel.scope, self.clock)
        rows = sub.customers
        link = literal_column(f"{rel.table}.{rel.link}", String())
        match = and_(link == self.key, sub.where(r.where))
        if r.aggregate == "exists":
            # the customers the matching rows name, as a set: the database can start from
            # the related table's own index (holdings maturing this week) instead of
            # probing it once per customer; the same customers as EXISTS, links never NULL
            named = select(link).select_from(rows).where(link.is_not(None), sub.where(r.where))
            return self.key.in_(sub.joined(named))
        if r.aggregate == "none":
            # NOT EXISTS, not NOT IN: PostgreSQL plans NOT IN over a subquery badly
            one: ColumnElement[Any] = literal_column("1")
            return not_(exists(sub.joined(select(one).select_from(rows).where(match))))
        assert r.compare is not None
        if r.aggregate == "count":
            value: ColumnElement[Any] = func.count()
            kind = "integer"
        else:
            assert r.of is not None
            f = rel.columns[r.of]
            kind = f.type
            col = sub.field(f)
            if r.aggregate == "sum":
                value = func.coalesce(func.sum(cast(col, Float)), 0.0)
            else:
                value = (func.min if r.aggregate == "min" else func.max)(col)
                value = value.cast(_SQL_TYPES[f.type]) if f.type in ("number", "money") else value
        scalar = sub.joined(select(value).select_from(rows).where(match)).scalar_subquery()
        typed = scalar.cast(_SQL_TYPES[kind]) if kind in ("integer",) else scalar
        return self.compare(typed, kind, r.compare.op, r.compare.value)

    def change(self, c: Change) -> ColumnElement[bool]:
        """One change condition: a group of one (see :meth:`changes`)."""
        return self.changes((c,), and_)

    def changes(
        self, group: Sequence[Change], joined: Callable[..., ColumnElement[bool]]
    ) -> ColumnElement[bool]:
        """Current value against the latest history value on or before ``as_of - over``, for
        every change in ``group`` (one series, one cut-off), ``joined`` by ``and_`` or ``or_``.

        Compared without division, in floating point on both backends (as Python does):
        ``(now - then) * 100 <op> v * then`` for percent, ``now - then <op> v`` for amount.
        A missing value makes it false; so does, for percent only, an earlier value that is
        zero or negative (the percentage is undefined; see :class:`Change`). The current value
        may have any sign: multiplying by a positive ``then`` keeps every comparison's sense.

        The comparisons sit inside the correlated subquery that finds ``then``, which yields
        1 or 0: written out around it instead, the subquery would run once per mention of
        ``then`` (three or four times a change), and the history search is the whole cost.
        Changes of one series and cut-off side by side in an ``all`` / ``any`` share it. No
        history row makes the subquery empty, read as 0, so the result is strictly true or
        false and ``not`` stays plain negation.
        """
        first = group[0]
        series = self.dictionary.changes[first.name]
        cutoff = change_cutoff(first, self.clock)
        assert all(c.name == first.name and change_cutoff(c, self.clock) == cutoff for c in group)
        history = table(series.table)
        # the stored date in WHERE and ORDER BY, so the (customer, date) key is searched, not
        # every row of the customer checked and sorted; a malformed date is still left out (it
        # reads as empty), and among well-formed ISO dates text order is date order
        raw_at = literal_column(f"{series.table}.{series.at}", Date())
        value = literal_column(f"{series.table}.{series.value}", Float())
        then = cast(checked(value, "number"), Float)
        now = cast(self.field(self.dictionary.fields[series.current]), Float)
        holds = and_(
            then.is_not(None),
            now.is_not(None),
            joined(*(_compared(c, now, then) for c in group)),
        )
        verdict = (
            select(case((holds, 1), else_=0))
            .select_from(history)
            .where(
                literal_column(f"{series.table}.{series.link}", String()) == self.key,
                raw_at <= cutoff,
                checked(raw_at, "date").is_not(None),
            )
            .order_by(raw_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        return func.coalesce(verdict, 0) == 1

    # --- the query ---------------------------------------------------------------------------

    def audience(self, condition: Condition, fields: list[Field]) -> Select[*tuple[Any, ...]]:
        """One SELECT: the customer key plus the requested scalar fields, filtered."""
        columns = [self.key.label("_key")]
        columns += [self.field(f).label(f.key) for f in fields if f.type != "tags"]
        query = (
            select(*columns)
            .select_from(self.customers)
            .where(self.where(condition))
            .order_by(self.key)
        )
        return self.joined(query)


def _lookup_aliases(
    dictionary: DataDictionary,
) -> dict[tuple[object, ...], tuple[FromClause, ColumnElement[bool]]]:
    """Per lookup table and key (and filter and pick, for grouped lookups): the aliased table
    (with every column a field reads from it) and the join condition, in the dictionary's
    order so the SQL is stable."""
    read: dict[tuple[object, ...], list[Lookup]] = {}
    for f in dictionary.fields.values():
        if f.lookup is not None:
            read.setdefault(f.lookup.shared, []).append(f.lookup)
    out: dict[tuple[object, ...], tuple[FromClause, ColumnElement[bool]]] = {}
    names: set[str] = set()
    for shared, lookups in read.items():
        first = lookups[0]
        name = first.alias
        n = 1
        while name in names:  # two filters whose names read alike, or cut short
            n += 1
            name = f"{first.alias}_{n}"
        names.add(name)
        columns = list(dict.fromkeys(x.column for x in lookups))
        alias = _grouped(first, columns, name) if first.grouped else _plain(first, columns, name)
        by: ColumnElement[Any] = literal_column(f"{dictionary.customer_table}.{first.by}")
        out[shared] = (alias, alias.c[first.key] == by)
    return out


def _plain(lookup: Lookup, columns: list[str], name: str) -> FromClause:
    """The looked-up table itself, under its join's name."""
    names = dict.fromkeys([lookup.key, *columns])
    return table(lookup.table, *(column(n) for n in names)).alias(name)


def _grouped(lookup: Lookup, columns: list[str], name: str) -> FromClause:
    """``(SELECT key, MIN(column) AS column, … FROM table WHERE … GROUP BY key) AS name``:
    one row per key, so joining it never repeats a customer, and the database groups the
    table once per query instead of choosing per customer row. Each column is picked on its
    own (the smallest id and the smallest name need not come from one row)."""
    filtered = [c for c, _ in lookup.where]
    rows = table(
        lookup.table, *(column(n) for n in dict.fromkeys([lookup.key, *filtered, *columns]))
    )
    pick = func.min if lookup.pick == "min" else func.max
    key = rows.c[lookup.key]
    chosen = [pick(rows.c[c]).label(c) for c in columns if c != lookup.key]
    return (
        select(key, *chosen)
        # bound untyped, as in untyped_in: the database reads '2026-01-01' as the column's type
        .where(*(rows.c[c] == literal(v, NullType()) for c, v in lookup.where))
        .group_by(key)
        .subquery(name)
    )


def _date_or_none(year: int, month: int, day: int) -> dt.date | None:
    """The date, or None where it does not exist (29 February of a common year)."""
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _joined_aliases(from_: FromClause) -> list[FromClause]:
    """The tables a FROM item already joins (its right-hand sides, nested joins too)."""
    if not isinstance(from_, Join):
        return []
    return [*_joined_aliases(from_.left), from_.right, *_joined_aliases(from_.right)]


def _compared(c: Change, now: ColumnElement[Any], then: ColumnElement[Any]) -> ColumnElement[bool]:
    """The comparison of one change, its values known present (see changes); a percentage
    needs a positive earlier value, checked here since an ``any`` may mix it with amounts."""
    diff = now - then
    op, v = c.compare.op, c.compare.value
    lhs: ColumnElement[Any] = diff * 100.0 if c.measure == "percent" else diff

    def bound(x: Any) -> ColumnElement[Any]:
        return then * float(x) if c.measure == "percent" else literal(float(x), Float())

    if op == "between":
        compared = and_(lhs >= bound(v[0]), lhs <= bound(v[1]))
    else:
        compared = {
            "eq": lhs.__eq__,
            "ne": lhs.__ne__,
            "gt": lhs.__gt__,
            "gte": lhs.__ge__,
            "lt": lhs.__lt__,
            "lte": lhs.__le__,
        }[op](bound(v))
    return and_(then > 0, compared) if c.measure == "percent" else compared


def _change_groups(
    items: Sequence[Condition], clock: Clock
) -> list[Condition | tuple[Change, ...]]:
    """``items`` with the changes of one series and one cut-off gathered into one tuple, at
    the place of the first of them; everything else as it is, in order."""
    out: list[Condition | tuple[Change, ...]] = []
    where: dict[tuple[str, dt.date], int] = {}
    for item in items:
        if not isinstance(item, Change):
            out.append(item)
            continue
        key = (item.name, change_cutoff(item, clock))
        if key in where:
            group = out[where[key]]
            assert isinstance(group, tuple)
            out[where[key]] = (*group, item)
        else:
            where[key] = len(out)
            out.append((item,))
    return out
