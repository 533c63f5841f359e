"""What the daemon tells people and machines: structured log lines and Prometheus counters.

Log lines are ``event key=value …`` (or one JSON object per line with ``--log-format json``),
so a log shipper can parse them without regular expressions. Only ids, counts and times are
logged; as a second line of defence every value passes through :func:`redact`, which masks
anything shaped like a mobile number, an ID card number or an e-mail address (a database
error, for one, quotes the parameters of the failed statement).

Counters live in a :class:`Metrics` object the daemon owns (its own registry, no global
state), written as a Prometheus text file for node_exporter's textfile collector and/or served
on ``127.0.0.1:PORT/metrics``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client import write_to_textfile as _write_textfile

from engine.core.masking import mask_email, mask_id, mask_phone

LOGGER = "engine.daemon"

# Outbox rows the dispatcher gave up on: 'failed' after the last attempt
# (engine/delivery/dispatcher.py);
# 'dead' counts too, should a separate dead-letter status ever be added.
DEAD_LETTER_STATUSES = ("failed", "dead")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ID_CARD = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")


def redact(text: str) -> str:
    """Mask e-mail addresses, ID card numbers and mobile numbers anywhere in ``text``."""
    text = _EMAIL.sub(lambda m: mask_email(m.group()), text)
    text = _ID_CARD.sub(lambda m: mask_id(m.group()), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group()), text)


def error_text(exc: BaseException) -> str:
    """An exception as one redacted line, fit for a log or a status table."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return redact(f"{type(exc).__name__}: {lines[0] if lines else type(orig).__name__}")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event: a stable name and its fields."""
    logger.log(level, name, extra={"fields": fields})


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = error_text(record.exc_info[1])
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
            timespec="milliseconds"
        )
        message = redact(record.getMessage())
        clean = {k: _clean(v) for k, v in fields.items()}
        if self.as_json:
            head = {"ts": moment, "level": record.levelname.lower(), "event": message}
            return json.dumps({**head, **clean}, ensure_ascii=False, default=str)
        pairs = " ".join(f"{k}={_logfmt(v)}" for k, v in clean.items())
        return f"{moment} {record.levelname.lower():<7} {message}" + (f" {pairs}" if pairs else "")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _logfmt(value: Any) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Send the daemon's events (and APScheduler's errors) to stderr as structured lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    # APScheduler only wakes the daemon (catch-up and misfires are decided from the claims),
    # so its warnings about skipped or late wake-ups are noise; its errors still show.
    for name, lvl in ((LOGGER, level), ("apscheduler", logging.ERROR)):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(lvl)
        logger.propagate = False
    return handler


class Metrics:
    """The daemon's counters and gauges, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "care_runs",
            "Slots executed, by playbook and outcome",
            ["playbook", "status"],
            registry=r,
        )
        self.calendar_estimated = Counter(
            "care_calendar_estimated_runs",
            "Runs whose calendar conditions rested on an estimated day (no official holiday "
            "schedule for that year), by playbook and what policy did: held or ran",
            ["playbook", "decision"],
            registry=r,
        )
        self.missed = Counter(
            "care_missed_runs",
            "Slots recorded as missed (beyond the grace period)",
            ["playbook"],
            registry=r,
        )
        self.lag = Gauge(
            "care_scheduler_lag_seconds",
            "How late after its slot the last run of a playbook started (schedule clock)",
            ["playbook"],
            registry=r,
        )
        self.last_success = Gauge(
            "care_last_success_timestamp_seconds",
            "When a playbook last finished a slot",
            ["playbook"],
            registry=r,
        )
        self.reload_failures = Counter(
            "care_reload_failures",
            "Playbook files rejected by a reload (last good kept)",
            registry=r,
        )
        self.invalid_files = Gauge(
            "care_playbook_files_invalid",
            "Playbook files currently failing validation",
            registry=r,
        )
        self.active = Gauge("care_playbooks_active", "Enabled playbooks scheduled", registry=r)
        self.withheld = Gauge(
            "care_playbooks_withheld",
            "Playbooks governance keeps from running (changed_outside_workflow, paused, …)",
            ["reason"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "care_outbox_pending", "Messages waiting to be sent", registry=r
        )
        self.dead_letters = Gauge(
            "care_outbox_dead_letters", "Messages given up after their last attempt", registry=r
        )
        self.tasks_open = Gauge("care_tasks_open", "Open tasks for managers", registry=r)
        self.dispatch_errors = Counter(
            "care_dispatch_errors", "Dispatcher passes that raised", registry=r
        )
        self.heartbeat = Gauge(
            "care_daemon_heartbeat_timestamp_seconds", "Last heartbeat of this daemon", registry=r
        )
        self._server: Any = None

    def write_textfile(self, path: str) -> None:
        """Write atomically (temp file + rename), as node_exporter's textfile collector needs."""
        _write_textfile(path, self.registry)

    def serve(self, port: int) -> int:
        """Serve /metrics on 127.0.0.1 only: the counters are for the local monitoring agent."""
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
