"""``events``: ingest a JSONL file, serve the HTTP endpoint, preview a file (dry-run), count.

Thin commands: :class:`~engine.events.processor.EventProcessor` does the work, the same way
the daemon will host it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from engine.commands import common
from engine.core.dictionary import load_dictionary
from engine.core.errors import EngineError, UsageError
from engine.core.settings import Settings
from engine.events.ingest import ingest, read_jsonl
from engine.events.processor import EventProcessor, Report
from engine.events.server import MAX_BODY, TOKEN_ENV, EventServer
from engine.events.store import counts
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator
from engine.reports.dryrun import report_json, report_text
from engine.store.introspect import require_deployment
from engine.triggers.event import EventTrigger
from engine.triggers.event_schema import event_schema

EVENT_SCHEMA_FILE = "event.schema.json"
TICK_SECONDS = 60.0


def _processor(
    db_url: str | None, wanted: Sequence[str], *, persist: bool, mask: bool = True
) -> tuple[Settings, EventProcessor, list[Playbook]]:
    settings = common.settings()
    dictionary = load_dictionary(settings.dictionary_path)
    validator = Validator(settings, dictionary)
    found = validator.validate_paths([settings.playbooks_dir])
    playbooks = [
        p for p in common.select_playbooks(found, wanted) if isinstance(p.trigger, EventTrigger)
    ]
    store = common.store(settings, db_url)
    require_deployment(store, dictionary)
    processor = EventProcessor(
        store,
        settings,
        dictionary,
        validator.renderer,
        persist=persist,
        mask=mask,
        keep_details=not persist,
    )
    return settings, processor, playbooks


def _clock(as_of: str | None, settings: Settings) -> Callable[[], dt.datetime]:
    if as_of is None:
        return lambda: dt.datetime.now(settings.timezone)
    moment, _day = common.parse_as_of(as_of, settings)
    return lambda: moment


def _file(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"no such file: {path}", code="E0703", hint="give a .jsonl file")
    return path


@click.group("events")
def events() -> None:
    """Event playbooks: ingest events, serve the HTTP endpoint, preview a file."""


@events.command("ingest")
@click.argument("file", type=click.Path(path_type=Path))
@common.db_option
@click.option("--as-of", "as_of", default=None, help="processing moment (default: now)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--store-only",
    is_flag=True,
    help="check and store the events, act on nothing: the running daemon processes them",
)
def ingest_command(
    file: Path, db_url: str | None, as_of: str | None, fmt: str, store_only: bool
) -> None:
    """Store and process the events of a JSON Lines file; act on every match."""
    settings, processor, playbooks = _processor(db_url, (), persist=True)
    clock = _clock(as_of, settings)
    if store_only:
        report = ingest(processor, read_jsonl(_file(file)), clock, store_only=True)
        processor.store.dispose()
        _print_report(report, fmt)
        return
    processor.restore(playbooks, clock())
    report = ingest(processor, read_jsonl(_file(file)), clock)
    processor.store.dispose()
    _print_report(report, fmt)


@events.command("dry-run")
@click.argument("file", type=click.Path(path_type=Path))
@common.db_option
@click.option("--as-of", "as_of", default=None, help="processing moment (default: now)")
@click.option("--playbook", "wanted", multiple=True, help="playbook id (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--out", type=click.Path(path_type=Path), help="write the report to a file")
@click.option("--show-personal-data", is_flag=True, help="do not mask names, phones and e-mails")
def dry_run_command(
    file: Path,
    db_url: str | None,
    as_of: str | None,
    wanted: tuple[str, ...],
    fmt: str,
    out: Path | None,
    show_personal_data: bool,
) -> None:
    """Preview which events would fire which actions. Writes nothing.

    The file's events are matched from a fresh state (stored events are not replayed); the
    ledger is read, so customers already acted on show as such."""
    settings, processor, playbooks = _processor(
        db_url, wanted, persist=False, mask=not show_personal_data
    )
    clock = _clock(as_of, settings)
    moment = clock()
    processor.restore(playbooks, moment)
    report = ingest(processor, read_jsonl(_file(file)), clock)
    processor.store.dispose()
    outcomes = [h.outcome for h in report.handled if h.outcome is not None]
    summary = {**report.summary(), "rejections": _rejections(report)}
    if fmt == "json":
        document = {**report_json(moment, outcomes, []), "events": summary}
        text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    else:
        text = report_text(moment, outcomes, []) + _summary_text(summary)
        if show_personal_data:
            text = text.replace("(personal data masked)", "(PERSONAL DATA SHOWN)")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"report written to {out}")
    else:
        click.echo(text)


@events.command("serve")
@common.db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--max-body", default=MAX_BODY, show_default=True, type=int, help="bytes")
def serve_command(db_url: str | None, host: str, port: int, max_body: int) -> None:
    """Accept events over HTTP (POST /events, bearer token from CARE_EVENTS_TOKEN)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if len(token) < 16:
        raise UsageError(
            f"set {TOKEN_ENV} to the bearer token clients must send (at least 16 characters)",
            code="E0704",
            hint="e.g. export CARE_EVENTS_TOKEN=$(openssl rand -hex 24)",
        )
    settings, processor, playbooks = _processor(db_url, (), persist=True)
    clock = _clock(None, settings)
    replayed = processor.restore(playbooks, clock())
    try:
        server = EventServer((host, port), processor, token, clock, max_body)
    except OSError as exc:
        raise EngineError(f"cannot listen on {host}:{port}: {exc.strerror}", code="E0705") from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    click.echo(
        f"listening on http://{bound_host!s}:{bound_port}/events "
        f"({len(playbooks)} event playbook(s), {replayed} stored event(s) replayed)",
        err=True,
    )
    try:
        while not stop.wait(TICK_SECONDS):
            server.tick()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        processor.store.dispose()


@events.command("stats")
@common.db_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def stats_command(db_url: str | None, fmt: str) -> None:
    """Events stored, matches by outcome, rejections by reason."""
    settings = common.settings()
    store = common.store(settings, db_url)
    require_deployment(store, load_dictionary(settings.dictionary_path))
    data = counts(store)
    store.dispose()
    if fmt == "json":
        click.echo(json.dumps(data))
    else:
        click.echo(
            f"events {data['stored']}; matches {_pairs(data['matches'])}; "
            f"rejected {_pairs(data['rejected'])}"
        )


@events.command("schema")
@click.option("--check", is_flag=True, help="fail if the file is out of date")
def schema_command(check: bool) -> None:
    """Write schemas/event.schema.json: the event format, for the bank's IT."""
    settings = common.settings()
    path = settings.schemas_dir / EVENT_SCHEMA_FILE
    text = json.dumps(event_schema(), ensure_ascii=False, indent=2) + "\n"
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise EngineError(
                f"{path} is out of date", code="E0706", hint="run `python runner.py events schema`"
            )
        click.echo(f"{path} is up to date")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


def _print_report(report: Report, fmt: str) -> None:
    summary = {**report.summary(), "rejections": _rejections(report)}
    if fmt == "json":
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    click.echo(_summary_text(summary).strip())


def _rejections(report: Report, limit: int = 100) -> list[dict[str, Any]]:
    return [
        {"source": source, "reason": r.reason, "message": r.message, "event_id": r.event_id}
        for source, r in report.rejected[:limit]
    ]


def _summary_text(summary: dict[str, Any]) -> str:
    lines = [
        "",
        f"events: read {summary['read']}, accepted {summary['accepted']}, "
        f"duplicates {summary['duplicates']}, rejected {summary['rejected']}",
        f"matches: {_pairs(summary['matches'])}",
    ]
    for r in summary["rejections"][:20]:
        lines.append(f"  rejected {r['source']}: {r['reason']}: {r['message']}")
    if summary["rejected"] > 20:
        lines.append(f"  … and {summary['rejected'] - 20} more")
    return "\n".join(lines) + "\n"


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
