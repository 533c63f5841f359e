"""Compile a condition tree to one SQLAlchemy Core expression over the customer table.

Field names come only from the data dictionary; every value is a bound parameter. Each test
compiles to a strictly true/false predicate (see :mod:`engine.conditions.ast` on empty
fields), so ``not`` needs no three-valued care.
"""

from __future__ import annotations

from typing import Any

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
    column,
    exists,
    false,
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.types import TypeEngine

from engine.conditions.ast import All, AnyOf, Condition, Not, Test
from engine.conditions.bounds import relative_range
from engine.conditions.clock import Clock
from engine.dictionary import DataDictionary, Field

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


class SqlCompiler:
    """Builds WHERE clauses and the audience SELECT for one dictionary and one clock."""

    def __init__(self, dictionary: DataDictionary, clock: Clock) -> None:
        self.dictionary = dictionary
        self.clock = clock
        self.customers: TableClause = table(dictionary.customer_table, column(dictionary.key))
        self.key = literal_column(f"{dictionary.customer_table}.{dictionary.key}", String())

    def field(self, f: Field) -> ColumnElement[Any]:
        """The column or expression behind a scalar field, typed for binding."""
        sql_type = _SQL_TYPES[f.type]
        if f.column is not None:
            return literal_column(f"{self.dictionary.customer_table}.{f.column}", sql_type)
        assert f.sql is not None
        return literal_column(f.sql, sql_type)

    def where(self, condition: Condition) -> ColumnElement[bool]:
        if isinstance(condition, All):
            if not condition.items:
                return true()
            return and_(*(self.where(c) for c in condition.items))
        if isinstance(condition, AnyOf):
            return or_(*(self.where(c) for c in condition.items))
        if isinstance(condition, Not):
            return not_(self.where(condition.item))
        return self.test(condition)

    def test(self, t: Test) -> ColumnElement[bool]:
        f = self.dictionary.fields[t.field]
        if f.type == "tags":
            return self._tags(f, t)
        col = self.field(f)
        present = col.is_not(None)
        op, v = t.op, t.value
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
            return and_(present, col.contains(v, autoescape=True))
        if op in ("older_than", "within_last", "within_next"):
            low, high, exclusive = relative_range(op, v, f.type, self.clock)
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

    def audience(self, condition: Condition, fields: list[Field]) -> Select[*tuple[Any, ...]]:
        """One SELECT: the customer key plus the requested scalar fields, filtered."""
        columns = [self.key.label("_key")]
        columns += [self.field(f).label(f.key) for f in fields if f.type != "tags"]
        return (
            select(*columns)
            .select_from(self.customers)
            .where(self.where(condition))
            .order_by(self.key)
        )
