"""``explain CUSTOMER_ID``: why one customer does or does not get each playbook's actions."""

from __future__ import annotations

import json

import click

from engine.commands import common
from engine.core.dictionary import load_dictionary
from engine.execution.explain import Explainer
from engine.playbook.validation import Validator
from engine.reports.explain import explanation_json, explanation_text
from engine.store.introspect import require_deployment
from engine.store.replica import ReplicaConfig


@click.command()
@click.argument("customer_id")
@common.db_option
@common.replica_options
@click.option("--as-of", "as_of", default=None, help=common.AS_OF_HELP)
@click.option("--playbook", "playbooks", multiple=True, help="playbook id (repeatable)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="text for people, json for machines",
)
@click.option("--show-personal-data", is_flag=True, help="do not mask names, phones and e-mails")
def explain(
    customer_id: str,
    db_url: str | None,
    as_of: str | None,
    playbooks: tuple[str, ...],
    fmt: str,
    show_personal_data: bool,
    replica: ReplicaConfig | None,
) -> None:
    """Trace one customer through every (or the chosen) playbook: each audience condition
    with the customer's value, each contact-policy gate, and the outcome. Writes nothing."""
    settings = common.settings()
    moment, whole_day = common.parse_as_of(as_of, settings)
    dictionary = load_dictionary(settings.dictionary_path)
    validator = Validator(settings, dictionary)
    chosen = common.select_playbooks(validator.validate_paths([settings.playbooks_dir]), playbooks)
    store = common.store(settings, db_url)
    reads = None
    try:
        require_deployment(store, dictionary)
        if show_personal_data:  # recorded before anything is shown
            common.record_unmasking(store, "explain", customer_id=customer_id)
        reads = common.replica(store, replica)
        explainer = Explainer(store, settings, dictionary, validator.renderer, replica=reads)
        exp = explainer.explain(
            customer_id, chosen, moment, whole_day=whole_day, mask=not show_personal_data
        )
    finally:
        if reads is not None:
            reads.dispose()
        store.dispose()
    if fmt == "json":
        click.echo(json.dumps(explanation_json(exp, dictionary), ensure_ascii=False, indent=2))
    else:
        click.echo(explanation_text(exp, dictionary), nl=False)
