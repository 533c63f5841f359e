"""A small HTTP endpoint for events: ``POST /events`` with a bearer token.

Bound to 127.0.0.1 unless told otherwise; the token comes from the environment variable IT
sets (``CARE_EVENTS_TOKEN``) and is compared in constant time. The body is one JSON event, a
JSON array of events, or JSON Lines; bodies over the limit are refused before they are read.
Every refusal is a 4xx with a JSON reason; bad events inside an accepted body are listed
with their index and reason, and the others are processed.

    200 {"accepted": 2, "duplicates": 0, "rejected": [], "matches": {"acted": 1}}
    400 {"error": "bad_json", "message": "…"}     401 missing/wrong token
    404 unknown path   405 wrong method   411 no Content-Length   413 body too large
    415 not JSON       422 every event in the body was rejected
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from engine.core.observability import error_text, event
from engine.events.processor import Handled, Report
from engine.events.wire import loads
from engine.triggers.event_model import Rejected

MAX_BODY = 1024 * 1024
MAX_EVENTS = 10_000
MAX_CONNECTIONS = 32
"""Connections served at once; one more is answered 503 at once instead of queuing a thread."""
SOCKET_TIMEOUT = 10.0
"""Seconds a connection may stay silent (headers or body) before it is closed."""
TOKEN_ENV = "CARE_EVENTS_TOKEN"
LOG = logging.getLogger("engine.events")
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")


class Processing(Protocol):
    """What the endpoint drives: an :class:`EventProcessor`, or the daemon's
    :class:`~engine.events.host.EventHost`."""

    def process(self, items: Iterable[tuple[str, Any]], now: dt.datetime) -> Report: ...

    def tick(self, now: dt.datetime) -> list[Handled]: ...


class EventServer(ThreadingHTTPServer):
    """The endpoint around one event processor; requests are processed one at a time
    (the processor is not thread-safe), connections are handled in threads."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        processor: Processing,
        token: str,
        clock: Callable[[], dt.datetime],
        max_body: int = MAX_BODY,
    ) -> None:
        super().__init__(address, _Handler)
        self.processor = processor
        self.token = token.encode()
        self.clock = clock
        self.max_body = max_body
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, but never more than MAX_CONNECTIONS: a flood of slow
        clients gets 503 answers, not the process's every thread."""
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, never a traceback: a client that went away or stalled is routine
        (debug), anything else is a warning with the error's first line (redacted)."""
        exc = sys.exc_info()[1]
        routine = isinstance(exc, ConnectionError | TimeoutError)
        event(
            LOG,
            "events.connection_error",
            logging.DEBUG if routine else logging.WARNING,
            error=error_text(exc) if exc is not None else "unknown",
        )

    def tick(self) -> None:
        """Close due absence windows; the serve loop calls this every minute."""
        with self.lock:
            self.processor.tick(self.clock())


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 56\r\n\r\n"
    b'{"error": "busy", "message": "too many connections now"}'
)


class _Handler(BaseHTTPRequestHandler):
    server: EventServer
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT  # a silent client is dropped, not waited on for ever

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the access log would carry customer ids; counts are in the responses

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok"})
        else:
            self._send(HTTPStatus.NOT_FOUND, _error("not_found", "POST events to /events"))

    def do_PUT(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, _error("method", "use POST /events"))

    do_DELETE = do_PATCH = do_PUT

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/events":
            self._drain_or_close()
            self._send(HTTPStatus.NOT_FOUND, _error("not_found", "POST events to /events"))
            return
        if not self._authorised():
            self.close_connection = True
            self._send(
                HTTPStatus.UNAUTHORIZED,
                _error("unauthorised", "send 'Authorization: Bearer <token>'"),
                {"WWW-Authenticate": "Bearer"},
            )
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            self._send(HTTPStatus.LENGTH_REQUIRED, _error("length_required", "send Content-Length"))
            return
        length = int(length_text)
        if length > self.server.max_body:
            self.close_connection = True
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                _error("too_large", f"the body limit is {self.server.max_body} bytes; split it"),
            )
            return
        body = self.rfile.read(length)
        kind = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if kind not in JSON_TYPES:
            self._send(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                _error("media_type", f"send one of: {', '.join(JSON_TYPES)}"),
            )
            return
        items = _decode(body, kind)
        if isinstance(items, Rejected):
            self._send(HTTPStatus.BAD_REQUEST, _error(items.reason, items.message))
            return
        with self.server.lock:
            report = self.server.processor.process(items, self.server.clock())
        rejected = [
            {"index": int(source.split("#")[1]), "reason": r.reason, "message": r.message}
            for source, r in report.rejected
        ]
        summary = report.summary()
        payload = {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected": rejected,
            "matches": summary["matches"],
        }
        if rejected and not report.accepted and not report.duplicates:
            self._send(HTTPStatus.UNPROCESSABLE_ENTITY, payload)
        else:
            self._send(HTTPStatus.OK, payload)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self.server.token)

    def _drain_or_close(self) -> None:
        self.close_connection = True

    def _send(
        self, status: HTTPStatus, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


def _decode(body: bytes, kind: str) -> list[tuple[str, Any]] | Rejected:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected("bad_encoding", "the body is not UTF-8")
    if kind != "application/json":
        lines = [line for line in text.splitlines() if line.strip()]
        items: list[tuple[str, Any]] = []
        for i, line in enumerate(lines):
            try:
                items.append((f"http#{i}", loads(line)))
            except ValueError as exc:
                items.append((f"http#{i}", Rejected("bad_json", f"line {i + 1}: {exc}")))
        return items[:MAX_EVENTS] if len(items) <= MAX_EVENTS else _too_many()
    try:
        value = loads(text)
    except ValueError as exc:
        return Rejected("bad_json", f"the body is not JSON: {str(exc)[:120]}")
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_EVENTS:
        return _too_many()
    if not values:
        return Rejected("empty", "no events in the body")
    return [(f"http#{i}", v) for i, v in enumerate(values)]


def _too_many() -> Rejected:
    return Rejected("too_many", f"at most {MAX_EVENTS} events per request")
