"""Drive the benchmark: per backend and store size, build (or reuse) the demo store in one
child process and measure in another, reading each child's peak resident memory from
``wait4``. Sections beyond the pack run at the largest size only; smaller sizes give the
growth curve (time and memory of the pack from 10k to 100k to 1M customers)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bench.child import PARTITIONS, SECTIONS
from engine.bench.pgcluster import PgCluster
from engine.core.errors import StoreError

SCALING_SIZES = (10_000, 100_000)
SMALL_SECTIONS = ("pack",)
PG_SETTINGS = {
    "shared_buffers": "'256MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'4GB'",
}
"""The benchmark cluster's memory and WAL room, on top of the settings every throwaway cluster
has (durability off, :data:`engine.bench.pgcluster.BASE_SETTINGS`): sized for stores of a
million customers rather than PostgreSQL's small defaults (128MB of shared buffers, 4MB per
sort)."""


@dataclass(frozen=True)
class Plan:
    customers: int
    sizes: tuple[int, ...]
    backends: tuple[str, ...]  # sqlite / postgresql
    repeats: int
    sections: tuple[str, ...]
    db_url: str | None = None  # one given store instead of the bench's own
    root: Path = Path()
    store_dir: Path | None = None  # SQLite demo stores (default: data/bench under root)
    partitions: tuple[int, ...] = ()  # section 9's K (PostgreSQL), 1 always among them


def sizes_for(customers: int, wanted: Sequence[int] | None) -> tuple[int, ...]:
    """The store sizes to measure: the ones asked for, or 10k and 100k below N, and N."""
    if wanted:
        return tuple(sorted(set(wanted)))
    return tuple(sorted({s for s in SCALING_SIZES if s < customers} | {customers}))


def machine(load: tuple[float, float, float]) -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "load_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }


def _child(root: Path, args: list[str]) -> tuple[dict[str, Any], float]:
    """Run ``engine.bench.child`` to completion: (its JSON result, its peak RSS in MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "engine.bench.child",
            args[0],
            args[1],
            args[2],
            str(result),
            *args[3:],
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.Popen(command, cwd=root, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise StoreError(
                f"the benchmark's {args[0]} step failed (exit {proc.returncode})",
                code="E0105",
                hint="its error is printed above",
            )
        data = json.loads(result.read_text(encoding="utf-8"))
    return data, round(usage.ru_maxrss / 1024, 1)  # kB on Linux


@contextlib.contextmanager
def _urls(plan: Plan, backend: str) -> Iterator[dict[int, str]]:
    """Store URL per size for one backend (a throwaway cluster for PostgreSQL)."""
    if plan.db_url is not None:
        yield {size: plan.db_url for size in plan.sizes}
        return
    if backend == "sqlite":
        folder = plan.store_dir or plan.root / "data" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        yield {s: f"sqlite:///{folder / f'demo-{s}.db'}" for s in plan.sizes}
        return
    cluster = PgCluster.found(settings=PG_SETTINGS, prefix="care-bench-pg-")
    try:
        cluster.start()
        yield {s: cluster.database(f"bench_{s}") for s in plan.sizes}
    finally:
        cluster.stop()


def run(plan: Plan, progress: Any = print) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine(os.getloadavg()),
        "repeats": plan.repeats,
        "results": [],
    }
    for backend in plan.backends:
        with _urls(plan, backend) as urls:
            for size in plan.sizes:
                url = urls[size]
                progress(f"{backend} {size:,} customers: demo store")
                given = ["given"] if plan.db_url is not None else []
                built, build_rss = _child(plan.root, ["build", url, str(size), *given])
                top = size == max(plan.sizes)
                sections = (
                    plan.sections if top else tuple(s for s in plan.sections if s in SMALL_SECTIONS)
                )
                progress(f"{backend} {size:,} customers: measuring {', '.join(sections)}")
                t0 = time.perf_counter()
                measured, rss = _child(
                    plan.root,
                    [
                        "measure",
                        url,
                        str(size),
                        str(plan.repeats),
                        ",".join(sections),
                        *([",".join(map(str, plan.partitions))] if plan.partitions else []),
                    ],
                )
                report["results"].append(
                    {
                        "backend": backend,
                        "customers": size,
                        "demo_store": {**built, "build_peak_rss_mb": build_rss},
                        "sections": measured,
                        # resetting the high-water mark per section (clear_refs) also resets
                        # what wait4 reports at exit: the run's peak is the larger of the two
                        "peak_rss_mb": max(
                            [rss, *(v.get("peak_rss_mb", 0) for v in measured.values())]
                        ),
                        "wall_s": round(time.perf_counter() - t0, 1),
                        "load_after": [round(x, 2) for x in os.getloadavg()],
                    }
                )
    report["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["scaling"] = scaling(report["results"])
    return report


def scaling(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per backend: the pack's time and memory at each size, and the growth factor of each
    step against the growth in customers (≤ 1: linear or better)."""
    out = []
    for backend in sorted({r["backend"] for r in results}):
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["customers"])
        previous: dict[str, Any] | None = None
        for r in rows:
            section = r["sections"].get("pack", {})
            result = section.get("result", {})
            if "dry_run" not in result:
                continue
            entry = {
                "backend": backend,
                "customers": r["customers"],
                "dry_run_s": result["dry_run"]["median_s"],
                "run_s": result["run"]["median_s"],
                "scan_s": result["scan"]["median_s"],
                "pack_peak_rss_mb": section["peak_rss_mb"],
            }
            if previous is not None:
                grow = r["customers"] / previous["customers"]
                entry["time_growth_per_customer_growth"] = round(
                    entry["dry_run_s"] / max(previous["dry_run_s"], 1e-9) / grow, 3
                )
                entry["memory_growth"] = round(
                    entry["pack_peak_rss_mb"] / max(previous["pack_peak_rss_mb"], 1e-9), 3
                )
            out.append(entry)
            previous = entry
    return out


def all_sections() -> tuple[str, ...]:
    """Every section's name; ``partitions`` runs only when ``--partitions`` names its K."""
    return (*SECTIONS, PARTITIONS)


def default_sections() -> tuple[str, ...]:
    return tuple(SECTIONS)
