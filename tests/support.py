"""Helpers shared by the tests: the repository's own settings, a validator, playbooks, the
command line as a user runs it, and the headless browser the report tests open pages in.

Test modules import these from here and never from one another: test files live in one
folder per engine package, and a test module is only importable once pytest has put its own
folder on sys.path, which depends on what else was collected."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from engine.core.dictionary import DataDictionary, load_dictionary
from engine.core.settings import Settings
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator

REPO = Path(__file__).resolve().parent.parent
SETTINGS = Settings(root=REPO)
TZ = ZoneInfo("Asia/Shanghai")
AS_OF_DATE = dt.date(2026, 11, 23)  # a Monday
AS_OF = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)


ARTIFACTS = REPO / "out" / "test-artifacts"
"""Screenshots the browser tests keep for a person to look at."""


def dictionary() -> DataDictionary:
    return load_dictionary(SETTINGS.dictionary_path)


def validator() -> Validator:
    return Validator(SETTINGS, dictionary())


def playbook_from_text(tmp_path: Path, text: str, name: str = "p.yaml") -> Playbook:
    """Validate a playbook written in a test; fail loudly with its diagnostics."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    catalog = validator().validate_paths([path])
    assert not catalog.errors, [f"{d.code} {d.message}" for d in catalog.errors]
    return catalog.playbooks[0]


DEMO_CUSTOMERS = 1500
"""Customers in the demo store of the ``demo_url`` fixture (conftest.py)."""


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def clear_engine_tables(engine: Engine) -> None:
    from engine.store.models import ENGINE_TABLES

    with engine.begin() as conn:
        for t in reversed(ENGINE_TABLES):
            conn.execute(t.delete())


def require_shared_data(path: Path, what: str) -> None:
    """Skip when the shared real datasets are absent, but fail under CI=true: CI runs with
    shared/ beside the clone, so a missing folder there is a broken setup, not a pass."""
    import os

    if path.is_dir():
        return
    reason = f"{path} ({what}) not found"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python runner.py ARGS`` in a subprocess, as a user runs it (``CARE_DB`` unset, so only
    the ``--db`` a test passes names a store)."""
    env = {k: v for k, v in os.environ.items() if k != "CARE_DB"}
    return subprocess.run(
        [sys.executable, str(REPO / "runner.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Chromium kept off the network: without these it tries Google's hosts at every start."""


def headless(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with ``args`` (a page, ``--dump-dom``, ``--screenshot=…``), its own
    empty profile, and kept off the network: without these flags Chromium tries Google's
    hosts at every start."""
    flags = ["--headless", *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    result = subprocess.run(
        [chromium(), *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM headless Chromium builds for ``page`` (scripts run), as HTML text."""
    return headless("--dump-dom", page.as_uri(), profile=profile).stdout


def chromium() -> str:
    """Debian's headless Chromium: skipped without it on a developer machine, failed under
    ``CI=true`` (CI installs it, so a missing browser there is a broken setup)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but Debian's chromium is not installed", pytrace=False)
    pytest.skip("chromium not installed (Debian: apt-get install chromium)")


def valued_customers(store: Engine, n: int) -> list[str]:
    """Gold-or-better customers with a manager, in id order: the audience of the shipped event
    playbooks (the large-withdrawal alert among them)."""
    with store.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id FROM customers WHERE tier IN ('gold', 'vip', 'private') "
            "AND manager_id IS NOT NULL ORDER BY id"
        )
        return [r[0] for r in rows][:n]


def deployment_playbook(root: Path, playbook_id: str) -> tuple[Settings, Validator, Playbook]:
    """A deployment folder's settings, its validator, and one of its playbooks, which must all
    be valid (the example deployments' tests)."""
    settings = Settings(root=root)
    checker = Validator(settings, load_dictionary(settings.dictionary_path))
    catalog = checker.validate_paths([settings.playbooks_dir])
    assert not catalog.errors, [d.message for d in catalog.errors]
    return settings, checker, next(p for p in catalog.playbooks if p.id == playbook_id)
