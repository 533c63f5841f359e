"""HTTP delivery shared by the SMS gateway and webhooks: a pool of kept-alive connections,
and the mapping from HTTP outcomes to sent / retry / failed.

2xx is delivered; 409 means the gateway already has this idempotency key (delivered before);
408, 425, 429 and 5xx, timeouts and broken connections are worth retrying; any other 4xx is
a message the gateway will never accept, so it goes straight to the dead letters.

The client is the standard library's ``http.client``, one connection per sending thread at a
time, reused while the gateway keeps it open. It costs a fraction of a general-purpose client
per request, which is what lets one dispatcher keep a gateway busy (thousands of messages a
second); redirects are never followed and no proxy is consulted: gateways are addressed
directly, as IT configured them.
"""

from __future__ import annotations

import http.client
import json
import queue
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from engine.channels.base import Result

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    retry_after: str | None


class Pool:
    """At most ``size`` requests in flight (the endpoint's ``concurrency``, whatever the
    number of sending threads; a request waits up to ``timeout`` for its turn) and up to
    ``size`` idle connections per host, shared by the sending threads. A connection the far
    side closed while idle is noticed before reuse (it turns readable) and replaced, so a
    message is not failed because of a stale socket."""

    def __init__(self, timeout: float, size: int) -> None:
        self.timeout = timeout
        self.size = size
        self.slots = threading.BoundedSemaphore(size)
        self.idle: dict[tuple[str, str, int], queue.LifoQueue[http.client.HTTPConnection]] = {}
        self.tls = ssl.create_default_context()
        self.closed = False
        self.targets: dict[str, tuple[tuple[str, str, int], str]] = {}  # url -> (host, path)

    def target(self, url: str) -> tuple[tuple[str, str, int], str]:
        """(scheme, host, port) and the request target of ``url``, parsed once."""
        found = self.targets.get(url)
        if found is None:
            parts = urlsplit(url)
            scheme = parts.scheme or "http"
            port = parts.port or (443 if scheme == "https" else 80)
            path = parts.path or "/"
            if parts.query:
                path = f"{path}?{parts.query}"
            found = self.targets[url] = ((scheme, parts.hostname or "", port), path)
        return found

    def _queue(self, key: tuple[str, str, int]) -> queue.LifoQueue[http.client.HTTPConnection]:
        found = self.idle.get(key)
        if found is None:  # racing threads may both create one: setdefault keeps the first
            found = self.idle.setdefault(key, queue.LifoQueue(self.size))
        return found

    def take(self, key: tuple[str, str, int]) -> http.client.HTTPConnection:
        idle = self._queue(key)
        while True:
            try:
                conn = idle.get_nowait()
            except queue.Empty:
                break
            if _alive(conn):
                return conn
            conn.close()
        scheme, host, port = key
        if scheme == "https":
            return _TlsConnection(host, port, timeout=self.timeout, context=self.tls)
        return _Connection(host, port, timeout=self.timeout)

    def give(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        if self.closed:
            conn.close()
            return
        try:
            self._queue(key).put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        self.closed = True
        for idle in list(self.idle.values()):
            while True:
                try:
                    idle.get_nowait().close()
                except queue.Empty:
                    break


class _Connection(http.client.HTTPConnection):
    """Sends small requests at once (no Nagle wait for the peer's delayed ACK)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client(timeout: float, concurrency: int) -> Pool:
    return Pool(timeout, concurrency)


def post(
    pool: Pool,
    url: str,
    *,
    json_body: object | None = None,
    content: str | None = None,
    headers: dict[str, str],
) -> Result:
    if content is not None:
        payload = content.encode("utf-8")
    else:
        payload = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": "application/json", **headers}
    try:
        answer = _exchange(pool, url, payload, all_headers)
    except TimeoutError as exc:
        return Result("retry", f"timeout: {type(exc).__name__}")
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, closed unanswered
        return Result("retry", f"connection: {type(exc).__name__}: {exc}"[:300])
    return verdict(answer)


def _exchange(pool: Pool, url: str, payload: bytes, headers: dict[str, str]) -> Answer:
    if not pool.slots.acquire(timeout=pool.timeout):
        raise TimeoutError("no free connection slot")
    try:
        return _exchange_in_slot(pool, url, payload, headers)
    finally:
        pool.slots.release()


def _exchange_in_slot(pool: Pool, url: str, payload: bytes, headers: dict[str, str]) -> Answer:
    key, target = pool.target(url)
    conn = pool.take(key)
    try:
        conn.request("POST", target, body=payload, headers=headers)
        response = conn.getresponse()
        body = response.read()
    except BaseException:
        conn.close()
        raise
    answer = Answer(
        response.status, body.decode("utf-8", "replace"), response.getheader("Retry-After")
    )
    if response.will_close:
        conn.close()
    else:
        pool.give(key, conn)
    return answer


def _alive(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive socket has nothing to read; readable means closed (or garbage)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        if hasattr(select, "poll"):  # any descriptor number, unlike select()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def verdict(answer: Answer) -> Result:
    code = answer.status
    if 200 <= code < 300 or code == 409:
        return Result.sent()
    detail = f"HTTP {code}: {answer.text[:200]}".strip()
    if code in RETRYABLE:
        return Result("retry", detail, _retry_after(answer.retry_after))
    return Result("failed", detail)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: rare from gateways; our own backoff applies
