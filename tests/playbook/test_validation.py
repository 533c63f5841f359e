"""The validator: every fixture under fixtures/invalid is named by the failure it provokes and
says in its first line which diagnostic it expects, where."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from support import REPO, SETTINGS, dictionary, validator

from engine.core.diagnostics import format_text
from engine.core.settings import Settings
from engine.playbook.validation import Validator

INVALID = sorted((REPO / "tests" / "fixtures" / "invalid").glob("*.yaml"))
VALID = sorted((REPO / "tests" / "fixtures" / "valid").glob("*.yaml"))
EXPECT = re.compile(r"# expect: (?P<code>PB\d{4}) (?P<line>\d+):(?P<col>\d+) (?P<text>.+)")


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_fixture_reports_expected_diagnostic(path: Path) -> None:
    expected = EXPECT.match(path.read_bytes().split(b"\n")[0].decode("utf-8"))
    assert expected, f"{path.name} lacks an '# expect:' first line"
    catalog = validator().validate_paths([path])
    assert catalog.playbooks == []
    found = [
        d
        for d in catalog.errors
        if d.code == expected["code"]
        and (d.line, d.col) == (int(expected["line"]), int(expected["col"]))
    ]
    shown = [f"{d.code} {d.line}:{d.col} {d.message} | {d.hint}" for d in catalog.errors]
    assert found, shown
    words = f"{found[0].message} {found[0].hint}"
    assert expected["text"] in words, words


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_fixture_validates(path: Path) -> None:
    catalog = validator().validate_paths([path])
    assert catalog.errors == []
    assert len(catalog.playbooks) == 1


def test_every_shipped_playbook_validates() -> None:
    catalog = validator().validate_paths([SETTINGS.playbooks_dir])
    assert catalog.errors == [], format_text(catalog.errors, catalog.sources)
    assert catalog.files >= 1 and len(catalog.playbooks) == catalog.files


def test_all_errors_of_all_files_are_reported_at_once(tmp_path: Path) -> None:
    for path in INVALID[:5]:
        shutil.copy(path, tmp_path / path.name)
    catalog = validator().validate_paths([tmp_path])
    assert catalog.files == 5
    assert {d.file for d in catalog.errors} == {str(tmp_path / p.name) for p in INVALID[:5]}


def test_one_bad_file_does_not_stop_the_good_ones(tmp_path: Path) -> None:
    shutil.copy(INVALID[0], tmp_path / "bad.yaml")
    shutil.copy(SETTINGS.playbooks_dir / "vip_inactive_60d.yaml", tmp_path / "good.yaml")
    catalog = validator().validate_paths([tmp_path])
    assert [p.id for p in catalog.playbooks] == ["vip-inactive-60d"]
    assert catalog.errors


def test_duplicate_playbook_id_across_files(tmp_path: Path) -> None:
    source = SETTINGS.playbooks_dir / "vip_inactive_60d.yaml"
    shutil.copy(source, tmp_path / "a.yaml")
    shutil.copy(source, tmp_path / "b.yaml")
    catalog = validator().validate_paths([tmp_path])
    assert [d.code for d in catalog.errors] == ["PB0130"]
    assert catalog.errors[0].file.endswith("b.yaml")
    assert "a.yaml:2" in catalog.errors[0].message


def test_sms_over_its_segment_budget(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "long.sms.j2").write_text("您好" * 40, encoding="utf-8")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    settings = Settings(root=tmp_path)
    playbook = tmp_path / "p.yaml"
    playbook.write_text(
        "id: long-sms\ntitle: t\ntrigger: {schedule: '0 9 * * *'}\naudience: everyone\n"
        "actions:\n  - sms: {template: long.sms.j2, max_segments: 1}\n",
        encoding="utf-8",
    )
    catalog = Validator(settings, dictionary()).validate_paths([playbook])
    assert [d.code for d in catalog.errors] == ["PB0125"]
    assert "2 parts" in catalog.errors[0].message


def test_text_format_shows_source_line_and_caret() -> None:
    path = REPO / "tests" / "fixtures" / "invalid" / "unknown_field.audience.yaml"
    catalog = validator().validate_paths([path])
    text = format_text(catalog.errors, catalog.sources)
    assert f"{path}:10:7: error[PB0107]: unknown field 'last_actve_at'" in text
    assert "  10 |     - last_actve_at: {older_than: 60d}" in text
    assert "     |       ^^^^^^^^^^^^^" in text
    assert "did you mean 'last_active_at' (最近活跃时间)?" in text
    assert "see: docs/errors.md#pb0107" in text


def test_every_error_code_is_documented() -> None:
    docs = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    codes = set()
    for path in (REPO / "engine").rglob("*.py"):
        codes |= set(re.findall(r'"(PB\d{4})"', path.read_text(encoding="utf-8")))
    assert codes, "no codes found"
    missing = sorted(c for c in codes if f"## {c}" not in docs)
    assert missing == []


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    catalog = validator().validate_paths([path])
    assert [(d.code, d.message) for d in catalog.errors] == [("PB0003", "the file is empty")]


def test_fifty_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    catalog = validator().validate_paths([path])
    assert [d.code for d in catalog.errors] == ["PB0011"]


def test_invalid_corpus_is_large_and_named_by_failure() -> None:
    assert len(INVALID) >= 50
    assert all(re.fullmatch(r"[a-z0-9_]+(\.[a-z]+)?\.yaml", p.name) for p in INVALID)


def test_sql_in_values_is_bound_not_executed(tmp_path: Path) -> None:
    """A value that looks like SQL is just text: it validates where text is allowed."""
    playbook = tmp_path / "p.yaml"
    playbook.write_text(
        "id: sql-text\ntitle: t\ntrigger: {schedule: '0 9 * * *'}\n"
        'audience: {occupation: "x\'; DROP TABLE customers; --"}\n'
        "actions: [{task: {title: x}}]\n",
        encoding="utf-8",
    )
    catalog = validator().validate_paths([playbook])
    assert catalog.errors == []
    [test] = [catalog.playbooks[0].audience]
    assert getattr(test, "value", None) == "x'; DROP TABLE customers; --"
