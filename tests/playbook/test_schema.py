"""The shipped JSON Schema is the one generated from the validator's model."""

from __future__ import annotations

import json

import jsonschema
from support import REPO, SETTINGS, dictionary

from engine.actions import REGISTRY
from engine.conditions.ast import OPERATORS
from engine.core.yamlfile import load_file
from engine.playbook.schema import playbook_schema, render_schema


def test_shipped_schema_is_generated_from_the_model() -> None:
    shipped = (REPO / "schemas" / "playbook.schema.json").read_text(encoding="utf-8")
    assert shipped == render_schema(dictionary()), "run: python runner.py schema"


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(playbook_schema(dictionary()))


def test_action_kinds_equal_the_registry() -> None:
    schema = playbook_schema(dictionary())
    assert set(schema["$defs"]["action"]["properties"]) == set(REGISTRY)


def test_every_field_and_operator_is_in_the_schema() -> None:
    condition = playbook_schema(dictionary())["$defs"]["condition"]["properties"]
    d = dictionary()
    special = {"all", "any", "not", "segment", "calendar"} | set(d.related) | set(d.changes)
    assert set(condition) == special | set(d.fields)
    for f in d:
        ops = set(condition[f.key]["then"]["properties"])
        assert ops == {op for op, types in OPERATORS.items() if f.type in types}


def test_shipped_playbooks_satisfy_the_schema_directly() -> None:
    validator = jsonschema.Draft202012Validator(
        json.loads((REPO / "schemas" / "playbook.schema.json").read_text(encoding="utf-8"))
    )
    for path in sorted(SETTINGS.playbooks_dir.glob("*.yaml")):
        assert list(validator.iter_errors(load_file(path).data)) == [], path
        assert path.read_text(encoding="utf-8").startswith(
            "# yaml-language-server: $schema=../schemas/playbook.schema.json"
        )


def test_schema_and_validator_agree_on_the_fixtures() -> None:
    """Files the validator rejects for structure are rejected by the editor schema too."""
    validator = jsonschema.Draft202012Validator(playbook_schema(dictionary()))
    structural = [
        "unknown_field.audience.yaml",
        "unknown_key.top.yaml",
        "unknown_operator.audience.yaml",
        "operator_type.audience.yaml",
        "bad_enum_value.audience.yaml",
        "two_kinds_one_item.actions.yaml",
        "unknown_action.actions.yaml",
        "missing_actions.yaml",
        "bad_id.yaml",
        "bad_duration.limits.yaml",
        "bad_duration.audience.yaml",
    ]
    for name in structural:
        data = load_file(REPO / "tests" / "fixtures" / "invalid" / name).data
        assert list(validator.iter_errors(data)), name
    for path in (REPO / "tests" / "fixtures" / "valid").glob("*.yaml"):
        assert list(validator.iter_errors(load_file(path).data)) == [], path
