"""A throwaway PostgreSQL cluster on 127.0.0.1 for ``bench --backend postgresql``.

The same approach as the test suite's cluster: initdb into a temp folder, durability off (the
data is rebuilt at will), a free loopback port, and, as root, every server command run as the
``postgres`` system user, because initdb and postgres refuse to run as root. The cluster is
deleted when the benchmark ends.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

USER = "postgres"
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'256MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'4GB'",
    "log_min_messages": "warning",
}


class ClusterError(RuntimeError):
    pass


def bindir() -> Path | None:
    """Folder of initdb, pg_ctl and postgres: PATH first, else the newest Debian install."""
    found = shutil.which("initdb")
    folders = [Path(found).resolve().parent] if found else []
    folders += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), reverse=True)
    for folder in folders:
        if all(os.access(folder / n, os.X_OK) for n in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


class Cluster:
    def __init__(self) -> None:
        found = bindir()
        if found is None:
            raise ClusterError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bin = found
        self.root = Path(tempfile.mkdtemp(prefix="care-bench-pg-", dir="/tmp"))
        self.port = 0
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", USER], check=True)
                user = pwd.getpwnam(USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", USER, "--"]

    def _run(self, *cmd: str) -> None:
        proc = subprocess.run(
            [*self.prefix, *cmd], cwd=self.root, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ClusterError(f"{cmd[0]} failed: {proc.stdout}{proc.stderr}")

    def start(self) -> None:
        data = self.root / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        lines = {**SETTINGS, "unix_socket_directories": f"'{self.root}'"}
        with (data / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("".join(f"{k} = {v}\n" for k, v in lines.items()))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            f"-p {self.port}",
            "start",
        )

    def database(self, name: str) -> str:
        """URL of database ``name``, created if missing (kept for the cluster's life)."""
        dsn = f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
