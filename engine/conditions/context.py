"""Related rows a playbook's templates may name: ``context:``.

The audience says *whether* a customer has a maturing product or an overdue complaint; a
template needs *which one*. A playbook names a selection of related rows in the language of
the audience's related-record filters::

    context:
      maturing:                  # {{ maturing[0].product_name }}, {% for h in maturing %}
        from: holdings
        where: {product_type: wealth, maturity_date: {within_next: 7d}}
        order: maturity_date     # "-amount": largest first
        limit: 3                 # at most this many rows per customer (1-10, default 3)

Each selection is read once per batch of customers, in one query (only the batch's customers,
at most ``limit`` rows each, numbered by a window function), never once per customer and
never the whole table. Templates see a list of rows keyed by the dictionary's column names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, func, literal_column, select

from engine.conditions.ast import EVERYONE, Condition
from engine.conditions.parse import ConditionParser
from engine.conditions.special import Path, Report
from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary
from engine.core.i18n import t

# names every template already has: a selection may not hide them
TEMPLATE_NAMES = frozenset({"customer", "playbook", "bank", "today", "now"})
DEFAULT_LIMIT = 3
MAX_LIMIT = 10
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


@dataclass(frozen=True)
class Selection:
    """Up to ``limit`` rows of related table ``source`` per customer, matching ``where``."""

    name: str
    source: str  # the related table's key in the data dictionary
    where: Condition
    order: str | None = None  # a column key
    descending: bool = False
    limit: int = DEFAULT_LIMIT


def parse_context(
    raw: Any,
    dictionary: DataDictionary,
    report: Report,
    parser: Callable[[DataDictionary], ConditionParser],
) -> tuple[Selection, ...]:
    """``context:`` → selections; ``parser(scope)`` builds a nested condition parser."""
    if not isinstance(raw, dict):
        return ()
    found = []
    for name, spec in raw.items():
        path: Path = ("context", name)
        if name in TEMPLATE_NAMES:
            taken = ", ".join(sorted(TEMPLATE_NAMES))
            report(
                "PB0191",
                t("PB0191", name=name),
                path,
                t("PB0191.hint", name=name, taken=taken),
                True,
            )
            continue
        if not isinstance(spec, dict):
            continue  # the schema said what it should be
        selection = _selection(str(name), spec, path, dictionary, report, parser)
        if selection is not None:
            found.append(selection)
    return tuple(found)


def _selection(
    name: str,
    spec: Mapping[str, Any],
    path: Path,
    dictionary: DataDictionary,
    report: Report,
    parser: Callable[[DataDictionary], ConditionParser],
) -> Selection | None:
    source = str(spec.get("from", ""))
    rel = dictionary.related.get(source)
    if rel is None:
        known = list(dictionary.related)
        close = difflib.get_close_matches(source, known, n=1)
        hint = (
            t("hint.did_you_mean", name=close[0])
            if close
            else t("PB0190.hint", tables=", ".join(known))
        )
        report("PB0190", t("PB0190", source=source), (*path, "from"), hint, False)
        return None
    where = EVERYONE
    if "where" in spec:
        where = parser(rel.scope).condition(spec["where"], (*path, "where"))
    order = spec.get("order")
    descending = False
    if order is not None:
        order = str(order)
        descending = order.startswith("-")
        order = order.removeprefix("-")
        if order not in rel.columns:
            close = difflib.get_close_matches(order, list(rel.columns), n=1)
            hint = (
                t("hint.did_you_mean", name=close[0])
                if close
                else t("PB0192.hint", source=source, columns=", ".join(rel.columns))
            )
            report("PB0192", t("PB0192", order=order, source=source), (*path, "order"), hint, False)
            return None
    return Selection(
        name=name,
        source=source,
        where=where,
        order=order,
        descending=descending,
        limit=int(spec.get("limit", DEFAULT_LIMIT)),
    )


def fetch(
    conn: Connection,
    selections: Sequence[Selection],
    dictionary: DataDictionary,
    clock: Clock,
    customer_ids: Sequence[str],
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """selection name → customer id → its rows (column key → value), one query per selection."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s in selections:
        rel = dictionary.related[s.source]
        sub = SqlCompiler(rel.scope, clock)
        link = literal_column(f"{rel.table}.{rel.link}", String())
        columns = {key: sub.field(f) for key, f in rel.columns.items()}
        ordering = (
            [columns[s.order].desc() if s.descending else columns[s.order]] if s.order else []
        )
        ordering += [c for k, c in columns.items() if k != s.order]  # ties: a stable order
        number = func.row_number().over(partition_by=link, order_by=ordering)
        inner = sub.joined(
            select(
                link.label("_owner"), number.label("_n"), *(c.label(k) for k, c in columns.items())
            )
            .select_from(sub.customers)
            .where(link.in_(list(customer_ids)), sub.where(s.where))
        ).subquery()
        query = (
            select(inner).where(inner.c["_n"] <= s.limit).order_by(inner.c["_owner"], inner.c["_n"])
        )
        rows: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute(query).mappings():
            rows.setdefault(str(r["_owner"]), []).append({k: r[k] for k in columns})
        out[s.name] = rows
    return out
