"""Section 9: the whole pack's real run split across K processes, measured rather than
estimated (``bench --partitions 1,2,4``, PostgreSQL only).

For each K, after the engine's tables are emptied (the partition scheme with them), K OS
processes start at once, each ``python -m engine run --db URL --partition k/K --as-of DAY``:
what ``runner.py run`` runs, and what an operator runs, start-up and pack validation
included. With a date alone, ``run`` takes each playbook at its own slot that day, the
moment the pack section (section 1) gives each playbook. Measured per K:

- the wall time of the whole pack, from the first start to the last exit;
- each process's own CPU time (user + system) and peak memory, from ``wait4``;
- the PostgreSQL server's CPU time over the same interval (its postmaster and the children
  it forked, from ``/proc``): on a machine with few cores the K processes and the server
  compete for them, so a speedup below K is read against it.

K = 1 is the baseline: speedup is its wall time over K's. Equal work: every K must leave the
ledger's (playbook, customer, window) rows and the outbox and task row counts of one
unpartitioned real run of the pack in process (section 1's). A playbook whose
``max_per_run`` binds is split into shares (docs/scaling.md), each partition taking *its*
first customers: for those only the number of ledger rows per window must be equal.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from engine.bench.figures import Timing, children, tree_cpu_s
from engine.bench.lab import Lab
from engine.bench.pack import real_run
from engine.bench.stores import wipe_engine_rows
from engine.core.errors import StoreError
from engine.policy import MAX_PER_RUN
from engine.store.models import (
    action_ledger,
    outbox,
    partition_scheme,
    run_holds,
    suppressions,
    tasks,
)

NOT_APPLICABLE = "SQLite has one writer: partitioned runs are measured on PostgreSQL only"


SPLIT = "its max_per_run bound within a partition: the cap's fixed split"
SHORT = "a partition had fewer customers than its share of max_per_run"


@dataclass(frozen=True)
class Work:
    """What a real run of the pack left in the store, to compare runs by."""

    ledger: dict[str, frozenset[tuple[str, str]]]  # playbook -> (customer, window)
    made: dict[str, tuple[int, int]]  # playbook -> (outbox rows, task rows)
    # playbooks whose max_per_run held customers back (their run_holds rows say so)
    capped: frozenset[str] = frozenset()

    @classmethod
    def read(cls, store: Engine) -> Work:
        c = action_ledger.c
        ledger: dict[str, set[tuple[str, str]]] = {}
        made: dict[str, list[int]] = {}
        with store.connect() as conn:
            for playbook, customer, window in conn.execute(
                select(c.playbook_id, c.customer_id, c.window)
            ):
                ledger.setdefault(str(playbook), set()).add((str(customer), str(window)))
            for i, table in enumerate((outbox, tasks)):
                for playbook, n in conn.execute(
                    select(table.c.playbook_id, func.count()).group_by(table.c.playbook_id)
                ):
                    made.setdefault(str(playbook), [0, 0])[i] = int(n)
            # the run's own limit is listed compactly (run_holds); a store's older runs may
            # still have a suppressions row per customer
            capped = {
                str(p)
                for table in (run_holds, suppressions)
                for p in conn.execute(
                    select(table.c.playbook_id).where(table.c.reason == MAX_PER_RUN).distinct()
                ).scalars()
            }
            return cls(
                {p: frozenset(rows) for p, rows in ledger.items()},
                {p: (o, t) for p, (o, t) in made.items()},
                frozenset(capped),
            )

    @property
    def ledger_rows(self) -> int:
        return sum(len(rows) for rows in self.ledger.values())

    @property
    def outbox(self) -> int:
        return sum(o for o, _ in self.made.values())

    @property
    def tasks(self) -> int:
        return sum(t for _, t in self.made.values())

    def differences(self, reference: Work) -> list[str]:
        """How this run's work differs from ``reference`` (empty: the same work).

        An uncapped playbook must leave the very same ledger rows, outbox rows and task rows.
        A playbook whose cap held customers back in the reference is compared by its number
        of ledger rows per window: each partition takes its own first customers, and so its
        messages and tasks may differ too (a task for a customer who already has an open one
        of the same kind and reason is merged into it, and other customers mean other
        overlaps). A difference in a playbook whose cap bound only within a partition is
        still a difference (the partitions did less than one run), said so, so it is not
        taken for a lost customer."""
        out = []
        for playbook in sorted(set(self.ledger) | set(reference.ledger) | set(self.made)):
            mine = self.ledger.get(playbook, frozenset())
            theirs = reference.ledger.get(playbook, frozenset())
            why = f" ({SPLIT})" if playbook in self.capped - reference.capped else ""
            if playbook in reference.capped:
                counts, expected = _per_window(mine), _per_window(theirs)
                if counts != expected:
                    # the shares add up to the cap that one run filled: fewer means a
                    # partition had fewer customers than its share
                    short = f" ({SHORT})" if counts.total() < expected.total() else ""
                    out.append(
                        f"{playbook} (capped): {dict(counts)} ledger rows by window, "
                        f"expected {dict(expected)}{short}"
                    )
                continue
            if mine != theirs:
                out.append(
                    f"{playbook}: {len(theirs - mine)} ledger row(s) missing, "
                    f"{len(mine - theirs)} extra{why}"
                )
            made, wanted = self.made.get(playbook, (0, 0)), reference.made.get(playbook, (0, 0))
            if made != wanted:
                out.append(
                    f"{playbook}: outbox {made[0]} and tasks {made[1]} rows, "
                    f"expected {wanted[0]} and {wanted[1]}{why}"
                )
        return out


def _per_window(rows: frozenset[tuple[str, str]]) -> Counter[str]:
    return Counter(window for _customer, window in rows)


@dataclass(frozen=True)
class Finished:
    """One process of a partitioned run: its share, exit code, wall and CPU seconds."""

    partition: str
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    log: str  # the tail of its output, kept when it failed


def postmaster_pid(store: Engine) -> int | None:
    """The pid of the server's postmaster on this machine, from its data folder's
    ``postmaster.pid``; None when the server runs elsewhere (its CPU is then not measured)."""
    with store.connect() as conn:
        folder = conn.exec_driver_sql("SHOW data_directory").scalar()
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(Path(str(folder), "postmaster.pid").read_text().splitlines()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm.startswith(("postgres", "postmaster")):
            return pid
    return None


def run_together(
    commands: Sequence[tuple[str, list[str]]], cwd: Path
) -> tuple[float, list[Finished]]:
    """Start every ``(label, command)`` at once and wait for all: (seconds from the first
    start to the last exit, each process's figures). One waiting thread per process, so each
    exit is timed when it happens, and ``wait4`` gives each process's own rusage."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done: list[Finished | None] = [None] * len(commands)
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(tmp) / f"{i}.log" for i in range(len(commands))]
        procs = []
        started = time.perf_counter()
        for (_label, command), log in zip(commands, logs, strict=True):
            with log.open("wb") as fh:
                procs.append(
                    subprocess.Popen(
                        command,
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                    )
                )

        def wait(i: int) -> None:
            _pid, status, usage = os.wait4(procs[i].pid, 0)
            ended = time.perf_counter()
            procs[i].returncode = code = os.waitstatus_to_exitcode(status)
            done[i] = Finished(
                commands[i][0],
                code,
                round(ended - started, 3),
                round(usage.ru_utime + usage.ru_stime, 3),
                round(usage.ru_maxrss / 1024, 1),  # kB on Linux
                "" if code == 0 else _tail(logs[i]),
            )

        threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finished = [f for f in done if f is not None]
    return max(f.wall_s for f in finished), finished


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _settle(server: int, before: set[int], timeout: float = 5.0) -> None:
    """Wait until the backends of the finished processes are gone and reaped, so their CPU
    is in the postmaster's ``cutime`` when the server is read again."""
    deadline = time.monotonic() + timeout
    while children(server) - before and time.monotonic() < deadline:
        time.sleep(0.02)


def run_command(url: str, partition: str, day: str) -> list[str]:
    """``runner.py run`` over one partition at the day's slots, as an operator starts it."""
    return [sys.executable, "-m", "engine", "run", "--db", url, "--partition", partition,
            "--as-of", day]  # fmt: skip


def once(lab: Lab, count: int, server: int | None) -> dict[str, Any]:
    """One partitioned real run of the pack over ``count`` processes, on emptied tables."""
    wipe_engine_rows(lab.store)
    with lab.store.begin() as conn:  # wiped above too; said here, since a new K needs it
        conn.execute(partition_scheme.delete())
    url = lab.store.url.render_as_string(hide_password=False)
    day = lab.day.isoformat()
    commands = [
        (f"{k}/{count}", run_command(url, f"{k}/{count}", day)) for k in range(1, count + 1)
    ]
    before = children(server) if server is not None else set()
    server_before = tree_cpu_s(server) if server is not None else 0.0
    wall, finished = run_together(commands, Path.cwd())
    server_cpu = None
    if server is not None:
        _settle(server, before)
        server_cpu = round(tree_cpu_s(server) - server_before, 3)
    failed = [f for f in finished if f.exit_code != 0]
    if failed:
        f = failed[0]
        raise StoreError(
            f"run --partition {f.partition} exited {f.exit_code}:\n{f.log}",
            code="E0105",
            hint="the last lines of its output are above",
        )
    return {
        "wall_s": round(wall, 3),
        "processes": [
            {
                "partition": f.partition,
                "wall_s": f.wall_s,
                "cpu_s": f.cpu_s,
                "peak_rss_mb": f.peak_rss_mb,
            }
            for f in finished
        ],
        "process_cpu_s": round(sum(f.cpu_s for f in finished), 3),
        "server_cpu_s": server_cpu,
    }


def _spread(values: Sequence[float]) -> dict[str, Any]:
    return Timing(tuple(values)).as_dict()


def measure(lab: Lab, repeats: int, counts: Sequence[int]) -> dict[str, Any]:
    """Every K of ``counts`` (K = 1 first: the baseline), ``repeats`` times each."""
    if lab.store.dialect.name != "postgresql":
        return {"not_applicable": NOT_APPLICABLE}
    wipe_engine_rows(lab.store)
    real_run(lab)
    reference = Work.read(lab.store)
    server = postmaster_pid(lab.store)
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for count in sorted(set(counts) | {1}):
        runs = []
        for _ in range(max(1, repeats)):
            runs.append(once(lab, count, server))
            found = Work.read(lab.store).differences(reference)
            runs[-1]["different_work"] = found
            for line in found:
                problems.append(f"K={count}: {line}")
                print(f"  partitions K={count}: DIFFERENT WORK: {line}", file=sys.stderr)
        out.append(_figures(count, runs))
    base = out[0]["wall"]["median_s"]
    for entry in out:
        entry["speedup"] = round(base / max(entry["wall"]["median_s"], 1e-9), 3)
    result: dict[str, Any] = {
        "as_of": lab.day.isoformat(),
        "command": "python -m engine run --db URL --partition k/K --as-of DAY (runner.py run)",
        "server_cpu_measured": server is not None,
        "reference": {
            "what": "one unpartitioned real run of the pack in process (section 1's)",
            "ledger_rows": reference.ledger_rows,
            "outbox": reference.outbox,
            "tasks": reference.tasks,
            "capped": sorted(reference.capped),
        },
        "partitions": out,
        "same_work": not problems,
    }
    if problems:  # shown as a failed section, figures kept
        result["error"] = f"different work from one unpartitioned run: {problems[0]}" + (
            f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        )
    return result


def _figures(count: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One K's repetitions as medians with min–max, and the repetitions themselves."""
    per_process = []
    for i in range(count):
        per_process.append(
            {
                "partition": f"{i + 1}/{count}",
                "wall": _spread([r["processes"][i]["wall_s"] for r in runs]),
                "cpu": _spread([r["processes"][i]["cpu_s"] for r in runs]),
                "peak_rss_mb": max(r["processes"][i]["peak_rss_mb"] for r in runs),
            }
        )
    servers = [r["server_cpu_s"] for r in runs if r["server_cpu_s"] is not None]
    return {
        "partitions": count,
        "wall": _spread([r["wall_s"] for r in runs]),
        "process_cpu": _spread([r["process_cpu_s"] for r in runs]),
        "server_cpu": _spread(servers) if servers else None,
        "processes": per_process,
        "same_work": not any(r["different_work"] for r in runs),
        "runs": runs,
    }
