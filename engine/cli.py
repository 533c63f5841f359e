"""Command line: thin commands over the engine. The one place errors become exit codes.

Exit codes: 0 success, 1 failure (invalid playbook, unreachable store, …), 2 usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from sqlalchemy.exc import SQLAlchemyError

from engine import __version__
from engine.commands import audit as audit_commands
from engine.commands import authoring, delivery, explain, importing, preview
from engine.commands import bench as bench_commands
from engine.commands import calendar as calendar_commands
from engine.commands import console as console_commands
from engine.commands import daemon as daemon_commands
from engine.commands import events as event_commands
from engine.commands import governance as governance_commands
from engine.commands import history as history_commands
from engine.commands import report as report_commands
from engine.commands import store as store_commands
from engine.core.errors import EXIT_FAILURE, EXIT_OK, EngineError, describe_failure


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="care-playbooks")
def cli() -> None:
    """Customer-care playbook engine for retail banks (客户维护剧本引擎)."""


COMMANDS: tuple[click.Command, ...] = (
    store_commands.demo_data,
    store_commands.init_db,
    store_commands.purge_command,
    store_commands.stats,
    authoring.validate,
    authoring.schema,
    authoring.test_command,
    preview.dry_run,
    preview.run,
    explain.explain,
    delivery.dispatch,
    delivery.outbox_command,
    delivery.tasks_command,
    daemon_commands.daemon,
    daemon_commands.status,
    importing.import_,
    importing.check_mapping,
    event_commands.events,
    report_commands.report,
    report_commands.demo_outcomes,
    bench_commands.bench,
    console_commands.console_command,
    console_commands.users,
    audit_commands.audit,
    history_commands.history_command,
    history_commands.held_command,
    calendar_commands.calendar_command,
    governance_commands.playbook,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; an :class:`EngineError` becomes one clear line and its exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except EngineError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except SQLAlchemyError as exc:
        # a database failure mid-command (lost connection, a table dropped under us): one
        # line without the statement's parameters, which may hold personal data
        click.echo(f"error[E0105]: database error: {describe_failure(exc)}", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(EXIT_OK)
