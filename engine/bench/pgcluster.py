"""A throwaway PostgreSQL cluster: the test suite's and ``bench --backend postgresql``'s.

Why a real server and not a mock: the engine's exactly-once guarantees rest on PostgreSQL's
unique constraints, transactions and reserved-word quoting, which SQLite only approximates, and
its speed on PostgreSQL is only known by measuring one. A private cluster on a free loopback
port keeps tests and benchmarks independent of whatever PostgreSQL the machine may already run
(Debian's package starts one on 5432), and a temp folder makes it disposable.

initdb and postgres refuse to run as root, and CI runs as root, so as root every server command
runs as the ``postgres`` system user (created if missing) in a folder that user owns.

One module for both users, in the benchmark package because the product never imports it
(``engine.bench`` sits above everything the engine ships; the layers contract in
pyproject.toml keeps it so), and the tests import it from there. What differs between them is
only the server's settings: see :data:`BASE_SETTINGS` and the ``settings`` of
:class:`PgCluster`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_USER = "postgres"
"""The OS user (and database superuser) the cluster runs as when we are root."""

_DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"

BASE_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    # Durability buys nothing for a cluster that is deleted when its user is done.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
}
"""postgresql.conf lines of every throwaway cluster; a user's own ``settings`` add to or
override them (values as postgresql.conf spells them, strings quoted)."""


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message carries the log."""


def find_bindir(path: str | None = None) -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when there is none.

    PATH wins (a deliberate choice by whoever set it up); otherwise the newest Debian install,
    because Debian keeps the server binaries out of PATH. The three must come from one folder:
    pg_ctl starts the ``postgres`` next to it, and initdb and postgres must share a version.
    """
    candidates: list[Path] = []
    on_path = shutil.which("initdb", path=path)
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(
        (Path(p) for p in glob.glob(_DEBIAN_GLOB)),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    candidates.extend(debian)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it when binding port 0).

    Another process may take it before the server binds; :meth:`PgCluster.start` retries.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_server_user() -> pwd.struct_passwd:
    """The ``postgres`` account, created as a system user when the machine has none."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        _run(["useradd", "--system", "--no-create-home", SERVER_USER], what="useradd")
        return pwd.getpwnam(SERVER_USER)


def _run(cmd: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    """Run a command to completion; raise ClusterError with its output when it fails."""
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
            f"{proc.stdout}{proc.stderr}".rstrip()
        )
    return proc.stdout


class PgCluster:
    """One initdb'd data folder and the server running on it, owned by this process.

    Use :meth:`start` then :meth:`stop` (idempotent, also registered with atexit so an
    interpreter exit that skips fixture teardown still stops the server). ``settings`` are
    postgresql.conf lines on top of :data:`BASE_SETTINGS` (the benchmark gives the server
    memory to work with); ``prefix`` names the temp folder, so a leftover says whose it was.
    """

    def __init__(
        self,
        bindir: Path,
        *,
        settings: Mapping[str, str] | None = None,
        prefix: str = "care-pg-",
    ) -> None:
        self.bindir = bindir
        self.settings = {**BASE_SETTINGS, **(settings or {})}
        self.prefix = prefix
        self.port = 0
        self.root: Path | None = None
        self._as_root = os.geteuid() == 0
        self._runner: list[str] = []
        self._names = itertools.count(1)
        self._running = False

    @classmethod
    def found(
        cls, *, settings: Mapping[str, str] | None = None, prefix: str = "care-pg-"
    ) -> PgCluster:
        """A cluster on the binaries :func:`find_bindir` finds; ClusterError when there are none."""
        bindir = find_bindir()
        if bindir is None:
            raise ClusterError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH or in "
                f"{_DEBIAN_GLOB}"
            )
        return cls(bindir, settings=settings, prefix=prefix)

    # --- paths -----------------------------------------------------------------------------

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise ClusterError("the cluster has not been created")
        return self.root

    @property
    def datadir(self) -> Path:
        return self._root / "data"

    @property
    def logfile(self) -> Path:
        return self._root / "server.log"

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, *, attempts: int = 3) -> None:
        """Create the folder, initdb it and start the server on a free loopback port."""
        self._make_root()
        self._server(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.datadir),
                "--username",
                SERVER_USER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            what="initdb",
        )
        self._write_settings()
        self._allow_replication()
        self._launch(attempts)

    def start_standby(
        self,
        *,
        settings: Mapping[str, str] | None = None,
        prefix: str = "care-pg-standby-",
        attempts: int = 3,
    ) -> PgCluster:
        """A streaming replica of this running cluster on its own free port, started and owned
        by the caller (stop it like any cluster): ``pg_basebackup -R`` copies the data folder
        and writes the standby's ``primary_conninfo``, so it follows this cluster's WAL.

        Why here: replica reads are only believable against a real standby (hot-standby
        snapshots, replay that can be paused), and this module already knows how to run
        server commands as the postgres user. ``settings`` are the standby's own lines on top
        of the primary's (e.g. ``log_statement`` to see what it was asked)."""
        if not self._running:
            raise ClusterError("start the primary before its standby")
        standby = PgCluster(
            self.bindir, settings={**self.settings, **(settings or {})}, prefix=prefix
        )
        try:
            standby._make_root()
            standby._server(
                [
                    str(self.bindir / "pg_basebackup"),
                    "--pgdata",
                    str(standby.datadir),
                    "--dbname",
                    self._admin_dsn(),
                    "--write-recovery-conf",
                    "--wal-method",
                    "stream",
                    "--checkpoint",
                    "fast",
                    "--no-sync",
                ],
                what="pg_basebackup",
            )
            standby._write_settings()
            standby._launch(attempts)
        except BaseException:
            standby.stop()  # no half-made standby folder left behind
            raise
        return standby

    def _launch(self, attempts: int) -> None:
        """Start the server on the data folder, retrying on another port if ours was taken."""
        atexit.register(self.stop)
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            try:
                self._server(
                    [
                        str(self.bindir / "pg_ctl"),
                        "--pgdata",
                        str(self.datadir),
                        "--log",
                        str(self.logfile),
                        "--wait",
                        "--timeout",
                        "60",
                        "-o",
                        f"-p {self.port}",
                        "start",
                    ],
                    what="pg_ctl start",
                )
            except ClusterError as exc:
                log = self._log_tail()
                # The port went to someone else between free_port() and the bind: try another.
                if attempt < attempts and "could not bind" in log:
                    continue
                raise ClusterError(f"{exc}\n--- server log ---\n{log}") from None
            self._running = True
            return

    def stop(self) -> None:
        """Stop the server (immediate mode: nothing here is worth a checkpoint) and delete it."""
        root = self.root
        if root is None:
            return
        try:
            if self._running or (root / "data" / "postmaster.pid").exists():
                self._stop_server()
        finally:
            self._running = False
            self.root = None
            atexit.unregister(self.stop)
            shutil.rmtree(root, ignore_errors=True)
            if root.exists():
                raise ClusterError(f"could not delete the cluster folder {root}")

    def _stop_server(self) -> None:
        pidfile = self.datadir / "postmaster.pid"
        try:
            self._server(
                [
                    str(self.bindir / "pg_ctl"),
                    "--pgdata",
                    str(self.datadir),
                    "--mode",
                    "immediate",
                    "--wait",
                    "stop",
                ],
                what="pg_ctl stop",
            )
        except ClusterError:
            # pg_ctl could not do it (a broken data folder?): end our postmaster by its pid.
            pid = _postmaster_pid(pidfile)
            if pid is None:
                raise
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
            _wait_gone(pid, timeout=10.0)

    # --- databases -------------------------------------------------------------------------

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this cluster, driven by psycopg 3."""
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh, empty database and return its name (test_1, test_2, …)."""
        name = f"test_{next(self._names)}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def database(self, name: str) -> str:
        """The URL of database ``name``, created if missing and kept for the cluster's life:
        the benchmark names one per store size and builds it once."""
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if a test leaked a connection to it (FORCE ends those)."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def database_names(self) -> list[str]:
        """Names of the non-template databases, to check that tests clean up after themselves."""
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def _admin(self, statement: sql.Composed) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block, hence autocommit.
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            conn.execute(statement)

    def _admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={SERVER_USER} dbname=postgres"

    # --- helpers ---------------------------------------------------------------------------

    def _make_root(self) -> None:
        # As root the folder goes under /tmp (world-traversable) whatever TMPDIR says, because
        # the postgres user must reach it; mkdtemp makes it 0700, then it is handed over.
        parent = "/tmp" if self._as_root else None
        root = Path(tempfile.mkdtemp(prefix=self.prefix, dir=parent))
        self.root = root
        if self._as_root:
            user = _ensure_server_user()
            os.chown(root, user.pw_uid, user.pw_gid)
            self._runner = _switch_user_prefix()

    def _write_settings(self) -> None:
        settings = dict(self.settings)
        # The socket lives in our folder, not /var/run/postgresql (absent or not ours).
        settings["unix_socket_directories"] = f"'{self._root}'"
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf = self.datadir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as fh:  # appending keeps the file's owner
            fh.write("\n# care-playbooks throwaway cluster\n" + lines)

    def _allow_replication(self) -> None:
        """Let a standby on loopback stream from this cluster (:meth:`start_standby`).

        initdb of PostgreSQL 10 and later already writes this line with ``--auth trust``, and
        its defaults (``wal_level = replica``, ``max_wal_senders = 10``) allow streaming; the
        line is added only where an older or differently packaged initdb left it out."""
        hba = self.datadir / "pg_hba.conf"
        text = hba.read_text(encoding="utf-8")
        wanted = "host replication all 127.0.0.1/32 trust"
        if not any(line.split() == wanted.split() for line in text.splitlines()):
            with hba.open("a", encoding="utf-8") as fh:
                fh.write(wanted + "\n")

    def _server(self, cmd: list[str], *, what: str) -> str:
        """Run a server-side command, as the postgres user when we are root."""
        if not self._runner:
            return _run(cmd, what=what, cwd=self._root)
        if self._runner[0] == "su":
            full = [*self._runner, shlex.join(cmd)]
        else:
            full = [*self._runner, *cmd]
        return _run(full, what=what, cwd=self._root)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _switch_user_prefix() -> list[str]:
    """How root runs a command as the postgres user: runuser if present, else su."""
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVER_USER, "--"]
    if shutil.which("su"):
        return ["su", SERVER_USER, "-s", "/bin/sh", "-c"]
    raise ClusterError("running as root, but neither runuser nor su is available")


def _postmaster_pid(pidfile: Path) -> int | None:
    try:
        first = pidfile.read_text(encoding="utf-8").splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


def _wait_gone(pid: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise ClusterError(f"postmaster {pid} did not exit within {timeout:.0f}s")
