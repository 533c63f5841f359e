"""The command-line contract, run as a user runs it: ``python runner.py …`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import REPO, assert_no_traceback, cli


def contract(stats: dict[str, Any]) -> dict[str, Any]:
    """The keys `stats --format json` promises (README); more may be added, none removed."""
    return {
        "runs": stats["runs"],
        "ledger": stats["ledger"],
        "outbox": {k: stats["outbox"][k] for k in ("pending", "sent", "failed")},
        "tasks": {k: stats["tasks"][k] for k in ("open", "done")},
    }


def test_validate_shipped_playbooks_exit_0() -> None:
    result = cli("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout


def test_validate_invalid_exit_1_with_located_lines() -> None:
    folder = REPO / "tests" / "fixtures" / "invalid"
    result = cli("validate", str(folder))
    assert result.returncode == 1
    assert_no_traceback(result)
    located = [line for line in result.stdout.splitlines() if ": error[PB" in line]
    assert len(located) >= len(list(folder.glob("*.yaml")))
    for line in located:
        path, line_no, col, _ = line.split(":", 3)
        assert Path(path).exists() and line_no.isdigit() and col.isdigit()


def test_validate_json_format() -> None:
    result = cli(
        "validate", "--format", "json", "tests/fixtures/invalid/unknown_field.audience.yaml"
    )
    assert result.returncode == 1
    [diagnostic] = json.loads(result.stdout)["diagnostics"]
    assert diagnostic["code"] == "PB0107" and (diagnostic["line"], diagnostic["col"]) == (10, 7)


def test_dry_run_json_contract_run_twice_and_stats(clean_demo_url: str) -> None:
    as_of = "2026-11-23T09:00:00+08:00"
    one = ("--playbook", "vip-inactive-60d")  # other shipped playbooks may fire then too
    dry = cli("dry-run", "--db", clean_demo_url, "--as-of", as_of, *one, "--format", "json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["as_of"] == as_of
    [playbook] = report["playbooks"]
    assert playbook["id"] == "vip-inactive-60d"
    assert playbook["matched"] and all(isinstance(c, str) for c in playbook["matched"])
    types = {a["type"] for a in playbook["actions"]}
    assert types == {"sms", "task"}
    assert all(set(a) >= {"customer_id", "type"} for a in playbook["actions"])
    assert all(set(s) >= {"customer_id", "reason"} for s in playbook["suppressed"])

    empty = contract(json.loads(cli("stats", "--db", clean_demo_url, "--format", "json").stdout))
    assert empty == {
        "runs": 0,
        "ledger": 0,
        "outbox": {"pending": 0, "sent": 0, "failed": 0},
        "tasks": {"open": 0, "done": 0},
    }

    first = cli("run", "--db", clean_demo_url, "--as-of", as_of, *one)
    assert first.returncode == 0, first.stderr
    after_first = json.loads(cli("stats", "--db", clean_demo_url, "--format", "json").stdout)
    acted = {a["customer_id"] for a in playbook["actions"]}
    # held-out customers (the playbook's holdout_percent) are recorded too, with nothing done
    assert after_first["ledger"] == len(acted) + len(playbook["held_out"]) > len(acted) > 0
    assert after_first["outbox"]["pending"] == sum(a["type"] == "sms" for a in playbook["actions"])
    assert after_first["tasks"]["open"] == sum(a["type"] == "task" for a in playbook["actions"])

    second = cli("run", "--db", clean_demo_url, "--as-of", as_of, *one)
    assert second.returncode == 0
    after_second = json.loads(cli("stats", "--db", clean_demo_url, "--format", "json").stdout)
    assert contract(after_second) == {**contract(after_first), "runs": 2}
    assert "acted 0" in second.stdout

    # after the run, the preview says why nobody would be contacted again
    again = json.loads(
        cli("dry-run", "--db", clean_demo_url, "--as-of", as_of, *one, "--format", "json").stdout
    )
    reasons = {s["reason"] for s in again["playbooks"][0]["suppressed"]}
    assert "already_done" in reasons and again["playbooks"][0]["actions"] == []


def test_dry_run_text_is_readable_and_masked(clean_demo_url: str) -> None:
    result = cli("dry-run", "--db", clean_demo_url, "--as-of", "2026-11-23", "--show-sql")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "vip-inactive-60d" in out and "matched" in out and "SELECT" in out
    assert "****" in out  # phones masked
    shown = cli("dry-run", "--db", clean_demo_url, "--as-of", "2026-11-23", "--show-personal-data")
    assert "****" not in shown.stdout and "PERSONAL DATA SHOWN" in shown.stdout


def test_dry_run_on_a_day_without_schedule(clean_demo_url: str) -> None:
    # a Saturday: the workday playbook does not run (daily ones in the pack do, so name it)
    one = ("--playbook", "vip-inactive-60d")
    result = cli(
        "dry-run", "--db", clean_demo_url, "--as-of", "2026-11-28", *one, "--format", "json"
    )
    report = json.loads(result.stdout)
    assert report["playbooks"] == []
    assert [p["id"] for p in report["not_scheduled"]] == ["vip-inactive-60d"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["dry-run", "--db", "foo://x"], 2, "unknown database URL scheme"),
        (["dry-run", "--db", "postgresql://nobody@127.0.0.1:1/x"], 1, "cannot reach database"),
        (["dry-run", "--as-of", "yesterday"], 2, "not an ISO 8601"),
        (["dry-run", "--playbook", "no-such-playbook"], 2, "no valid playbook"),
        (["stats", "--format", "xml"], 2, "Invalid value"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], code: int, words: str) -> None:
    result = cli(*args)
    assert result.returncode == code
    assert words in result.stderr
    assert_no_traceback(result)


def test_missing_tables_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()  # a store that exists and lacks the tables
    result = cli("dry-run", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode == 1
    assert "has no table(s)" in result.stderr and "demo-data" in result.stderr
    assert_no_traceback(result)


def test_broken_playbook_is_reported_and_others_still_run(
    tmp_path: Path, clean_demo_url: str
) -> None:
    """A deployment folder with one good and one broken playbook: the good one still runs, the
    report is whole, and the command exits 1 (it used to exit 0, hiding the left-out file)."""
    for name in ("schemas", "templates"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "playbooks").mkdir()
    good = (REPO / "playbooks" / "vip_inactive_60d.yaml").read_text(encoding="utf-8")
    (tmp_path / "playbooks" / "good.yaml").write_text(good, encoding="utf-8")
    (tmp_path / "playbooks" / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    result = cli(
        "dry-run", "--db", clean_demo_url, "--as-of", "2026-11-23", "--format", "json", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "broken.yaml:1" in result.stderr and "PB0001" in result.stderr
    assert "error[E0305]: 1 invalid file(s) left out; every other playbook ran" in result.stderr
    assert [p["id"] for p in json.loads(result.stdout)["playbooks"]] == ["vip-inactive-60d"]
    assert_no_traceback(result)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "care-playbooks"
    assert script.exists(), "pip install -e . installs the care-playbooks command"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "care-playbooks" in result.stdout


def test_a_read_only_command_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    typo = tmp_path / "tpyo.db"
    for command in (["dry-run"], ["explain", "C1"], ["stats"], ["status"], ["audit"]):
        result = cli(*command, "--db", f"sqlite:///{typo}")
        assert result.returncode == 1, (command, result.stderr)
        assert "E0106" in result.stderr and "Traceback" not in result.stderr
        assert not typo.exists(), command
    made = cli("init-db", "--db", f"sqlite:///{typo}")
    assert made.returncode == 0 and typo.exists()


@pytest.mark.parametrize("demo_url", ["sqlite"], indirect=True)
def test_run_skips_a_slot_older_than_the_grace_and_runs_it_on_purpose(demo_url: str) -> None:
    late = cli("run", "--db", demo_url, "--as-of", "2026-11-23T16:00",
               "--playbook", "vip-inactive-60d")  # fmt: skip
    assert late.returncode == 0, late.stderr
    assert "vip-inactive-60d: slot_too_old: its latest slot 2026-11-23T09:00+08:00" in late.stdout
    assert "run 1" not in late.stdout and "acted" not in late.stdout
    on_purpose = cli("run", "--db", demo_url, "--playbook", "vip-inactive-60d",
                     "--slot", "2026-11-23T09:00")  # fmt: skip
    assert on_purpose.returncode == 0, on_purpose.stderr
    assert "window 2026-11-23T09:00" in on_purpose.stdout and "acted" in on_purpose.stdout
    wider = cli("run", "--db", demo_url, "--as-of", "2026-11-23T16:00", "--grace", "8h",
                "--playbook", "vip-inactive-60d")  # fmt: skip
    # within a wider grace the same window runs again: those already acted on are done
    assert "window 2026-11-23T09:00" in wider.stdout and "already_done" in wider.stdout
    not_a_slot = cli("run", "--db", demo_url, "--playbook", "vip-inactive-60d",
                     "--slot", "2026-11-23T09:30")  # fmt: skip
    assert "is not one of its slots" in not_a_slot.stdout
    both = cli("run", "--db", demo_url, "--slot", "2026-11-23T09:00")
    assert both.returncode == 2 and "E0313" in both.stderr
