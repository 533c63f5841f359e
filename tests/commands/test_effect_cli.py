"""``report`` and ``demo-outcomes`` as staff run them: real processes on a real demo store.

A simulated month on the 10,000-customer demo store must show the VIP playbook's lift with an
interval above 0; the HTML page, rendered by headless Chromium, must carry the JSON's numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support import ARTIFACTS, REPO, dump_dom, headless

AS_OF = "2026-12-31T23:00"  # every 30-day window of November has ended


def cli(*args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--db", db] if db else []
    return subprocess.run(
        [sys.executable, str(REPO / "runner.py"), *args, *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def month(tmp_path_factory: Any) -> tuple[str, str]:
    """A demo store anchored on 1 November 2026, then a simulated month from that day."""
    url = f"sqlite:///{tmp_path_factory.mktemp('month') / 'demo.db'}"
    made = cli("demo-data", "--as-of", "2026-11-01", db=url)
    assert made.returncode == 0, made.stderr
    sim = cli("demo-outcomes", "--days", "30", db=url)
    assert sim.returncode == 0, sim.stderr
    return url, sim.stdout


def _json(url: str, *args: str) -> dict[str, Any]:
    out = cli("report", "--as-of", AS_OF, "--format", "json", *args, db=url)
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_simulated_month_shows_a_lift_whose_interval_excludes_zero(month: tuple[str, str]) -> None:
    url, said = month
    assert said.startswith("SIMULATED 30 days from 2026-11-01 (seed 7)")
    doc = _json(url, "--since", "2026-11-01")
    assert doc["simulated"] and doc["simulated"][0]["seed"] == 7
    by_id = {p["id"]: p for p in doc["playbooks"]}
    vip = by_id["vip-inactive-60d"]
    goal = vip["goal"]
    treated, holdout = goal["treated"], goal["holdout"]
    assert treated["n"] >= doc["min_arm"] and holdout["n"] >= doc["min_arm"]
    assert treated["pending"] == holdout["pending"] == 0
    # each customer once: the arms are the distinct customers acted on and held out
    assert treated["n"] == vip["triggered"]["customers"]
    assert holdout["n"] == vip["triggered"]["held_out"]
    assert goal["verdict"] == "lift"
    low, high = goal["lift"]["ci95"]
    assert 0 < low < goal["lift"]["difference"] < high
    assert goal["lift"]["difference"] == pytest.approx(treated["rate"] - holdout["rate"])
    # the runs were real: ledger, tasks (closed with outcomes) and queued messages
    assert vip["runs"] > 15 and vip["tasks"]["done"] > 0 and vip["messages"]["pending"] > 0
    assert sum(vip["tasks"]["outcomes"].values()) == vip["tasks"]["done"]
    assert vip["suppressed"].get("cooldown", 0) > 0 and "held_out" not in vip["suppressed"]
    # a playbook without a holdout says so; one that never ran has no data
    assert by_id["large-withdrawal-alert"]["goal"]["verdict"] == "no_holdout"
    assert by_id["redemption-not-reinvested"]["goal"]["verdict"] == "not_enough_data"
    text = cli("report", "--as-of", AS_OF, "--playbook", "vip-inactive-60d", db=url).stdout
    assert "SIMULATED" in text and "higher with the playbook" in text


def test_windows_still_open_are_pending_not_failures(month: tuple[str, str]) -> None:
    url, _ = month
    doc = _json(url, "--playbook", "vip-inactive-60d", "--as-of", "2026-11-20T12:00")
    goal = doc["playbooks"][0]["goal"]
    assert goal["treated"]["n"] == 0 and goal["treated"]["pending"] > 0
    assert goal["verdict"] == "not_enough_data"


def test_period_filters_what_is_counted(month: tuple[str, str]) -> None:
    url, _ = month
    whole = _json(url, "--playbook", "vip-inactive-60d")["playbooks"][0]
    first = _json(url, "--playbook", "vip-inactive-60d", "--until", "2026-11-10")["playbooks"][0]
    rest = _json(url, "--playbook", "vip-inactive-60d", "--since", "2026-11-11")["playbooks"][0]
    assert first["runs"] + rest["runs"] == whole["runs"]
    rows = [p["triggered"]["ledger_rows"] for p in (first, rest, whole)]
    assert rows[0] + rows[1] == rows[2] and 0 < rows[0] < rows[2]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, str]] = {}
        self.goals: list[dict[str, str]] = []
        self.rates: list[dict[str, str]] = []
        self.banner = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and a.get("id", "").startswith("pb-"):
            self.sections[a["id"][3:]] = a
        elif tag == "div" and a.get("class") == "goal":
            self.goals.append(a)
        elif tag == "rect" and a.get("class") == "rate":
            self.rates.append(a)
        elif a.get("id") == "simulated":
            self.banner = True


def test_html_report_in_chromium_carries_the_json_numbers(
    month: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = month
    doc = _json(url, "--since", "2026-11-01")
    page = tmp_path / "effect.html"
    written = cli(
        "report", "--as-of", AS_OF, "--since", "2026-11-01", "--format", "html",
        "--out", str(page), db=url,
    )  # fmt: skip
    assert written.returncode == 0 and page.read_text(encoding="utf-8").startswith("<!doctype")
    dom = dump_dom(page, tmp_path / "profile")
    parsed = _Page()
    parsed.feed(dom)
    assert parsed.banner  # simulated data is named on the page
    assert len(parsed.goals) == sum(1 for p in doc["playbooks"] if p["goal"])
    for p in doc["playbooks"]:
        section = parsed.sections[p["id"]]
        assert int(section["data-customers"]) == p["triggered"]["customers"]
        assert int(section["data-held-out"]) == p["triggered"]["held_out"]
        assert int(section["data-sent"]) == p["messages"]["sent"]
        assert int(section["data-tasks-done"]) == p["tasks"]["done"]
    vip = next(p for p in doc["playbooks"] if p["id"] == "vip-inactive-60d")["goal"]
    shown = next(g for g in parsed.goals if g["data-verdict"] == "lift")
    assert int(shown["data-treated-n"]) == vip["treated"]["n"]
    assert int(shown["data-treated-met"]) == vip["treated"]["met"]
    assert int(shown["data-holdout-n"]) == vip["holdout"]["n"]
    assert int(shown["data-holdout-met"]) == vip["holdout"]["met"]
    assert float(shown["data-difference"]) == pytest.approx(vip["lift"]["difference"], abs=1e-6)
    assert float(shown["data-ci-low"]) == pytest.approx(vip["lift"]["ci95"][0], abs=1e-6)
    bars = {r["data-arm"]: float(r["data-rate"]) for r in parsed.rates[-2:]}  # vip is last
    assert bars["treated"] == pytest.approx(vip["treated"]["rate"], abs=1e-6)
    assert bars["holdout"] == pytest.approx(vip["holdout"]["rate"], abs=1e-6)
    assert f"{vip['lift']['difference'] * 100:+.1f}" in dom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "effect-report.png"
    shot.unlink(missing_ok=True)
    vip_only = tmp_path / "vip.html"
    cli(
        "report", "--as-of", AS_OF, "--since", "2026-11-01", "--playbook", "vip-inactive-60d",
        "--format", "html", "--out", str(vip_only), db=url,
    )  # fmt: skip
    headless(
        "--window-size=420,1100", f"--screenshot={shot}", vip_only.as_uri(),
        profile=tmp_path / "profile",
    )  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # a drawn page


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--since", "2026-13-01"], "E0310"),
        (["--until", "yesterday"], "E0310"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "E0311"),
        (["--as-of", "soon"], "E0301"),
        (["--playbook", "no-such-playbook"], "E0302"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    month: tuple[str, str], args: list[str], code: str
) -> None:
    url, _ = month
    out = cli("report", *args, db=url)
    assert out.returncode == 2, out.stderr
    assert code in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) <= 2  # error, hint


def test_unknown_format_is_a_usage_error(month: tuple[str, str]) -> None:
    out = cli("report", "--format", "pdf", db=month[0])
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_report_on_a_store_without_tables_fails_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()  # a store that exists and lacks the tables
    out = cli("report", db=f"sqlite:///{tmp_path / 'empty.db'}")
    assert out.returncode == 1 and "E0104" in out.stderr and "Traceback" not in out.stderr


def test_demo_outcomes_refuses_a_store_not_made_by_demo_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    assert cli("init-db", db=url).returncode == 0  # every table, as an import would start
    out = cli("demo-outcomes", "--days", "1", db=url)
    assert out.returncode == 1 and "E0312" in out.stderr and "Traceback" not in out.stderr


def test_simulation_is_deterministic_by_seed(tmp_path: Path) -> None:
    docs = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        assert (
            cli("demo-data", "--customers", "1500", "--as-of", "2026-11-01", db=url).returncode == 0
        )
        assert cli("demo-outcomes", "--days", "10", "--seed", "3", db=url).returncode == 0
        doc = _json(url, "--playbook", "vip-inactive-60d")
        docs.append(doc["playbooks"][0])
    assert docs[0] == docs[1] and docs[0]["triggered"]["ledger_rows"] > 0
