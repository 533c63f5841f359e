"""Serving the console with uvicorn: in the foreground (``console``) or on a thread beside
the daemon (``daemon --console-port``)."""

from __future__ import annotations

import threading
import time

import uvicorn

from engine.console.app import create_app
from engine.console.context import Console
from engine.core.errors import EngineError


class ConsoleServer:
    def __init__(self, console: Console, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_app(console),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # URLs may carry customer ids; the access log is not a record
            server_header=False,
            timeout_keep_alive=5,
            limit_concurrency=64,
        )
        self.server = uvicorn.Server(config)
        self.host, self.port = host, port
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve on a thread; return once listening, or raise when the port is taken."""
        self._thread = threading.Thread(target=self.server.run, name="console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise EngineError(
                    f"the console cannot listen on {self.host}:{self.port}",
                    code="E0612",
                    hint="is another program using the port? choose another with --console-port",
                )
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        sockets = [s for srv in getattr(self.server, "servers", []) for s in srv.sockets]
        port = sockets[0].getsockname()[1] if sockets else self.port
        return f"http://{self.host}:{port}/"
