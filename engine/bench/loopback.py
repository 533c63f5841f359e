"""A fast idempotent HTTP sink on 127.0.0.1, for measuring the dispatcher (not for tests of
failure modes: those use the scripted gateway in the test suite).

One asyncio loop in its own process answers every POST with ``200`` and counts deliveries
per ``Idempotency-Key``, dropping a repeated key as a real idempotent gateway does;
``GET /stats`` returns the counts as JSON. It parses only what it needs (request line,
``Content-Length``, ``Idempotency-Key``), so a benchmark measures the client side rather
than a Python HTTP server.

    python -m engine.bench.loopback            # prints the port, serves until killed
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

OK = b'{"accepted":true}'
_OK_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(OK)).encode()
    + b"\r\n\r\n"
    + OK
)


@dataclass
class Counts:
    received: int = 0
    delivered: int = 0
    duplicates: int = 0
    keys: set[bytes] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "delivered": self.delivered,
            "duplicates": self.duplicates,
        }


class _Protocol(asyncio.Protocol):
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end]
            length, key = 0, b""
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"idempotency-key":
                    key = value.strip()
            total = end + 4 + length
            if len(self.buffer) < total:
                break
            self.buffer = self.buffer[total:]
            out.append(self._answer(lines[0], key))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _answer(self, request_line: bytes, key: bytes) -> bytes:
        counts = self.counts
        if request_line.startswith(b"GET /stats"):
            payload = json.dumps(counts.as_dict()).encode()
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
        counts.received += 1
        if key in counts.keys:
            counts.duplicates += 1
        else:
            counts.keys.add(key)
            counts.delivered += 1
        return _OK_RESPONSE


async def _serve(port: int) -> None:
    counts = Counts()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Protocol(counts), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    sockets = server.sockets or ()
    print(sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class LoopbackGateway:
    """The sink in a child process (so it does not share the measuring interpreter's lock);
    ``url(path)`` gives its address. Use as a context manager."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> LoopbackGateway:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.bench.loopback"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,  # this engine, not another install
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def url(self, path: str = "/sms") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
