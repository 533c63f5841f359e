"""Real stand-ins for the bank's delivery systems, on 127.0.0.1: an HTTP gateway (SMS and
webhooks) and an SMTP server (aiosmtpd). Both count what they receive per idempotency key and,
like a real idempotent gateway, accept a key once and acknowledge its duplicates without
delivering them again.

The HTTP gateway plays scripted failure modes, one per request:
``ok``, ``500``, ``429``, ``400``, ``hang`` (no answer until the client gives up),
``close`` (drops the connection unread), ``ok_then_close`` (delivers, then loses the answer),
``ok_idle_close`` (delivers and answers, then closes the kept-alive connection, as a gateway
does when its idle timeout passes).

Run ``python tests/gateways.py`` to start both on the ports of the shipped
``config/channels.yaml`` (8090 HTTP, 8025 SMTP) and watch a demo ``dispatch`` arrive.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from email import message_from_bytes
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

MODES = ("ok", "500", "429", "400", "hang", "close", "ok_then_close", "ok_idle_close")


class Ledger:
    """What a gateway saw, per idempotency key; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()  # every request carrying the key
        self.delivered: Counter[str] = Counter()  # accepted for delivery (at most once)
        self.duplicates: Counter[str] = Counter()  # repeats of a delivered key, dropped
        self.bodies: dict[str, Any] = {}
        self.script: list[str] = []
        self.default = "ok"
        self.idle_closed = 0  # kept-alive connections closed after an answer (ok_idle_close)
        self.in_flight: Counter[str] = Counter()  # requests being handled, per path
        self.peak: Counter[str] = Counter()  # the most at once, per path

    def plan(self, modes: Iterable[str], then: str = "ok") -> None:
        with self.lock:
            self.script = list(modes)
            self.default = then

    def next_mode(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def deliver(self, key: str, body: Any) -> bool:
        """Record a delivery; False when the key was delivered before (a duplicate)."""
        with self.lock:
            if self.delivered[key]:
                self.duplicates[key] += 1
                return False
            self.delivered[key] = 1
            self.bodies[key] = body
            return True

    def saw(self, key: str) -> None:
        with self.lock:
            self.received[key] += 1

    def enter(self, path: str) -> None:
        with self.lock:
            self.in_flight[path] += 1
            self.peak[path] = max(self.peak[path], self.in_flight[path])

    def leave(self, path: str) -> None:
        with self.lock:
            self.in_flight[path] -= 1


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a real gateway does not refuse a burst of connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client killed mid-request (the kill tests do it on purpose)
        super().handle_error(request, client_address)


class HttpGateway:
    """A threaded HTTP server; ``url(path)`` gives its address."""

    def __init__(
        self, port: int = 0, hang_seconds: float = 1.0, delay_seconds: float = 0.0
    ) -> None:
        self.ledger = Ledger()
        self.hang_seconds = hang_seconds
        self.delay_seconds = delay_seconds  # every request takes at least this long
        self.stopping = threading.Event()
        self.server = _Server(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/sms") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HttpGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def _handler(gateway: HttpGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # answer at once, not after the peer's delayed ACK

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet in tests

        def do_POST(self) -> None:
            gateway.ledger.enter(self.path)
            try:
                if gateway.delay_seconds:
                    gateway.stopping.wait(gateway.delay_seconds)
                self._post()
            finally:
                gateway.ledger.leave(self.path)

        def _post(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            key = self.headers.get("Idempotency-Key", "")
            ledger = gateway.ledger
            mode = ledger.next_mode()
            ledger.saw(key)
            if mode == "close":
                self.close_connection = True
                return
            if mode == "hang":
                gateway.stopping.wait(gateway.hang_seconds)
                self.close_connection = True
                return
            if mode in ("ok", "ok_then_close", "ok_idle_close"):
                body = json.loads(raw or b"null")
                ledger.deliver(
                    key, {"path": self.path, "body": body, "headers": dict(self.headers)}
                )
                if mode == "ok_then_close":
                    self.close_connection = True
                    return
                self._answer(200, {"accepted": key})
                if mode == "ok_idle_close":
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    with ledger.lock:
                        ledger.idle_closed += 1
            elif mode == "429":
                self._answer(429, {"error": "slow down"}, {"Retry-After": "0"})
            elif mode == "400":
                self._answer(400, {"error": "bad number"})
            else:
                self._answer(500, {"error": "internal"})

        def _answer(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class _MailHandler:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        mail = message_from_bytes(content, policy=email_policy.default)
        key = str(mail.get("X-Idempotency-Key", ""))
        self.ledger.saw(key)
        mode = self.ledger.next_mode()
        if mode == "451":
            return "451 4.3.0 mailbox busy, try later"
        if mode == "550":
            return "550 5.1.1 no such mailbox"
        self.ledger.deliver(
            key,
            {
                "to": list(envelope.rcpt_tos),
                "subject": str(mail.get("Subject", "")),
                "message_id": str(mail.get("Message-ID", "")),
                "body": _text(mail.get_payload(decode=True)),
            },
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free loopback port; ``ledger`` as for the HTTP gateway (modes: ok, 451,
    550)."""

    def __init__(self, port: int = 0) -> None:
        self.ledger = Ledger()
        self.port = port or free_port()
        self.controller = Controller(
            _MailHandler(self.ledger), hostname="127.0.0.1", port=self.port
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _text(payload: Any) -> str:
    return payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    with HttpGateway(port=8090) as http, SmtpServer(port=8025) as smtp:
        print("SMS/webhook gateway on http://127.0.0.1:8090, SMTP on 127.0.0.1:8025; Ctrl-C stops")
        seen = (0, 0)
        try:
            while True:
                time.sleep(2)
                now = (sum(http.ledger.delivered.values()), sum(smtp.ledger.delivered.values()))
                if now != seen:
                    print(f"delivered: {now[0]} SMS/webhook, {now[1]} e-mail")
                    seen = now
        except KeyboardInterrupt:
            pass
