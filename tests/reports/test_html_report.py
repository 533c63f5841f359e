"""The HTML dry-run report, opened in a real headless Chromium (Debian's package).

Chromium renders the page; its DOM must carry the same numbers as the JSON report, its charts
must be drawn, and a screenshot is kept under out/test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support import (
    ARTIFACTS,
    AS_OF,
    REPO,
    SETTINGS,
    clear_engine_tables,
    dictionary,
    dump_dom,
    headless,
    validator,
)

from engine.core.clock import Clock
from engine.execution.executor import Executor
from engine.execution.sinks import RecordingSink
from engine.reports.dryrun import report_json
from engine.reports.html import render_html
from engine.reports.tabular import audience_facets, report_csv
from engine.store.db import open_store
from engine.triggers.schedule import Schedule

# SQLite only, as one browser session is enough: the page is drawn from the dry-run report,
# whose figures the command-line tests (tests/commands/test_cli.py) check on both backends.
pytestmark = pytest.mark.parametrize("demo_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def report(demo_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    store = open_store(demo_url)
    clear_engine_tables(store)
    d = dictionary()
    v = validator()
    executor = Executor(store, SETTINGS, d, v.renderer)
    clock = Clock(AS_OF)
    playbooks = [
        p
        for p in v.validate_paths([SETTINGS.playbooks_dir]).playbooks
        if isinstance(p.trigger, Schedule)
    ]
    outcomes = [executor.execute(p, clock, RecordingSink(), keep_details=True) for p in playbooks]
    doc = report_json(AS_OF, outcomes, [])
    facets = {o.playbook.id: audience_facets(store, d, clock, o.matched) for o in outcomes}
    store.dispose()
    return doc, facets


class _Bars(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[str, list[tuple[str, float]]] = {}
        self.sections: dict[str, dict[str, str]] = {}
        self._chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self._chart = a.get("id")
        elif tag == "rect" and "bar" in a.get("class", "") and self._chart:
            self.bars.setdefault(self._chart, []).append((a["data-label"], float(a["data-value"])))
        elif tag == "section" and a.get("id", "").startswith("pb-"):
            self.sections[a["id"][3:]] = a


def test_html_report_renders_in_chromium_with_the_json_numbers(
    report: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    doc, facets = report
    page = tmp_path / "report.html"
    page.write_text(render_html(doc, facets), encoding="utf-8")
    parsed = _Bars()
    parsed.feed(dump_dom(page, tmp_path / "profile"))
    assert doc["playbooks"], "the demo store should give at least one playbook"
    for p in doc["playbooks"]:
        counts = p["counts"]
        section = parsed.sections[p["id"]]
        assert int(section["data-matched"]) == counts["matched"] == len(p["matched"])
        funnel = dict(parsed.bars[f"funnel-{p['id']}"])
        assert funnel["符合条件 matched"] == counts["matched"]
        assert funnel["= 执行客户 acted"] == counts["customers_acted"]
        lost = sum(v for k, v in funnel.items() if k.startswith("−"))
        assert lost == sum(counts["held_back"].values()) + counts.get("held_out", 0)
        assert counts["matched"] - lost == counts["customers_acted"]  # the bars add up
        # facet-<id>-<n>, exactly: one playbook's id may begin another's
        mine = re.compile(rf"facet-{re.escape(p['id'])}-\d+")
        charts = [k for k in parsed.bars if mine.fullmatch(k)]
        if counts["matched"]:  # an empty audience has nothing to break down
            assert sum(v for _, v in parsed.bars[charts[0]]) == counts["matched"]
        else:
            assert not charts

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dry-run-report.png"
    shot.unlink(missing_ok=True)
    headless(
        "--window-size=420,1400", f"--screenshot={shot}", page.as_uri(),
        profile=tmp_path / "profile",
    )  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # a drawn page, not blank


def test_csv_has_one_row_per_action_and_excel_reads_it(
    report: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    doc, _ = report
    text = report_csv(doc)
    assert text.startswith("\ufeffplaybook_id,window,customer_id,type")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == sum(len(p["actions"]) for p in doc["playbooks"]) > 0
    first = doc["playbooks"][0]["actions"][0]
    assert rows[0]["customer_id"] == first["customer_id"] and rows[0]["type"] == first["type"]
    assert "****" in text  # masked recipients


def test_dry_run_command_writes_html_csv_and_diff(demo_url: str, tmp_path: Path) -> None:
    import json
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "runner.py"), *args, "--db", demo_url],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )

    page = tmp_path / "r.html"
    assert (
        cli("dry-run", "--as-of", "2026-11-23", "--format", "html", "--out", str(page)).returncode
        == 0
    )
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert 'id="funnel-vip-inactive-60d"' in page.read_text(encoding="utf-8")
    csv_out = cli(
        "dry-run", "--as-of", "2026-11-23", "--format", "csv", "--playbook", "vip-inactive-60d"
    )
    assert csv_out.returncode == 0 and "vip-inactive-60d,2026-11-23T09:00," in csv_out.stdout

    clear = open_store(demo_url)
    clear_engine_tables(clear)
    clear.dispose()
    before = json.loads(
        cli(
            "dry-run",
            "--as-of",
            "2026-11-23",
            "--playbook",
            "vip-inactive-60d",
            "--format",
            "json",
            "--diff",
        ).stdout
    )
    [entry] = before["playbooks"]
    assert entry["diff"]["last_run_id"] is None and entry["diff"]["dropped"] == []
    acted = sorted({a["customer_id"] for a in entry["actions"]})
    assert entry["diff"]["new"] == acted
    assert cli("run", "--as-of", "2026-11-23", "--playbook", "vip-inactive-60d").returncode == 0
    after = json.loads(
        cli(
            "dry-run",
            "--as-of",
            "2026-11-23",
            "--playbook",
            "vip-inactive-60d",
            "--format",
            "json",
            "--diff",
        ).stdout
    )
    diff = after["playbooks"][0]["diff"]
    assert diff["last_run_id"] is not None
    assert diff["new"] == [] and diff["dropped"] == acted  # all done already in this window
