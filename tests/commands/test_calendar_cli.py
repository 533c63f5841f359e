"""The holiday calendar from the command line, as an operator meets it: ``calendar show``
marks an estimated year on every line; a CN-YYYY.yaml file typed for a test year changes the
workday decisions of ``dry-run`` exactly as written, on both backends; a guessed day holds a
workday-only playbook (or runs it, as policy says) and says so; a mistyped file is refused
at its line."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import REPO, assert_no_traceback, cli

from engine.core.workcalendar import LIBRARY, library_years
from engine.reports.calendar import coverage

YEAR = 2031  # no package can know it: the estimate, or the test's file
MAKEUP = dt.date(YEAR, 9, 27)  # a Saturday, made a workday by the test's notice
HOLIDAY = dt.date(YEAR, 10, 6)  # a Monday inside the test's 国庆 holiday
ORDINARY = dt.date(YEAR, 3, 18)  # a Tuesday far from every holiday: certain either way
PLAYBOOK = "vip-visit-manager-30d"  # calendar: {workday: true}
NOTICE = f"""\
year: {YEAR}
notice: 测试用通知 (a test year; not a real notice)
holidays:
  - {{name: 国庆节, from: {YEAR}-10-01, to: {YEAR}-10-07}}
workdays:
  - {{date: {MAKEUP.isoformat()}, for: 国庆节}}
"""


def _deployment(root: Path, notice: str | None, policy_run: bool = False) -> Path:
    for folder in ("playbooks", "templates", "schemas", "config", "segments"):
        shutil.copytree(REPO / folder, root / folder)
    if notice is not None:
        (root / "config" / "calendar" / f"CN-{YEAR}.yaml").write_text(notice, encoding="utf-8")
    if policy_run:
        policy = root / "config" / "policy.yaml"
        text = policy.read_text(encoding="utf-8")
        assert "on_estimated_day: hold" in text
        policy.write_text(text.replace("on_estimated_day: hold", "on_estimated_day: run"))
    return root


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _deployment(tmp_path_factory.mktemp("typed"), NOTICE)


@pytest.fixture(scope="module")
def untyped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _deployment(tmp_path_factory.mktemp("untyped"), None)


@pytest.fixture(scope="module")
def runs_on_estimates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _deployment(tmp_path_factory.mktemp("run"), None, policy_run=True)


def _command(
    command: str, root: Path, db: str, day: dt.date, *more: str
) -> subprocess.CompletedProcess[str]:
    """``command`` over PLAYBOOK on ``day`` in the deployment at ``root``."""
    when = ("--db", db, "--as-of", day.isoformat(), "--playbook", PLAYBOOK)
    return cli(*command.split(), *when, *more, cwd=root)


def _preview(root: Path, db: str, day: dt.date) -> dict[str, Any]:
    result = _command("dry-run", root, db, day, "--format", "json")
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr
    (found,) = json.loads(result.stdout)["playbooks"]
    assert isinstance(found, dict)
    return found


def test_show_marks_an_estimated_year_on_every_line() -> None:
    year = library_years()[1] + 1
    result = cli("calendar", "show", str(year))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "估算 ESTIMATE" in lines[0]
    assert f"config/calendar/CN-{year}.yaml" in result.stdout
    holidays = [x for x in lines if "放假 holiday" in x]
    assert holidays and all(x.endswith("[估算 estimate]") for x in holidays)
    assert "0 个调休上班日" in result.stdout  # make-up workdays cannot be estimated
    doc = json.loads(cli("calendar", "show", str(year), "--format", "json").stdout)
    assert doc["source"] == "estimate" and {d["source"] for d in doc["days"]} == {"estimate"}
    official = json.loads(cli("calendar", "show", "2026", "--format", "json").stdout)
    assert official["source"] == "library"
    makeup = {d["date"]: d["kind"] for d in official["days"] if d["kind"] == "makeup"}
    assert makeup["2026-02-14"] == "makeup" and len(makeup) == 6


def test_show_a_typed_year_from_its_file(typed: Path) -> None:
    result = cli("calendar", "show", str(YEAR), cwd=typed)
    assert result.returncode == 0, result.stderr
    assert f"文件 file (config/calendar/CN-{YEAR}.yaml)" in result.stdout
    assert "测试用通知" in result.stdout and "估算" not in result.stdout
    assert "9月27日(周六)" in result.stdout and "调休上班 make-up workday" in result.stdout
    assert "10月1日(周三) – 10月7日(周二)  7天 days" in result.stdout


def test_a_typed_file_changes_workday_decisions_exactly_as_written(
    typed: Path, untyped: Path, demo_url: str
) -> None:
    # the make-up Saturday: a guess without the file (held, and said), a workday with it
    guessed = _preview(untyped, demo_url, MAKEUP)
    assert guessed["calendar_estimated"] == {"days": [MAKEUP.isoformat()], "decision": "held"}
    assert guessed["counts"]["matched"] == 0
    official = _preview(typed, demo_url, MAKEUP)
    assert "calendar_estimated" not in official
    assert official["counts"]["matched"] > 0 and official["counts"]["actions"]["task"] > 0
    # a Monday of the typed 国庆 holiday: held without the file, no workday with it
    assert _preview(untyped, demo_url, HOLIDAY)["calendar_estimated"]["decision"] == "held"
    closed = _preview(typed, demo_url, HOLIDAY)
    assert "calendar_estimated" not in closed and closed["counts"]["matched"] == 0
    # far from any holiday the weekday rule is certain: the same decision either way
    plain, certain = _preview(untyped, demo_url, ORDINARY), _preview(typed, demo_url, ORDINARY)
    assert "calendar_estimated" not in plain and "calendar_estimated" not in certain
    assert plain["counts"] == certain["counts"] == official["counts"]


def test_policy_may_run_on_the_estimate_and_still_say_so(
    runs_on_estimates: Path, demo_url: str
) -> None:
    # the estimate calls the Monday after 国庆's three statutory days a workday
    ran = _preview(runs_on_estimates, demo_url, HOLIDAY)
    assert ran["calendar_estimated"] == {"days": [HOLIDAY.isoformat()], "decision": "ran"}
    assert ran["counts"]["matched"] > 0
    text = _command("dry-run", runs_on_estimates, demo_url, HOLIDAY).stdout
    assert f"calendar estimated 工作日为估算: {HOLIDAY.isoformat()}" in text
    assert "ran on the estimate" in text


def test_explain_says_the_workday_is_an_estimate(untyped: Path, demo_url: str) -> None:
    result = _command("explain C0000000043", untyped, demo_url, HOLIDAY)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert "ESTIMATED 估算: no official holiday schedule" in result.stdout
    assert "held 暂停" in result.stdout


def test_a_mistyped_file_is_refused_at_its_line(tmp_path: Path) -> None:
    root = _deployment(tmp_path, NOTICE.replace(f"{YEAR}-10-07", f"{YEAR}-09-07"))
    checked = cli("calendar", "check", cwd=root)
    assert checked.returncode == 1
    assert f"CN-{YEAR}.yaml:4:" in checked.stderr and "E0410" in checked.stderr
    validated = cli("validate", cwd=root)
    assert validated.returncode == 1 and "'to' is before 'from'" in validated.stderr
    assert_no_traceback(validated)


def test_status_warns_from_november_that_next_year_has_no_schedule() -> None:
    _, last = library_years()
    quiet = coverage(LIBRARY, [], dt.date(last, 10, 31))
    assert quiet["warnings"] == [] and quiet["official_through"] == last
    november = coverage(LIBRARY, [], dt.date(last, 11, 1))
    assert len(november["warnings"]) == 1 and f"CN-{last + 1}.yaml" in november["warnings"][0]
    late = coverage(LIBRARY, [], dt.date(last + 1, 1, 4))
    assert late["this_year"]["source"] == "estimate" and late["official_through"] is None
    assert "workdays are estimated" in late["warnings"][0]
