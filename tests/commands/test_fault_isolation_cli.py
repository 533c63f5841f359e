"""As an operator sees it: one editor's broken playbook beside the shipped pack. ``run`` runs
every other playbook and exits 1 naming the file and line, ``status`` names it, ``dry-run``
says what the page shows, and a daemon started with it runs all the others."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import AS_OF_DATE, DEMO_CUSTOMERS, REPO, assert_no_traceback, cli

from engine.demo.generator import generate
from engine.store.db import open_store

BROKEN_TEMPLATE = "{% if customer.tier == 'nobody' %}{% include 'gone.j2' %}{% endif %}您好"
RUN_AT = f"{AS_OF_DATE.isoformat()}T10:00"
SHIPPED = (REPO / "playbooks" / "birthday_greeting.yaml").read_text(encoding="utf-8")
TEMPLATE_LINE = 1 + SHIPPED.splitlines().index(
    next(x for x in SHIPPED.splitlines() if "birthday_greeting.sms.j2" in x)
)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped deployment plus one playbook whose template includes a missing file in a
    branch the sample customer never takes: only a static check finds it."""
    root = tmp_path_factory.mktemp("deployment")
    for folder in ("playbooks", "templates", "schemas", "config", "segments"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "templates" / "broken.sms.j2").write_text(BROKEN_TEMPLATE, encoding="utf-8")
    text = SHIPPED.replace("birthday_greeting.sms.j2", "broken.sms.j2")
    text = text.replace("id: birthday-greeting", "id: broken-greeting")
    (root / "playbooks" / "zz_broken.yaml").write_text(text, encoding="utf-8")
    return root


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = open_store(url)
    try:
        generate(engine, customers=DEMO_CUSTOMERS, seed=11, as_of=AS_OF_DATE)
    finally:
        engine.dispose()
    return url


def _ran(stdout: str) -> set[str]:
    return {line.split(":")[0] for line in stdout.splitlines() if ": run " in line}


def test_run_runs_every_other_playbook_then_exits_1_naming_the_file(
    broken: Path, tmp_path: Path
) -> None:
    clean = cli("run", "--db", _store(tmp_path / "a"), "--as-of", RUN_AT)
    assert clean.returncode == 0, clean.stderr
    result = cli("run", "--db", _store(tmp_path / "b"), "--as-of", RUN_AT, cwd=broken)
    assert_no_traceback(result)
    assert result.returncode == 1
    assert "error[E0305]: 1 invalid file(s) left out" in result.stderr
    assert "zz_broken.yaml:" in result.stderr and "PB0120" in result.stderr
    assert _ran(result.stdout) == _ran(clean.stdout) and len(_ran(clean.stdout)) > 5


def test_status_names_the_broken_file_with_its_line(broken: Path, tmp_path: Path) -> None:
    result = cli("status", "--db", _store(tmp_path), cwd=broken)
    assert_no_traceback(result)
    assert result.returncode == 0
    shown = next(x for x in result.stdout.splitlines() if "zz_broken.yaml" in x)
    assert f"zz_broken.yaml:{TEMPLATE_LINE}:" in shown and "gone.j2" in shown


def test_a_daemon_started_with_a_broken_playbook_runs_all_the_others(
    broken: Path, tmp_path: Path
) -> None:
    url = _store(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CARE_DB"}
    daemon = subprocess.Popen(
        [
            sys.executable, str(REPO / "runner.py"), "daemon", "--db", url, "--no-dispatch",
            "--no-events", "--rehearse-from", f"{AS_OF_DATE.isoformat()}T08:55:00+08:00",
            "--speed", "3600", "--tick", "0.5",
        ],
        cwd=broken, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(12)  # about twelve hours of schedule
    finally:
        daemon.send_signal(signal.SIGTERM)
        log, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    invalid = [x for x in log.splitlines() if "reload.invalid" in x]
    assert invalid and all(f"line={TEMPLATE_LINE}" in x for x in invalid)
    finished = [x for x in log.splitlines() if "run.finished" in x]
    assert len({x.split("playbook=")[1].split()[0] for x in finished}) >= 3, log[-3000:]
    assert not any("broken-greeting" in x for x in finished)


def test_the_html_report_says_whether_personal_data_is_shown(tmp_path: Path) -> None:
    url = _store(tmp_path)
    for flags, words in (([], "personal data masked"), (["--show-personal-data"], "SHOWN")):
        page = tmp_path / "report.html"
        result = cli(
            "dry-run", "--db", url, "--as-of", AS_OF_DATE.isoformat(), "--format", "html",
            "--out", str(page), *flags,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert words in page.read_text(encoding="utf-8")
