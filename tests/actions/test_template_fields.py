"""A template's `customer.<name>` that is not a data dictionary field is a validation error
with a did-you-mean, in any branch and through includes: the sample customer taking the other
branch must not leave it to fail first at send time, customer by customer."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_support import deployment
from support import dictionary

from engine.playbook.validation import Validator

PLAYBOOK = """\
id: x-test
title: 测试
category: service
trigger: {schedule: "0 9 * * *"}
audience: {tier: vip}
actions:
  - sms: {template: x.sms.j2}
"""


def diagnostics(root: Path, template: str, extra: dict[str, str] | None = None) -> list[str]:
    settings = deployment(root, {"x.yaml": PLAYBOOK})
    (root / "templates" / "x.sms.j2").write_text(template, encoding="utf-8")
    for name, text in (extra or {}).items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    found = Validator(settings, dictionary()).validate_paths([settings.playbooks_dir])
    return [f"{d.code} {d.message} | {d.hint}" for d in found.diagnostics]


@pytest.mark.parametrize(
    "template",
    [
        "{% if customer.tier == 'mass' %}{{ customer.nmae }}{% endif %}您好",
        "{% if false %}{{ customer['nmae'] }}{% endif %}您好",
        "{% include 'part.j2' %}您好",
    ],
    ids=["untaken branch", "subscript", "through an include"],
)
def test_an_unknown_customer_field_is_found_in_any_branch(tmp_path: Path, template: str) -> None:
    extra = {"part.j2": "{% if false %}{{ customer.nmae }}{% endif %}"}
    [found] = diagnostics(tmp_path, template, extra)
    assert found.startswith("PB0122") and "nmae" in found
    assert "did you mean 'customer.name'" in found


def test_fields_and_mapping_methods_pass(tmp_path: Path) -> None:
    template = "{{ customer.name }}{{ customer.get('tier') }}{{ customer['phone'] }}您好"
    assert diagnostics(tmp_path, template) == []
