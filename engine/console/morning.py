"""The morning preview: every enabled scheduled playbook's dry-run for one day, summed for
people (by playbook and by branch), over the same pass and report as ``runner.py dry-run
--as-of DAY --format json``, so the console's totals are the CLI's by construction. Optionally
narrowed to the customers of one branch. No HTTP here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from engine.console.workbench import Workbench
from engine.core.clock import Clock
from engine.execution.selection import decide
from engine.reports.dryrun import KIND_LABELS, report_json
from engine.reports.tabular import field_values
from engine.store.models import branches

KIND_ORDER = ("sms", "task", "wecom", "email", "webhook", "tag")
NO_BRANCH = "—"


@dataclass
class Tally:
    """Customers matched, acted on, held out and held back, and actions by kind."""

    matched: int = 0
    acted: int = 0
    held_out: int = 0
    suppressed: int = 0
    actions: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.matched += other.matched
        self.acted += other.acted
        self.held_out += other.held_out
        self.suppressed += other.suppressed
        self.actions.update(other.actions)


def tallies(entry: Mapping[str, Any], group_of: Callable[[str], str | None]) -> dict[str, Tally]:
    """One playbook's dry-run entry (``report_json``) counted per group of customers
    (``group_of`` gives a customer's group, None: not counted): matched = acted + held out +
    held back, as in the report's funnel."""
    matched: dict[str, set[str]] = {}
    acted: dict[str, set[str]] = {}
    held_out: dict[str, set[str]] = {}
    kinds: dict[str, Counter[str]] = {}
    for customer_id in entry["matched"]:
        group = group_of(customer_id)
        if group is not None:
            matched.setdefault(group, set()).add(customer_id)
    for action in entry["actions"]:
        group = group_of(action["customer_id"])
        if group is not None:
            acted.setdefault(group, set()).add(action["customer_id"])
            kinds.setdefault(group, Counter())[action["type"]] += 1
    for customer_id in entry["held_out"]:
        group = group_of(customer_id)
        if group is not None:
            held_out.setdefault(group, set()).add(customer_id)
    found = {}
    for group, ids in matched.items():
        done, out = acted.get(group, set()), held_out.get(group, set())
        found[group] = Tally(
            matched=len(ids),
            acted=len(done),
            held_out=len(out),
            suppressed=len(ids - done - out),
            actions=kinds.get(group, Counter()),
        )
    return found


def branch_names(workbench: Workbench) -> dict[str, str]:
    with workbench.store.connect() as conn:
        rows = conn.execute(select(branches.c.id, branches.c.name).order_by(branches.c.id))
        return {str(r.id): str(r.name) for r in rows}


def preview(workbench: Workbench, day: dt.date, branch: str | None) -> dict[str, Any]:
    """The dry-run of ``day`` (each playbook at its own slot that day, personal data
    masked), counted in all or for the customers of ``branch``.

    Computed per request: over the 1,500-customer demo store the pass takes about a second,
    and a preview must show the store as it is now (who was already served, who is cooling
    down), so nothing is cached."""
    settings = workbench.settings
    tz = settings.timezone
    moment = dt.datetime.combine(day, dt.time(), tz)
    validator = workbench.validator
    found = validator.validate_paths([settings.playbooks_dir])
    enabled = [p for p in found.playbooks if p.enabled]
    executor = workbench.executor()
    selected = decide(
        workbench.store,
        executor,
        enabled,
        moment,
        whole_day=True,
        dry_run=True,
        mask=True,
        left_out=sorted({d.file for d in found.errors}),
    )
    report = report_json(selected.moment, selected.outcomes, selected.skipped)

    ids = sorted({c for p in report["playbooks"] for c in p["matched"]})
    clock = Clock.at(moment, tz)
    branch_of = {
        c: (NO_BRANCH if b is None else str(b))
        for c, b in field_values(
            workbench.bank(), workbench.dictionary, clock, ids, "branch_id"
        ).items()
    }

    def branch_of_customer(customer_id: str) -> str | None:
        found = branch_of.get(customer_id, NO_BRANCH)
        return found if branch is None or found == branch else None

    def counted_in_all(customer_id: str) -> str | None:
        return "all" if branch_of_customer(customer_id) is not None else None

    rows = []
    total = Tally()
    by_branch: dict[str, Tally] = {}
    for entry in report["playbooks"]:
        counted = tallies(entry, counted_in_all).get("all", Tally())
        total.add(counted)
        rows.append(
            {
                "id": entry["id"],
                "title": entry["title"],
                "window": entry["window"],
                "error": entry.get("error"),
                "tally": counted,
            }
        )
        for b, t in tallies(entry, branch_of_customer).items():
            by_branch.setdefault(b, Tally()).add(t)
    kinds = [k for k in KIND_ORDER if total.actions.get(k)] + sorted(
        k for k in total.actions if k not in KIND_ORDER
    )
    return {
        "day": day,
        "as_of": report["as_of"],
        "branch": branch,
        "total": total,
        "kinds": kinds,
        "kind_labels": KIND_LABELS,
        "playbooks": rows,
        "branches": sorted(by_branch.items(), key=lambda kv: (-kv[1].acted, kv[0])),
        "not_scheduled": report["not_scheduled"],
        "left_out": selected.left_out,
        "failed": [o.playbook.id for o in selected.failed],
    }
