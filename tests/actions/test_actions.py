"""The e-mail, webhook, tag and routed task actions at validate time, and the lunar filter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import validator

from engine.rendering.renderer import lunar_date

HEAD = """id: test-actions
title: t
trigger: {schedule: "0 9 * * *"}
audience: everyone
actions:
"""


def codes(tmp_path: Path, actions: str) -> list[tuple[str, int]]:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + actions, encoding="utf-8")
    return [(d.code, d.line) for d in validator().validate_paths([path]).errors]


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("  - webhook: {endpoint: crm-followup, fields: [tier]}\n", []),
        ("  - webhook: {endpoint: crm-folowup}\n", [("PB0140", 6)]),
        ("  - webhook: {url: 'http://evil.example/'}\n", [("PB0100", 6), ("PB0101", 6)]),
        ("  - webhook: {endpoint: crm-followup, fields: [teir]}\n", [("PB0107", 6)]),
        ("  - task: {title: x, assignee: manager, queue: 团队}\n", [("PB0142", 6)]),
        ("  - task: {title: x, assignee: branch_leader, checklist: [a, b]}\n", []),
        ("  - task: {title: x, assignee: boss}\n", [("PB0103", 6)]),
        (
            "  - email: {subject: '{{ customer.nmae }}', template: care_survey.email.j2}\n",
            [("PB0122", 6)],
        ),
        (
            "  - email: {subject: '" + "长" * 201 + "', template: care_survey.email.j2}\n",
            [("PB0127", 6)],
        ),
        ("  - tag: {add: 已关怀}\n  - tag: {remove: 待回访}\n", []),
        ("  - tag: {add: a, remove: b}\n", [("PB0143", 6)]),
        ("  - tag: {}\n", [("PB0143", 6)]),
    ],
)
def test_action_validation(tmp_path: Path, actions: str, expected: list[tuple[str, int]]) -> None:
    found = codes(tmp_path, actions)
    assert sorted(set(found)) == sorted(expected), found


def test_task_role_missing_from_the_dictionary_is_reported(tmp_path: Path) -> None:
    from dataclasses import replace

    from engine.playbook.validation import Validator

    v = validator()
    d = replace(v.dictionary, assignees={"manager": "manager_id"})
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "  - task: {title: x, assignee: senior_manager}\n", encoding="utf-8")
    found = Validator(v.settings, d).validate_paths([path]).errors
    assert [e.code for e in found] == ["PB0141"] and "assignees" in (found[0].hint or "")


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (dt.date(2026, 2, 17), "农历正月初一"),  # 春节 2026
        (dt.date(2026, 11, 13), "农历十月初五"),
        (dt.date(2026, 11, 22), "农历十月十四"),
        (dt.date(2027, 1, 1), "农历冬月廿四"),
        (dt.date(2026, 9, 25), "农历八月十五"),  # 中秋 2026
        (dt.date(2025, 7, 25), "农历闰六月初一"),
        (dt.date(2026, 3, 19), "农历二月初一"),
    ],
)
def test_lunar_date_filter(day: dt.date, text: str) -> None:
    assert lunar_date(day) == text
    assert lunar_date(day.isoformat()) == text
