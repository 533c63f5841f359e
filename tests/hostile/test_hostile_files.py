"""The hostile corpus beside the shipped pack, in one deployment: every bad file is one located
error, nothing runs a payload, and the pack is decided exactly as without the bad files.

One folder holds the 25 shipped playbooks and several hundred hostile files (sandbox escapes
and bombs in templates, YAML traps, SQL payloads in every value and name, oversized fields):
that is the situation the promise is about, an editor's mistake sitting next to everybody
else's work. The counts are printed (``-s``) for the record: tried, located error, traceback
(must be 0), unsafe (must be 0).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import PAYLOADS, PLAYBOOKS, TEMPLATES, Case
from support import AS_OF_DATE, DEMO_CUSTOMERS, REPO

from engine.commands.preview import execute_selected
from engine.core.dictionary import load_dictionary
from engine.core.settings import Settings
from engine.demo.generator import generate
from engine.playbook.validation import Catalog, Validator
from engine.store.db import open_store

# what an escape would print if it got through: module globals, a shell's answers, a file
LEAKS = ("uid=", "root:x:", "<module '", "<class '", "object at 0x", "<built-in", "PATH=/")
TEMPLATE_PLAYBOOK = """id: hostile-template-{n}
title: 模板测试 {n}
owner: 测试
enabled: true
category: marketing
trigger: {{schedule: "0 9 * * 1"}}
audience: {{tier: {{eq: vip}}}}
actions:
  - sms: {{template: hostile_{n}.sms.j2, max_segments: 5}}
"""


def _cases() -> list[Case]:
    out = [
        Case(kind, f"template_{n}", TEMPLATE_PLAYBOOK.format(n=n), valid=kind == "harmless")
        for n, (kind, _) in enumerate(TEMPLATES)
    ]
    return out + PLAYBOOKS


CASES = _cases()


def _file(case: Case) -> str:
    return f"zz_{case.kind}_{case.name}.yaml"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped deployment with the whole corpus added."""
    root = tmp_path_factory.mktemp("hostile")
    for folder in ("playbooks", "templates", "schemas", "config", "segments"):
        shutil.copytree(REPO / folder, root / folder)
    for n, (_, source) in enumerate(TEMPLATES):
        (root / "templates" / f"hostile_{n}.sms.j2").write_text(source, encoding="utf-8")
    for case in CASES:
        path = root / "playbooks" / _file(case)
        if isinstance(case.text, bytes):
            path.write_bytes(case.text)
        else:
            path.write_text(case.text, encoding="utf-8")
    return root


def _validate(root: Path) -> Catalog:
    settings = Settings(root=root)
    return Validator(settings, load_dictionary(settings.dictionary_path)).validate_paths(
        [settings.playbooks_dir]
    )


@pytest.fixture(scope="module")
def hostile(deployment: Path) -> Catalog:
    return _validate(deployment)


@pytest.fixture(scope="module")
def clean() -> Catalog:
    return _validate(REPO)


def test_the_corpus_is_large_and_varied() -> None:
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 200, len(CASES)
    assert {"escape", "bomb", "yaml", "sql", "size", "harmless"} <= kinds


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}-{c.name}" for c in CASES])
def test_each_hostile_file_is_one_located_error(
    case: Case, deployment: Path, hostile: Catalog
) -> None:
    path = str(deployment / "playbooks" / _file(case))
    errors = [d for d in hostile.errors if d.file == path]
    if case.valid:  # a harmless value: accepted, and bound as a parameter when run
        assert not errors, [f"{d.code} {d.message}" for d in errors]
        return
    assert errors, f"{case.name} was accepted"
    for d in errors:
        assert d.line >= 1 and d.col >= 1 and d.code.startswith("PB")
        assert d.code != "PB0099", f"{case.name}: an unforeseen failure ({d.message})"
        assert not any(leak in str(d.message) for leak in LEAKS), d.message


def test_the_pack_validates_the_same_beside_the_corpus(hostile: Catalog, clean: Catalog) -> None:
    shipped = {p.id: p.content_hash for p in clean.playbooks}
    beside = {p.id: p.content_hash for p in hostile.playbooks if p.id in shipped}
    assert beside == shipped
    accepted = {p.id for p in hostile.playbooks} - set(shipped)
    assert len(accepted) == sum(c.valid for c in CASES)


def test_validate_on_the_command_line_locates_every_file_and_never_prints_a_traceback(
    deployment: Path,
) -> None:
    env = {**os.environ, "CARE_LANG": "en"}
    result = subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "validate", "--format", "json"],
        cwd=deployment,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output
    bad = [c for c in CASES if not c.valid]
    located = [c for c in bad if _file(c) in output]
    unsafe = [leak for leak in LEAKS if leak in output]
    print(
        f"\nhostile corpus: tried {len(CASES)}, located error {len(located)} of {len(bad)} bad, "
        f"accepted harmless {len(CASES) - len(bad)}, traceback 0, unsafe {len(unsafe)}"
    )
    assert len(located) == len(bad)
    assert not unsafe


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo store of our own (SQLite: the decisions are the SQL's, one backend suffices)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'demo.db'}"
    engine = open_store(url)
    try:
        generate(engine, customers=DEMO_CUSTOMERS, seed=11, as_of=AS_OF_DATE)
    finally:
        engine.dispose()
    return url


def _decisions(
    root: Path, url: str, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> dict[str, list[tuple]]:
    monkeypatch.chdir(root)
    selected = execute_selected(url, AS_OF_DATE.isoformat(), (), dry_run=dry_run, mask=True)
    out: dict[str, list[tuple]] = {}
    for o in selected.outcomes:
        assert o.error is None, (o.playbook.id, o.error)
        out[o.playbook.id] = sorted(
            (
                d.customer_id,
                tuple(sorted((e.kind, repr(sorted(e.row.items()))) for e in d.effects)),
                tuple(sorted(d.suppressed, key=str)),
                d.held_out,
            )
            for d in o.decisions
        )
    return out


def test_the_pack_is_decided_exactly_as_without_the_corpus(
    deployment: Path, store_url: str, hostile: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _decisions(REPO, store_url, monkeypatch, dry_run=True)
    beside = _decisions(deployment, store_url, monkeypatch, dry_run=True)
    assert {k: v for k, v in beside.items() if k in clean} == clean
    # the rest are the corpus's harmless cases, accepted and run like any other playbook
    accepted = {p.id for p in hostile.playbooks if p.enabled} - set(clean)
    assert set(beside) - set(clean) <= accepted
    for pid in set(beside) - set(clean):  # what they would send shows nothing of the engine
        assert not [leak for leak in LEAKS if leak in repr(beside[pid])], pid


def test_sql_payloads_run_for_real_change_nothing_but_their_own_rows(
    deployment: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            before = {
                t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one()
                for t in ("customers", "managers", "branches", "consents")
            }
        monkeypatch.chdir(deployment)
        selected = execute_selected(
            store_url, AS_OF_DATE.isoformat(), (), dry_run=False, mask=False
        )
        assert not selected.failed
        with store.connect() as conn:
            after = {
                t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one() for t in before
            }
            tags = {
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT DISTINCT tag FROM engine_tags WHERE playbook_id LIKE 'sqltag%'"
                )
            }
    finally:
        store.dispose()
    assert after == before
    # the payloads were stored as the text they are, not executed
    assert tags <= set(PAYLOADS) and tags, tags
