"""Repeated timings (median, min, max) and memory high-water marks read from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Seconds of each repetition of one measurement: wall clock, and CPU time of this
    process and the children it waited for (the sqlite3 shell). On a shared machine the wall
    clock carries the others' load; the CPU time mostly does not (it leaves out a
    PostgreSQL server's work, which runs in the server's processes)."""

    seconds: tuple[float, ...]
    cpu: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        return float(statistics.median(self.seconds))

    @property
    def cpu_median(self) -> float:
        return float(statistics.median(self.cpu)) if self.cpu else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_s": round(self.median, 4),
            "min_s": round(min(self.seconds), 4),
            "max_s": round(max(self.seconds), 4),
            "cpu_median_s": round(self.cpu_median, 4),
            "runs": len(self.seconds),
        }


def repeat(
    fn: Callable[[], T], times: int, before: Callable[[], None] | None = None
) -> tuple[Timing, T]:
    """Run ``fn`` ``times`` times (``before`` untimed ahead of each); the last result too."""
    seconds, cpu = [], []
    result: T | None = None
    for _ in range(max(1, times)):
        if before is not None:
            before()
        # the last repetition's result let go first: kept, a dry-run of the pack (every
        # decision) was held twice at the peak, and the memory figure measured the bench
        result = None
        cpu_started = _cpu()
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
        cpu.append(_cpu() - cpu_started)
    return Timing(tuple(seconds), tuple(cpu)), result  # type: ignore[return-value]


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def ratio(engine: Timing, baseline: Timing) -> float:
    """Engine time over baseline time, on the medians (> 1: the engine is slower)."""
    return round(engine.median / max(baseline.median, 1e-9), 3)


def cpu_ratio(engine: Timing, baseline: Timing) -> float:
    """The same on CPU time: steadier on a loaded machine, blind to a server's work."""
    return round(engine.cpu_median / max(baseline.cpu_median, 1e-9), 3)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Start a new high-water mark of this process's resident memory (Linux ``clear_refs``)."""
    # not Linux, or not allowed: the peak then covers the process's whole life
    with contextlib.suppress(OSError):
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")


def peak_mb() -> float:
    """This process's peak resident memory since the last :func:`reset_peak`, in MB."""
    return round(_status_kb("VmHWM") / 1024, 1)


def _stat(pid: str) -> tuple[int, list[str]] | None:
    """(parent pid, the fields after the command name) of ``/proc/PID/stat``, or None when
    the process is gone. The name is cut at its last ')': it may hold spaces and brackets."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    rest = text.rsplit(")", 1)[1].split()
    return int(rest[1]), rest


def children(parent: int) -> set[int]:
    """The pids whose parent is ``parent`` right now."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(entry.name)
            if found is not None and found[0] == parent:
                out.add(int(entry.name))
    return out


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) spent so far by process ``root`` and its children: the
    live children's own, plus what ``root`` has collected from the children it has reaped
    (``cutime`` + ``cstime``), so a child that came and went between two readings counts
    once it is reaped. A PostgreSQL server is its postmaster and these children."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _stat(entry.name)
        if found is None:
            continue
        parent, fields = found
        # fields: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        #         utime stime cutime cstime …
        if int(entry.name) == root:
            ticks += sum(int(v) for v in fields[11:15])
        elif parent == root:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
