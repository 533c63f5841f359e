"""``daemon`` (run every enabled playbook on its schedule, and the dispatcher) and ``status``."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

import click

from engine.commands import common
from engine.commands.console import make_console
from engine.console.server import ConsoleServer
from engine.core.clock import utc_now
from engine.core.dictionary import load_dictionary
from engine.core.durations import DurationError, parse_duration
from engine.core.errors import EngineError, UsageError
from engine.core.observability import LOGGER, event, setup_logging
from engine.daemon.scheduler import Daemon, DaemonConfig, Dispatch
from engine.daemon.timesource import TimeSource
from engine.delivery.dispatcher import Dispatcher
from engine.events.server import TOKEN_ENV, EventServer
from engine.governance.gate import open_gate
from engine.playbook.validation import Validator
from engine.reports.status import gather, render_text
from engine.store.db import require_tables
from engine.store.models import CUSTOMER_TABLES, ENGINE_TABLES
from engine.store.partitions import Partition, check_partition_column, claim_scheme
from engine.store.replica import ReplicaConfig


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value <= 0:
        raise click.BadParameter("must be a positive number of seconds")
    return value


@click.command("daemon")
@common.db_option
@common.replica_options
@common.partition_option
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="a slot missed while no daemon ran is caught up on start if it is at most this late "
    "(30min, 4h, 1d); older ones are recorded as missed",
)
@click.option(
    "--lease",
    default=60.0,
    show_default=True,
    callback=_seconds,
    help="seconds: a daemon that stops renewing its claims for this long is taken "
    "for dead, and its slots are resumed by another",
)
@click.option(
    "--tick",
    default=15.0,
    show_default=True,
    callback=_seconds,
    help="seconds between sweeps for lapsed claims and missed wake-ups",
)
@click.option(
    "--reload-every",
    default=2.0,
    show_default=True,
    callback=_seconds,
    help="seconds between checks of playbooks/ and templates/",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="playbooks executed at the same time",
)
@click.option(
    "--dispatch/--no-dispatch",
    default=True,
    show_default=True,
    help="deliver the outbox beside the runs (config/channels.yaml)",
)
@click.option(
    "--dispatch-every",
    default=5.0,
    show_default=True,
    callback=_seconds,
    help="seconds between dispatcher rounds when idle",
)
@click.option(
    "--escalate-every",
    default=300.0,
    show_default=True,
    callback=_seconds,
    help="seconds between escalations of overdue tasks (config/policy.yaml tasks:)",
)
@click.option(
    "--events/--no-events",
    "host_events",
    default=True,
    show_default=True,
    help="host the event playbooks: process stored events, close absence windows",
)
@click.option(
    "--event-every",
    default=1.0,
    show_default=True,
    callback=_seconds,
    help="seconds between reads of newly stored events",
)
@click.option(
    "--events-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="also accept events over HTTP on this port (POST /events, bearer token from "
    "CARE_EVENTS_TOKEN), as `events serve` does",
)
@click.option(
    "--events-host",
    default="127.0.0.1",
    show_default=True,
    help="address the HTTP endpoint listens on",
)
@click.option(
    "--console-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="also serve the web console on this port (as `console` does), from this process",
)
@click.option(
    "--console-host",
    default="127.0.0.1",
    show_default=True,
    help="address the console listens on",
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path),
    default=None,
    help="write Prometheus counters to this file (node_exporter textfile collector)",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="serve Prometheus counters on 127.0.0.1:PORT/metrics",
)
@click.option(
    "--metrics-every",
    default=15.0,
    show_default=True,
    callback=_seconds,
    help="seconds between metric refreshes",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="structured lines: key=value text, or one JSON object",
)
@click.option(
    "--rehearse-from",
    default=None,
    help="rehearsal: run the schedule on a clock that starts at this ISO moment "
    "(use a copy of the store, and --no-dispatch unless the channels are test ones)",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    callback=_seconds,
    help="rehearsal: how many times faster than real time the clock runs",
)
@click.option(
    "--rehearse-epoch",
    type=float,
    default=None,
    help="rehearsal: Unix time at which the clock read --rehearse-from (default: "
    "now); give restarted daemons the same value so they agree on the time",
)
def daemon(
    db_url: str | None,
    grace: str,
    lease: float,
    tick: float,
    reload_every: float,
    workers: int,
    dispatch: bool,
    dispatch_every: float,
    escalate_every: float,
    host_events: bool,
    event_every: float,
    events_port: int | None,
    events_host: str,
    console_port: int | None,
    console_host: str,
    metrics_file: Path | None,
    metrics_port: int | None,
    metrics_every: float,
    log_format: str,
    rehearse_from: str | None,
    speed: float,
    rehearse_epoch: float | None,
    replica: ReplicaConfig | None,
    partition: Partition | None,
) -> None:
    """Run every enabled playbook on its schedule until SIGTERM/SIGINT (exit 0).

    Playbook and template edits are picked up without a restart; an invalid edit keeps the
    last good version running. Several daemons may share one PostgreSQL store.
    """
    # first of all: a SIGTERM while the daemon is still starting must also end in a clean stop
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings = common.settings()
    try:
        grace_delta = parse_duration(grace)
    except DurationError as exc:
        raise UsageError(f"--grace: {exc}", code="E0303") from exc
    time_source = TimeSource()
    if rehearse_from is not None:
        origin, _ = common.parse_as_of(rehearse_from, settings)
        time_source = TimeSource.rehearsal(origin, speed, rehearse_epoch)
    elif speed != 1.0 or rehearse_epoch is not None:
        raise UsageError(
            "--speed and --rehearse-epoch only apply to a rehearsal",
            code="E0303",
            hint="add --rehearse-from ISO-MOMENT, or drop them",
        )
    config = DaemonConfig(
        grace=grace_delta,
        lease=dt.timedelta(seconds=lease),
        tick=tick,
        reload_interval=reload_every,
        workers=workers,
        dispatch_interval=dispatch_every,
        escalate_interval=escalate_every,
        metrics_interval=metrics_every,
        metrics_file=metrics_file,
        metrics_port=metrics_port,
        events=host_events,
        event_interval=event_every,
        partition=partition,
    )
    token = os.environ.get(TOKEN_ENV, "").strip()
    if events_port is not None and (not host_events or len(token) < 16):
        raise UsageError(
            f"--events-port needs --events and {TOKEN_ENV} set to the bearer token clients "
            "must send (at least 16 characters)",
            code="E0704",
            hint="e.g. export CARE_EVENTS_TOKEN=$(openssl rand -hex 24)",
        )
    dictionary = load_dictionary(settings.dictionary_path)
    store = common.store(settings, db_url)
    require_tables(store, CUSTOMER_TABLES + ENGINE_TABLES)
    if partition is not None:
        check_partition_column(store, dictionary)
    setup_logging(log_format, logging.INFO)
    # checked once now (a refusal stops the start), then before every run: a fallback to the
    # primary is logged as replica.fallback
    reads = common.replica(store, replica, say=False)

    closer = None
    hook: Dispatch | None = None
    if dispatch:
        # The dispatcher is one object reused round after round.

        dispatcher = Dispatcher(store, settings)
        closer = dispatcher.close

        def hook(now: dt.datetime) -> Mapping[str, int]:
            return dispatcher.run_once(now).as_dict()

    runner = Daemon(
        store,
        settings,
        dictionary,
        config=config,
        time_source=time_source,
        dispatch=hook,
        replica=reads,
    )
    server = None
    console = None
    # the first partitioned daemon records K; another K, or none, is refused (E1041, E1042)
    claim_scheme(store, partition, owner=runner.owner, now=utc_now(), record=True)
    runner.start()  # playbooks loaded before the endpoint takes its first event
    try:
        if console_port is not None:
            console = ConsoleServer(
                make_console(settings, store, reads), console_host, console_port
            )
            console.start()
            event(logging.getLogger(LOGGER), "console.serving", url=console.url)
        if events_port is not None and runner.events is not None:
            try:
                server = EventServer(
                    (events_host, events_port), runner.events, token, runner.time.now
                )
            except OSError as exc:
                raise EngineError(
                    f"cannot listen on {events_host}:{events_port}: {exc.strerror}", code="E0705"
                ) from exc
            threading.Thread(target=server.serve_forever, daemon=True).start()
            bound_host, bound_port = server.server_address[:2]
            event(
                logging.getLogger(LOGGER),
                "events.serving",
                url=f"http://{bound_host!s}:{bound_port}/events",
            )
        stop.wait()
    finally:
        if console is not None:
            console.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        runner.stop()
        if closer is not None:
            closer()
        if reads is not None:
            reads.dispose()
        store.dispose()


@click.command()
@common.db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def status(db_url: str | None, fmt: str) -> None:
    """What the daemons are doing: playbooks with next and last runs, reload errors, missed
    and failed slots, outbox backlog, dead letters and open tasks."""
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    catalog = Validator(settings, dictionary).validate_paths([settings.playbooks_dir])
    store = common.store(settings, db_url)
    require_tables(store, ENGINE_TABLES)
    try:
        doc = gather(
            store, catalog, dt.datetime.now(dt.UTC), settings.timezone, settings.calendar_dir
        )
        # with governance on: the same gate as run and the daemon, on the folders as they are
        gate = open_gate(store, settings)
        if gate is not None:
            doc["governance"] = [
                {
                    "playbook": w.playbook_id,
                    "file": w.file,
                    "reason": w.reason,
                    "live_version": w.live_version,
                    "words": w.words,
                }
                for w in gate.admit(catalog.playbooks).withheld
            ]
    finally:
        store.dispose()
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(render_text(doc))
