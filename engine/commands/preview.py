"""``dry-run`` and ``run``: one execution path, two sinks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from engine.commands import common
from engine.core.clock import Clock, utc_now
from engine.core.dictionary import load_dictionary
from engine.core.durations import DurationError, parse_duration
from engine.core.errors import UsageError
from engine.execution.executor import Executor, Outcome
from engine.execution.selection import Held, Selected, decide
from engine.governance.gate import CHANGED, open_gate
from engine.playbook.validation import Validator
from engine.reports.dryrun import estimate_lines, report_json, report_text
from engine.reports.html import render_html
from engine.reports.tabular import audience_facets, diff_against_last_run, report_csv
from engine.store.introspect import require_deployment
from engine.store.partitions import Partition, check_partition_column, claim_scheme
from engine.store.replica import ReplicaConfig


def execute_selected(
    db_url: str | None,
    as_of: str | None,
    wanted: Sequence[str],
    *,
    dry_run: bool,
    mask: bool,
    evaluator: str = "sql",
    grace: dt.timedelta | None = None,
    replica: ReplicaConfig | None = None,
    partition: Partition | None = None,
) -> Selected:
    settings = common.settings()
    moment, whole_day = common.parse_as_of(as_of, settings)
    dictionary = load_dictionary(settings.dictionary_path)
    validator = Validator(settings, dictionary)
    found = validator.validate_paths([settings.playbooks_dir])
    playbooks = common.select_playbooks(found, wanted)
    store = common.store(settings, db_url)
    reads = None
    try:
        # dry-run reads the ledger too: it shows who is already done or cooling down; the
        # customer side is whatever the data dictionary maps (the demo store or the bank's)
        require_deployment(store, dictionary)
        if dry_run and not mask:  # a preview with names and phones: recorded before shown
            common.record_unmasking(store, "dry-run", playbooks=[p.id for p in playbooks])
        if partition is not None:
            check_partition_column(store, dictionary)
            # another K than the daemons' would split customers two ways (E1041)
            claim_scheme(store, partition, owner="run", now=utc_now(), record=False)
        reads = common.replica(store, replica)
        held: list[Held] = []
        # with governance on, a run executes only live approved versions (a dry-run previews
        # the folders as they are: that is what an editor checks before submitting)
        gate = None if dry_run else open_gate(store, settings)
        if gate is not None:
            admission = gate.admit(playbooks)
            playbooks = admission.admitted
            held = [Held(w.playbook_id, w.words, w.reason == CHANGED) for w in admission.withheld]
        executor = Executor(store, settings, dictionary, validator.renderer, replica=reads)
        selected = decide(
            store,
            executor,
            playbooks,
            moment,
            whole_day=whole_day,
            dry_run=dry_run,
            mask=mask,
            evaluator=evaluator,
            left_out=sorted({d.file for d in found.errors}),
            grace=grace,
            partition=partition,
        )
        selected.held = held
        return selected
    finally:
        if reads is not None:
            reads.dispose()
        store.dispose()


@click.command("dry-run")
@common.db_option
@common.replica_options
@click.option("--as-of", "as_of", default=None, help=common.AS_OF_HELP)
@click.option("--playbook", "playbooks", multiple=True, help="playbook id (repeatable)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv", "html"]),
    default="text",
    help="text for people, json for machines, csv (one row per action), html (charts)",
)
@click.option("--diff", is_flag=True, help="compare with each playbook's last real run")
@common.partition_option
@click.option("--out", type=click.Path(path_type=Path), help="write the report to a file")
@click.option("--show-sql", is_flag=True, help="print each audience's SQL")
@click.option("--show-personal-data", is_flag=True, help="do not mask names, phones and e-mails")
@click.option(
    "--evaluator",
    type=click.Choice(["sql", "python"]),
    default="sql",
    help="decide audiences in the database (default) or with the Python reference, to compare",
)
def dry_run(
    db_url: str | None,
    as_of: str | None,
    playbooks: tuple[str, ...],
    fmt: str,
    diff: bool,
    out: Path | None,
    show_sql: bool,
    show_personal_data: bool,
    evaluator: str,
    replica: ReplicaConfig | None,
    partition: Partition | None,
) -> None:
    """Preview every action that would fire, and why others would not. Writes nothing.
    With --partition k/K, what that partition's daemon would do (its customers, its share of
    each max_per_run)."""
    selected = execute_selected(
        db_url,
        as_of,
        playbooks,
        dry_run=True,
        mask=not show_personal_data,
        evaluator=evaluator,
        replica=replica,
        partition=partition,
    )
    moment, outcomes, skipped = selected.moment, selected.outcomes, selected.skipped
    report = report_json(moment, outcomes, skipped)
    if diff or fmt == "html":
        _add_store_views(db_url, outcomes, report, diff=diff, facets=fmt == "html")
    if fmt == "json":
        text = json.dumps(report, ensure_ascii=False, indent=2)
    elif fmt == "csv":
        text = report_csv(report)
    elif fmt == "html":
        facets = {p["id"]: p.pop("facets") for p in report["playbooks"]}
        text = render_html(report, facets, masked=not show_personal_data)
    else:
        text = report_text(moment, outcomes, skipped)
        if diff:
            text += "\n" + _diff_text(report)
        if show_personal_data:
            text = text.replace("(personal data masked)", "(PERSONAL DATA SHOWN)")
    if show_sql:
        sql = "\n\n".join(f"-- {o.playbook.id}\n{o.sql}" for o in outcomes)
        click.echo(sql + "\n", err=fmt != "text" and out is None)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + ("\n" if fmt == "json" else ""), encoding="utf-8")
        click.echo(f"report written to {out}")
    else:
        click.echo(text)
    selected.check()


def _add_store_views(
    db_url: str | None,
    outcomes: Sequence[Outcome],
    report: dict[str, Any],
    *,
    diff: bool,
    facets: bool,
) -> None:
    """Views that need the store again: the audience by tier and branch, the run diff."""
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    store = common.store(settings, db_url)
    try:
        for outcome, entry in zip(outcomes, report["playbooks"], strict=True):
            if facets:
                clock = Clock.at(outcome.as_of, settings.timezone)
                entry["facets"] = audience_facets(store, dictionary, clock, outcome.matched)
            if diff:
                acted = [d.customer_id for d in outcome.decisions if d.effects]
                entry["diff"] = diff_against_last_run(store, outcome.playbook.id, acted)
    finally:
        store.dispose()


def _diff_text(report: dict[str, Any]) -> str:
    lines = ["compared with the last real run (plan before apply):"]
    for p in report["playbooks"]:
        d = p["diff"]
        if d["last_run_id"] is None:
            lines.append(f"  {p['id']}: no earlier run; all {len(d['new'])} customer(s) are new")
            continue
        shown = ", ".join(d["new"][:5]) + (" …" if len(d["new"]) > 5 else "")
        lines.append(
            f"  {p['id']}: vs run {d['last_run_id']}: +{len(d['new'])} new, "
            f"-{len(d['dropped'])} dropped, {d['unchanged']} unchanged"
            + (f"  new: {shown}" if shown else "")
        )
    return "\n".join(lines) + "\n"


@click.command()
@common.db_option
@common.replica_options
@common.partition_option
@click.option("--as-of", "as_of", default=None, help=common.AS_OF_HELP)
@click.option("--playbook", "playbooks", multiple=True, help="playbook id (repeatable)")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="a playbook whose latest slot is older than this is not run but listed as "
    "slot_too_old (the daemon's --grace)",
)
@click.option(
    "--slot",
    default=None,
    help="run the slot at this ISO moment on purpose, however old (with --playbook)",
)
def run(
    db_url: str | None,
    as_of: str | None,
    playbooks: tuple[str, ...],
    grace: str,
    slot: str | None,
    replica: ReplicaConfig | None,
    partition: Partition | None,
) -> None:
    """Execute once: write ledger, outbox and tasks. A rerun in the same window adds nothing.
    A slot older than --grace is skipped (slot_too_old) unless named with --slot.
    With --partition k/K, only that share of the customers and of each max_per_run."""
    if slot is not None and (as_of is not None or not playbooks):
        raise UsageError(
            "--slot names one slot of the playbooks given with --playbook, instead of --as-of",
            code="E0313",
            hint="e.g. run --playbook care-survey-email --slot 2026-10-26T10:00",
        )
    try:
        # --slot: exactly that slot (late by nothing), whatever its age
        allowed = dt.timedelta(0) if slot is not None else parse_duration(grace)
    except DurationError as exc:
        raise UsageError(f"--grace: {exc}", code="E0303") from exc
    selected = execute_selected(
        db_url,
        slot or as_of,
        playbooks,
        dry_run=False,
        mask=False,
        grace=allowed,
        replica=replica,
        partition=partition,
    )
    for o in selected.outcomes:
        if o.error is not None:
            click.echo(f"{o.playbook.id}: FAILED, nothing written for it: {o.error}")
            continue
        if o.estimated_days:
            click.echo(f"{o.playbook.id}:" + "\n".join(estimate_lines(o))[1:])
            if o.held_for_estimate:
                continue
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(o.effects.items())) or "nothing"
        held = ", ".join(f"{r} {n}" for r, n in sorted(o.suppressed.items()))
        issues = "; ".join(
            f"{k} " + ", ".join(f"{n} {what}" for what, n in v.items() if n)
            for k, v in sorted(o.data_issues.items())
        )
        click.echo(
            f"{o.playbook.id}: run {o.run_id} window {o.window}: matched {o.matched_count}, "
            f"acted {o.acted} ({kinds})"
            + (" [read from the replica]" if o.read_from == "replica" else "")
            + (f" [partition {o.partition.label}]" if o.partition is not None else "")
            + (f"; suppressed: {held}" if held else "")
            + (f"; no usable value: {issues}" if issues else "")
        )
    for p in selected.skipped:
        click.echo(f"{p.id}: not scheduled on this day")
    for h in selected.held:
        click.echo(f"{h.playbook_id}: {h.words}")
    for p, old in selected.too_old:
        shown = old.isoformat(timespec="minutes")
        if slot is not None:
            click.echo(f"{p.id}: {slot} is not one of its slots (the one before is {shown})")
            continue
        click.echo(
            f"{p.id}: slot_too_old: its latest slot {shown} is older than --grace {grace}; "
            f"nothing done (run it on purpose: run --playbook {p.id} --slot {shown})"
        )
    selected.check()
