"""Helpers for the daemon tests: a deployment folder, daemons as real processes, waiting.

A deployment is what ``Settings(root=…)`` and the CLI (run with that folder as its working
directory) read: ``playbooks/`` written by the test, the shipped ``templates/`` copied (tests
edit them), and the repository's ``schemas/`` and ``config/`` linked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from support import REPO

from engine.core.settings import Settings
from engine.store import claims
from engine.store.models import run_claims

ORIGIN = "2026-11-20T00:00:00+08:00"


def playbook_yaml(
    pid: str,
    cron: str,
    *,
    title: str = "测试关怀",
    enabled: bool = True,
    audience: str = "    - tier: vip\n    - lifecycle_stage: {in: [growth, dormant, new]}\n",
) -> str:
    return (
        f"id: {pid}\ntitle: {title}\nenabled: {'true' if enabled else 'false'}\n"
        f'category: service\ntrigger:\n  schedule: "{cron}"\naudience:\n  all:\n{audience}'
        "actions:\n"
        "  - task:\n      assignee: manager\n      kind: call\n"
        '      title: "回访 {{ customer.name }}"\n      due_in: 3d\n      priority: normal\n'
        "  - sms:\n      template: vip_inactive_60d.sms.j2\n"
    )


def deployment(root: Path, playbooks: Mapping[str, str]) -> Settings:
    (root / "playbooks").mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "templates", root / "templates", dirs_exist_ok=True)
    for name in ("schemas", "config"):
        if not (root / name).exists():
            (root / name).symlink_to(REPO / name, target_is_directory=True)
    for name, text in playbooks.items():
        (root / "playbooks" / name).write_text(text, encoding="utf-8")
    return Settings(root=root)


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CARE_DB"}


class Processes:
    """Starts ``python runner.py ARGS`` in a deployment folder (output to a log) and kills
    whatever is still running when the test ends, passed or failed."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, root: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, str(REPO / "runner.py"), *args],
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env(),
            )
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            kill(proc)


def daemon_args(db_url: str, epoch: float, *extra: str, speed: int = 3600) -> list[str]:
    """A rehearsal daemon: 20 Nov 2026 from midnight, ``speed`` schedule seconds per wall
    second (an hour per second by default), a grace long enough that no slot is ever missed."""
    return [
        "daemon",
        "--db",
        db_url,
        "--rehearse-from",
        ORIGIN,
        "--speed",
        str(speed),
        "--rehearse-epoch",
        repr(epoch),
        "--grace",
        "365d",
        "--no-dispatch",
        *extra,
    ]


def logged(log: Path, *needles: str) -> int:
    """How many lines of the log contain every needle."""
    if not log.exists():
        return 0
    lines = log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if all(n in line for n in needles))


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM and wait: the daemon's graceful stop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # SIGKILL: no cleanup of any kind
    proc.wait(timeout=30)


def claims_by_slot(store: Engine, playbook_id: str) -> dict[str, Any]:
    with store.connect() as conn:
        rows = conn.execute(select(run_claims).where(run_claims.c.playbook_id == playbook_id)).all()
    return {r.slot: r for r in rows}


def status_json(root: Path, db_url: str) -> dict[str, Any]:
    """``python runner.py status --format json`` in the deployment folder."""
    result = subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "status", "--db", db_url, "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def enabled_since_yesterday(store: Engine, playbook_id: str, cron: str) -> None:
    """Test setup: the playbook counts as enabled since 19 Nov, so every slot of 20 Nov is
    due whenever the (possibly slow to start) daemons get going."""
    since = dt.datetime(2026, 11, 19, 0, 0)  # naive UTC, as schedule_state keeps it
    with store.begin() as conn:
        claims.mark_enabled(conn, playbook_id, since=since, cron=cron, now=since)
