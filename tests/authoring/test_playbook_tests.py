"""`python runner.py test`: playbook unit tests pass, and a wrong expectation fails readably."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from support import REPO

SHIPPED = REPO / "tests" / "playbooks" / "vip_inactive_60d.test.yaml"


def runner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "runner.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_shipped_playbook_has_passing_unit_tests(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = runner("test", "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
    suite = ET.parse(junit).getroot()
    assert int(suite.get("tests", "0")) >= 5 and suite.get("failures") == "0"
    shipped = {p.stem for p in (REPO / "playbooks").glob("*.yaml")}
    with_tests = {
        p.name.removesuffix(".test.yaml")
        for p in (REPO / "tests" / "playbooks").glob("*.test.yaml")
    }
    assert shipped <= with_tests, f"playbooks without unit tests: {sorted(shipped - with_tests)}"


def test_wrong_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace("请致电13911112222", "请致电13900000000")
    broken = tmp_path / "broken.test.yaml"
    broken.write_text(text, encoding="utf-8")
    result = runner("test", str(broken), "--junit", str(tmp_path / "j.xml"))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "C10: sms body differs" in result.stdout
    assert "-【示例银行】张先生您好" in result.stdout and "+【示例银行】张先生您好" in result.stdout
    failures = ET.parse(tmp_path / "j.xml").getroot().findall(".//failure")
    assert len(failures) == 1


def test_name_filter_runs_only_matching_tests() -> None:
    result = runner("test", str(SHIPPED), "-k", "cooldown")
    assert result.returncode == 0
    assert "1 passed, 0 failed" in result.stdout


def test_expecting_the_wrong_customer_fails(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace("C4: not_matched", "C4: {task: {}}")
    broken = tmp_path / "wrong.test.yaml"
    broken.write_text(text, encoding="utf-8")
    result = runner("test", str(broken))
    assert result.returncode == 1
    assert "C4: expected to match the audience, but did not" in result.stdout


def test_unknown_fixture_field_is_a_clear_error(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace(
        'last_active_at: "2026-09-01', 'last_actve_at: "2026-09-01'
    )
    broken = tmp_path / "typo.test.yaml"
    broken.write_text(text, encoding="utf-8")
    result = runner("test", str(broken))
    assert result.returncode == 1
    assert "unknown field 'last_actve_at'" in result.stdout
    assert "did you mean 'last_active_at'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_held_out_expectation_passes_only_for_the_holdout_group(tmp_path: Path) -> None:
    """vip-inactive-60d holds out 10%: C1 falls in that group (a stable hash), C10 does not."""
    result = runner("test", str(SHIPPED), "-k", "holdout group")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout
    text = SHIPPED.read_text(encoding="utf-8")
    cases = {
        # a treated customer expected held out
        "treated": (
            text.replace("      C10: {task: {}, sms: {}}", "      C10: held_out"),
            "C10: expected to be held out, but the customer is not in the 10% holdout group"
            " (got sms, task)",
        ),
        # a customer outside the audience expected held out
        "unmatched": (
            text.replace("C4: not_matched        # gold, not VIP", "C4: held_out"),
            "C4: expected to be held out, but did not match the audience",
        ),
        # a customer in the bucket with nothing left to do (no consent for the SMS nor for
        # the call) is held back for that, never held out
        "held-back": (
            text.replace(
                'last_active_at: "2026-09-01 10:00"}\n    expect:\n      C1: held_out',
                'last_active_at: "2026-09-01 10:00",'
                " consents: {phone: withdrawn, sms: withdrawn}}\n    expect:\n      C1: held_out",
            ),
            "C1: expected to be held out, but the customer is held back (no_consent_phone,"
            " no_consent_sms) before the holdout group is drawn",
        ),
        # a held-out customer expected to get actions
        "expects-actions": (
            text.replace("      C1: held_out", "      C1: {task: {}}"),
            "C1: expected task, but the customer is in the holdout group (holdout_percent: 10)",
        ),
    }
    for name, (changed, message) in cases.items():
        assert changed != text, name
        broken = tmp_path / f"{name}.test.yaml"
        broken.write_text(changed, encoding="utf-8")
        failed = runner("test", str(broken))
        assert failed.returncode == 1, name
        assert message in failed.stdout, (name, failed.stdout)
        assert "Traceback" not in failed.stdout + failed.stderr


def test_held_out_needs_a_playbook_with_a_holdout_group(tmp_path: Path) -> None:
    shipped = REPO / "tests" / "playbooks" / "dormant_winback_call.test.yaml"
    text = shipped.read_text(encoding="utf-8").replace("C5: {task: {}}", "C5: held_out")
    broken = tmp_path / "no-holdout.test.yaml"
    broken.write_text(text, encoding="utf-8")
    result = runner("test", str(broken))
    assert result.returncode == 1
    assert "C5: expected to be held out, but the playbook has no holdout group" in result.stdout
