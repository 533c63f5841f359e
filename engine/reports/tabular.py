"""Spreadsheet and comparison views of a dry-run: CSV rows, audience facets, and the diff
against the last real run ("plan before apply")."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary
from engine.core.spreadsheet import SafeWriter
from engine.store.models import action_ledger, runs

CSV_COLUMNS = (
    "playbook_id",
    "window",
    "customer_id",
    "type",
    "recipient",
    "assignee_id",
    "priority",
    "due_at",
    "title",
    "body",
)
CHUNK = 500


def report_csv(report: Mapping[str, Any]) -> str:
    """One row per action, for managers' spreadsheets (UTF-8 with BOM so Excel reads Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = SafeWriter(out)
    writer.writerow(CSV_COLUMNS)
    for p in report["playbooks"]:
        for action in p["actions"]:
            row = {"playbook_id": p["id"], "window": p["window"], **action}
            writer.writerow(row.get(c, "") for c in CSV_COLUMNS)
    return out.getvalue()


def audience_facets(
    store: Engine,
    dictionary: DataDictionary,
    clock: Clock,
    ids: Sequence[str],
    fields: Iterable[str] = ("tier", "branch_name"),
) -> dict[str, dict[str, int]]:
    """Matched customers counted by each field (enum codes shown with their labels). One
    grouped query per chunk of ids for all fields together: each customer is looked up once,
    not once per field."""
    compiler = SqlCompiler(dictionary, clock)
    chosen = [f for f in (dictionary.get(k) for k in fields) if f is not None and f.type != "tags"]
    if not chosen:
        return {}
    columns = [compiler.field(f) for f in chosen]
    counts: list[dict[str, int]] = [{} for _ in chosen]
    with store.connect() as conn:
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            query = compiler.joined(
                select(*columns, func.count())
                .select_from(compiler.customers)
                .where(compiler.key_in(chunk))
                .group_by(*columns)
            )
            for *values, n in conn.execute(query):
                for f, value, found in zip(chosen, values, counts, strict=True):
                    label = f.values.get(str(value), str(value)) if value is not None else "—"
                    found[label] = found.get(label, 0) + int(n)
    return {f"{f.label} {f.name}": found for f, found in zip(chosen, counts, strict=True)}


def field_values(
    store: Engine, dictionary: DataDictionary, clock: Clock, ids: Sequence[str], key: str
) -> dict[str, Any]:
    """Each customer's value of one data dictionary field (``branch_id`` …), read the way
    :func:`audience_facets` counts it; customers without a row are left out."""
    f = dictionary.get(key)
    if f is None:
        return {}
    compiler = SqlCompiler(dictionary, clock)
    column = compiler.field(f)
    found: dict[str, Any] = {}
    with store.connect() as conn:
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            query = compiler.joined(
                select(compiler.key, column)
                .select_from(compiler.customers)
                .where(compiler.key_in(chunk))
            )
            for customer_id, value in conn.execute(query):
                found[str(customer_id)] = value
    return found


def diff_against_last_run(store: Engine, playbook_id: str, acted: Iterable[str]) -> dict[str, Any]:
    """Who a real run now would add or drop, compared with the last completed real run."""
    with store.connect() as conn:
        last = conn.execute(
            select(func.max(runs.c.id)).where(
                runs.c.playbook_id == playbook_id, runs.c.status == "done"
            )
        ).scalar()
        before: set[str] = set()
        if last is not None:
            before = {
                r[0]
                for r in conn.execute(
                    # held-out customers are in the ledger too, but nothing was done to them
                    select(action_ledger.c.customer_id).where(
                        action_ledger.c.run_id == last, ~action_ledger.c.held_out
                    )
                )
            }
    now = set(acted)
    return {
        "last_run_id": last,
        "new": sorted(now - before),
        "dropped": sorted(before - now),
        "unchanged": len(now & before),
    }
