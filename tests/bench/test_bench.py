"""Smoke test of the benchmark at a tiny size: every section runs and reports figures.

No timing is asserted (the machine decides those); what is checked is that the report has
every section, that every ratio and rate is a positive number, that the engine and the
baselines did the same work (same customers, same texts, nothing lost), and that the peak
memory of the measuring child was read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.slow
def test_bench_at_300_customers_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    markdown = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "runner.py", "bench", "--customers", "300", "--repeat", "1",
         "--store-dir", str(tmp_path / "stores"), "--out", str(out), "--markdown", str(markdown)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["machine"]["cores"] >= 1
    [result] = report["results"]
    assert result["customers"] == 300 and result["backend"] == "sqlite"
    sections = result["sections"]
    assert set(sections) == {
        "pack",
        "audiences",
        "render",
        "writes",
        "dispatch",
        "events",
        "console",
    }
    for name, section in sections.items():
        assert "error" not in section["result"], (name, section["result"])
        assert _positive(section["peak_rss_mb"])
    assert _positive(result["peak_rss_mb"])

    pack = sections["pack"]["result"]
    assert "customers" in pack["tables"] and "consents" in pack["tables"]
    assert _positive(pack["dry_run_ratio"]) and _positive(pack["run_ratio"])
    assert {p["id"] for p in pack["playbooks"]} >= {"vip-inactive-60d", "care-survey-email"}
    # the real run acted on whom the dry-run said it would
    assert all(p["run_acted"] == p["acted"] for p in pack["playbooks"])

    audiences = sections["audiences"]["result"]
    compared = [a for a in audiences if a["hand"] is not None]
    assert compared, "no audience had a hand-written baseline"
    for a in compared:
        assert a["same_customers"], a["id"]
        assert _positive(a["ratio"])
        # over the target with rows to read: both plans, as the database explains them
        assert ("plans" in a) == (a["ratio"] > 1.5 and a["rows"] > 0), a["id"]
    missed = [a for a in compared if "plans" in a]
    assert missed, "at 300 customers some audience is over 1.5× (fixed costs)"
    for a in missed:
        assert "customers" in a["plans"]["engine"] and "customers" in a["plans"]["hand"]

    render = sections["render"]["result"]
    assert render["same_texts"] and render["renders"] > 0 and _positive(render["ratio"])

    writes = sections["writes"]["result"]
    assert writes["lost_first_time"] == 0
    assert writes["lost_on_rerun"] == writes["customers"]  # exactly once: a rerun writes nothing
    assert _positive(writes["ratio"])

    dispatch = sections["dispatch"]["result"]
    assert all(queued == sent and sent > 0 for queued, sent in dispatch["queued_sent"])
    assert _positive(dispatch["dispatcher_msgs_per_s"]) and _positive(dispatch["share_of_straight"])

    events = sections["events"]["result"]
    assert _positive(events["engine_events_per_s"]) and _positive(events["share_of_raw"])

    console = sections["console"]["result"]
    assert console["validate"]["playbook"] == "birthday_greeting.yaml"
    assert _positive(console["validate"]["round_trip_ms"]) and _positive(
        console["estimate"]["ratio"]
    )
    assert set(console["page"]["scripts"]) == {
        "vendor/htmx.min.js",
        "vendor/editor.js",
        "console.js",
    }
    assert 0 < console["page"]["gzip_kb"] < 1000

    assert report["scaling"] and _positive(report["scaling"][0]["dry_run_s"])
    text = markdown.read_text(encoding="utf-8")
    assert "| 1 pack |" in text and "| 4 writes |" in text and "| 8 console |" in text
    assert f"**{missed[0]['id']}**" in text and "hand-written twin: statement and plan" in text


def test_bench_refuses_to_build_over_a_store_that_is_not_its_own(tmp_path: Path) -> None:
    """Building the demo data drops every table the engine knows: a bank's store named with
    --db must never be wiped by a benchmark."""
    import sqlite3

    path = tmp_path / "bank.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id TEXT)")
        conn.execute("INSERT INTO customers VALUES ('C1')")
    proc = subprocess.run(
        [sys.executable, "runner.py", "bench", "--db", f"sqlite:///{path}", "--customers", "300",
         "--repeat", "1", "--sections", "pack", "--out", str(tmp_path / "out.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "error[E0104]" in proc.stderr and "no benchmark store" in proc.stderr
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id FROM customers").fetchall() == [("C1",)]
    assert not (tmp_path / "out.json").exists()
