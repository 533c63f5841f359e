"""What every command shares: options, settings, opening the store, reading --as-of, and
validating the playbook folder. Commands stay thin; the engine does the work."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import getpass
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine

from engine.core.diagnostics import format_text
from engine.core.dictionary import DataDictionary
from engine.core.errors import UsageError
from engine.core.i18n import choose_lang
from engine.core.settings import Settings
from engine.playbook.model import Playbook
from engine.playbook.validation import Catalog, Validator
from engine.store import audit
from engine.store.db import open_store
from engine.store.partitions import parse_partition
from engine.store.replica import FALLBACKS, ReplicaConfig, ReplicaReads, replica_config

F = TypeVar("F", bound=Callable[..., Any])

DB_HELP = "SQLAlchemy URL of the store (default: sqlite:///data/engine.db); env CARE_DB"
AS_OF_HELP = (
    "the moment to act as of, ISO 8601 (default: now). A date alone previews that day: "
    "each playbook at its scheduled time on it."
)


def db_option(fn: F) -> F:
    return click.option("--db", "db_url", envvar="CARE_DB", default=None, help=DB_HELP)(fn)


REPLICA_HELP = (
    "SQLAlchemy URL of a streaming replica of --db (PostgreSQL) to read the bank's data from: "
    "audiences, fields, related rows, histories. Ledger, caps, open tasks, consent before "
    "queueing and every write stay on --db; env CARE_REPLICA_DB"
)


def replica_options(fn: F) -> F:
    """``--replica-db``, ``--replica-max-lag`` and ``--replica-fallback``, handed to the
    command as one ``replica: ReplicaConfig | None`` (validated here, at the edge)."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any, replica_db: str | None, replica_max_lag: str, replica_fallback: str, **kw: Any
    ) -> Any:
        kw["replica"] = replica_config(replica_db, replica_max_lag, replica_fallback)
        return fn(*args, **kw)

    options = (
        click.option("--replica-db", "replica_db", envvar="CARE_REPLICA_DB", help=REPLICA_HELP),
        click.option(
            "--replica-max-lag",
            default="60s",
            show_default=True,
            help="the most the replica may be behind the primary (30s, 5min); beyond it, "
            "--replica-fallback decides",
        ),
        click.option(
            "--replica-fallback",
            type=click.Choice(FALLBACKS),
            default="primary",
            show_default=True,
            help="when the replica lags beyond the bound or cannot be reached: read from the "
            "primary and say so, or stop with an error",
        ),
    )
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


PARTITION_HELP = (
    "k/K: act only on partition k of K of the customers (a hash of the customer key, or of "
    "the dictionary's partition_column); K daemons with 1/K … K/K share every playbook"
)


def partition_option(fn: F) -> F:
    """``--partition k/K``, handed to the command as ``partition: Partition | None``
    (validated here, at the edge: E1040)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, partition_spec: str | None, **kw: Any) -> Any:
        kw["partition"] = parse_partition(partition_spec)
        return fn(*args, **kw)

    option = click.option("--partition", "partition_spec", default=None, help=PARTITION_HELP)
    return option(wrapper)  # type: ignore[return-value]


def replica(
    primary: Engine, config: ReplicaConfig | None, *, say: bool = True
) -> ReplicaReads | None:
    """The replica reads of a command, checked once before anything runs, so a refusal
    (SQLite, not a standby, or unfit under ``--replica-fallback stop``) comes first and alone.
    ``say``: print a fallback to the primary on stderr (the daemon logs it instead)."""
    if config is None:
        return None
    warn = (lambda m: click.echo(f"warning: {m}", err=True)) if say else None
    reads = ReplicaReads(primary, config, on_fallback=warn)
    try:
        reads.source()
    except Exception:
        reads.dispose()
        raise
    return reads


def settings() -> Settings:
    return Settings()


def store(settings: Settings, db_url: str | None, *, create: bool = False) -> Engine:
    """The store the command works on; only the commands that make stores may create one."""
    return open_store(db_url or settings.default_db_url, create=create)


def parse_as_of(text: str | None, settings: Settings) -> tuple[dt.datetime, bool]:
    """(aware moment, whether only a date was given)."""
    tz = settings.timezone
    if text is None:
        return dt.datetime.now(tz).replace(microsecond=0), False
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(), tz), True
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            f"--as-of {text!r} is not an ISO 8601 date or time",
            code="E0301",
            hint="for example 2026-11-23 or 2026-11-23T09:00+08:00",
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(tz), False


def catalog(settings: Settings, dictionary: DataDictionary, paths: Sequence[Path]) -> Catalog:
    return Validator(settings, dictionary).validate_paths(paths or [settings.playbooks_dir])


def select_playbooks(found: Catalog, wanted: Sequence[str]) -> list[Playbook]:
    """Enabled playbooks (or the named ones); invalid files are reported and left out."""
    if found.errors:
        sys.stderr.write(format_text(found.errors, found.sources, choose_lang()) + "\n")
        names = sorted({d.file for d in found.errors})
        sys.stderr.write(
            f"\n{len(found.errors)} error(s) in {', '.join(names)}; "
            "those playbooks are left out\n\n"
        )
    by_id = {p.id: p for p in found.playbooks}
    if not wanted:
        return [p for p in found.playbooks if p.enabled]
    unknown = [w for w in wanted if w not in by_id]
    if unknown:
        close = [m for u in unknown for m in difflib.get_close_matches(u, list(by_id), n=1)]
        known = f"known: {', '.join(sorted(by_id)) or 'none'}"
        raise UsageError(
            f"no valid playbook with id {', '.join(repr(u) for u in unknown)}",
            code="E0302",
            hint=(f"did you mean {', '.join(close)}? " if close else "") + known,
        )
    return [by_id[w] for w in wanted]


def os_user() -> str:
    """Who runs a command, for the audit log (``cli:NAME``); a container user may have none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_unmasking(store: Engine, subject: str, **detail: Any) -> None:
    """Personal data shown or exported unmasked from the command line: one audit entry,
    written before the data is shown (PIPL: who saw whose data, and when)."""
    customer_id = detail.pop("customer_id", None)
    audit.ensure_tables(store)  # the audit log's tables are created on first use
    with store.begin() as conn:
        audit.record(
            conn,
            actor=f"cli:{os_user()}",
            action="personal_data.show",
            subject=subject,
            customer_id=customer_id,
            detail=detail or None,
        )
