"""Section 9 of the benchmark, ``bench --partitions``: the pack's real run split across K real
processes on a tiny PostgreSQL store.

No timing is asserted; what is checked is that every K reports positive wall and CPU figures
(each process's, and the server's), that every K did the work of one unpartitioned run, that
a difference in work would be reported, and that SQLite is refused in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

from engine.bench.partitioned import SHORT, SPLIT, Work


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.slow
def test_partitions_1_and_2_on_postgresql_do_the_same_work(pg_url: str, tmp_path: Path) -> None:
    out, markdown = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "runner.py", "bench", "--db", pg_url, "--customers", "300",
         "--repeat", "1", "--sections", "partitions", "--partitions", "1,2",
         "--out", str(out), "--markdown", str(markdown)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert result["backend"] == "postgresql" and set(result["sections"]) == {"partitions"}
    section = result["sections"]["partitions"]["result"]
    assert "error" not in section, section
    assert section["same_work"] and section["server_cpu_measured"]
    assert section["reference"]["ledger_rows"] > 0 and section["reference"]["outbox"] > 0
    one, two = section["partitions"]
    assert (one["partitions"], two["partitions"]) == (1, 2)
    for entry in (one, two):
        assert entry["same_work"]
        assert _positive(entry["wall"]["median_s"]) and _positive(entry["speedup"])
        assert _positive(entry["process_cpu"]["median_s"])
        assert _positive(entry["server_cpu"]["median_s"])
        assert [p["partition"] for p in entry["processes"]] == [
            f"{k}/{entry['partitions']}" for k in range(1, entry["partitions"] + 1)
        ]
        assert all(_positive(p["cpu"]["median_s"]) for p in entry["processes"])
    assert one["speedup"] == 1.0
    text = markdown.read_text(encoding="utf-8")
    assert "| 9 partitions |" in text and "### 9 partitions" in text


def test_a_difference_in_work_is_reported() -> None:
    """Uncapped playbooks must leave the very same ledger rows and as many outbox and task
    rows; one whose cap bound in the unpartitioned run the same number of ledger rows per
    window (each partition takes its own first customers, so its messages and tasks may
    differ: a task merged into another playbook's open one). A cap that bound only within a
    partition is named as the cause of the difference, which is still reported."""
    window = "2026-10-12"
    both = frozenset({("C1", window), ("C2", window)})
    reference = Work({"a": both}, {"a": (2, 0)})
    assert reference.differences(reference) == []
    other = Work({"a": frozenset({("C1", window), ("C3", window)})}, {"a": (2, 0)})
    assert other.differences(reference) == ["a: 1 ledger row(s) missing, 1 extra"]
    one_task_more = Work({"a": both}, {"a": (2, 1)})
    assert one_task_more.differences(reference) == [
        "a: outbox 2 and tasks 1 rows, expected 2 and 0"
    ]
    capped = Work({"a": both}, {"a": (2, 0)}, capped=frozenset({"a"}))
    assert other.differences(capped) == [] and one_task_more.differences(capped) == []
    fewer = Work({"a": frozenset({("C1", window)})}, {"a": (1, 0)})
    assert fewer.differences(capped) == [
        f"a (capped): {{'{window}': 1}} ledger rows by window, expected {{'{window}': 2}}"
        f" ({SHORT})",
    ]
    split = Work({"a": frozenset({("C1", window)})}, {"a": (2, 0)}, capped=frozenset({"a"}))
    assert split.differences(reference) == [f"a: 1 ledger row(s) missing, 0 extra ({SPLIT})"]


def test_partitions_are_refused_on_sqlite(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "runner.py", "bench", "--customers", "300", "--partitions", "1,2",
         "--out", str(tmp_path / "out.json")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "error[E0302]: --partitions measures PostgreSQL only" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out.json").exists()
