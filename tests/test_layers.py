"""The layering of engine/ is a contract the suite checks, not a picture that drifts.

``pyproject.toml`` declares the layers (import-linter's ``layers`` contract: a package may
import only from its own layer's allowed siblings or below) and forbids cycles between the
modules of any package (``acyclic_siblings``). These tests run the real ``lint-imports`` on the
tree, and on a copy of it with one bad import planted, to show the contracts can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the ``engine`` package found in ``root`` (not the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "engine", tmp_path / "engine", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(module: Path, line: str) -> None:
    text = module.read_text(encoding="utf-8")
    marker = "from __future__ import annotations\n"
    module.write_text(text.replace(marker, f"{marker}\n{line}\n", 1), encoding="utf-8")


def test_the_engine_keeps_its_layers_and_has_no_cycles() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "engine layers KEPT" in result.stdout
    assert "no import cycles between the modules of a package KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the bottom layer reaching for the CLI
        ("core/errors.py", "import engine.cli  # noqa", "engine.core is not allowed to import"),
        # the product reaching for benchmark code
        (
            "execution/executor.py",
            "import engine.bench.figures  # noqa",
            "engine.execution is not allowed to import engine.bench",
        ),
        # two siblings of one layer that must stay independent
        (
            "reports/lift.py",
            "import engine.events.rules  # noqa",
            "engine.reports is not allowed to import engine.events",
        ),
        # a cycle inside one package: schedule -> event -> schedule
        (
            "triggers/event.py",
            "import engine.triggers.schedule  # noqa",
            "no import cycles between the modules of a package BROKEN",
        ),
    ],
)
def test_a_planted_bad_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    root = _copy(tmp_path)
    if module == "triggers/event.py":  # make the other half of the cycle too
        _plant(root / "engine/triggers/schedule.py", "import engine.triggers.event  # noqa")
    _plant(root / "engine" / module, line)
    result = _lint(root)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout, result.stdout
