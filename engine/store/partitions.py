"""Customers split across K daemons: ``--partition k/K`` (docs/scaling.md).

A customer's partition is ``partition_hash(key) % K`` (:mod:`engine.store.keyhash`: the same
number on SQLite and PostgreSQL), one more WHERE term on the audience query, so everything
downstream (ledger, cooldowns, caps, tasks) is unchanged. The key hashed is the dictionary's
customer key, or ``partition_column:`` when the dictionary names one (e.g. ``branch_id``, so
a branch's customers stay with one daemon).

The *scheme* (K) is recorded in ``partition_scheme`` by the first partitioned daemon: a
daemon started with another K, or without ``--partition``, on that database is refused, since
two schemes would split the customers two ways and claim the same slots twice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from engine.core.dictionary import DataDictionary
from engine.core.errors import StoreError, UsageError, first_line
from engine.core.i18n import t
from engine.store.introspect import DictionaryCheck, table_columns
from engine.store.keyhash import partition_hash
from engine.store.mapping import DiagnosticsError
from engine.store.models import partition_scheme

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_PARTITIONS = 1024  # far beyond any deployment; keeps a typo (4/40000) from passing


@dataclass(frozen=True)
class Partition:
    """Partition ``k`` of ``count`` (1 ≤ k ≤ count): one daemon's share of the customers."""

    k: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.k}/{self.count}"

    def where(self, dictionary: DataDictionary) -> ColumnElement[bool]:
        """The audience term: this partition's customers (by key, or by partition_column)."""
        column = dictionary.partition_column or dictionary.key
        hashed = partition_hash(literal_column(f"{dictionary.customer_table}.{column}"))
        return hashed % self.count == self.k - 1

    def share(self, cap: int | None) -> int | None:
        """This partition's part of ``limits.max_per_run``: floor(cap / K), plus one for the
        first ``cap mod K`` partitions, so the parts add up to the cap exactly."""
        if cap is None:
            return None
        return cap // self.count + (1 if self.k <= cap % self.count else 0)


def parse_partition(text: str | None) -> Partition | None:
    """``--partition k/K`` checked at the edge (E1040); None when not given."""
    if text is None:
        return None
    match = _SPEC.match(text)
    if match is None:
        raise UsageError(t("E1040.format", value=text), code="E1040", hint=t("E1040.hint"))
    k, count = int(match.group(1)), int(match.group(2))
    if count < 1 or count > MAX_PARTITIONS or not 1 <= k <= count:
        raise UsageError(
            t("E1040.range", value=text, k=k, count=count, most=MAX_PARTITIONS),
            code="E1040",
            hint=t("E1040.hint"),
        )
    return Partition(k, count)


# --- the scheme recorded in the database ---------------------------------------------------


def recorded_count(conn: Connection) -> int | None:
    """The K the database's daemons partition by, or None while none has."""
    value = conn.execute(select(partition_scheme.c.partitions)).scalar()
    return None if value is None else int(value)


def claim_scheme(
    engine: Engine, partition: Partition | None, *, owner: str, now: dt.datetime, record: bool
) -> None:
    """Check ``partition`` against the database's scheme, recording it when none is yet and
    ``record`` (the daemon). Refuses another K (E1041) and, for a daemon, no partition on a
    partitioned database (E1042): either would act on some customers from two daemons'
    shares and claim one slot under two schemes."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        if partition is not None and record:
            conn.execute(
                insert(partition_scheme)
                .values(id=1, partitions=partition.count, set_by=owner, set_at=now)
                .on_conflict_do_nothing(index_elements=["id"])
            )
        count = recorded_count(conn)
    if count is None:
        return
    if partition is None:
        if record:
            raise StoreError(
                t("E1042", count=count), code="E1042", hint=t("E1042.hint", count=count)
            )
        return  # a one-off `run` over every customer: the ledger keeps it exactly once
    if partition.count != count:
        raise StoreError(
            t("E1041", given=partition.label, count=count),
            code="E1041",
            hint=t("E1041.hint", count=count),
        )


def check_partition_column(engine: Engine, dictionary: DataDictionary) -> None:
    """A ``partition_column:`` the customer table lacks is an error located in the data
    dictionary (E1043), found before any daemon claims a slot with it."""
    column = dictionary.partition_column
    if column is None:
        return
    try:
        with engine.connect() as conn:
            columns = table_columns(conn, dictionary.customer_table)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot inspect the database: {first_line(exc)}", code="E1060") from exc
    if columns is None or column in columns:
        return  # a missing customer table is require_deployment's to report
    check = DictionaryCheck(dictionary)
    check.report(
        "E1043",
        t("E1043", column=column, table=dictionary.customer_table),
        ["partition_column"],
        t("E1043.hint"),
    )
    raise DiagnosticsError(
        check.diagnostics,
        t("E1043.summary"),
        sources=check.sources,
        code="E1043",
    )
