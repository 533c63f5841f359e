"""The data dictionary: the only place customer field names are declared.

Validation (is this field known, does the operator fit its type), the SQL compiler (which
column or expression) and the template checker (which variables exist) all read a
:class:`DataDictionary`; nothing else names customer fields.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from engine.errors import EngineError

FieldType = Literal[
    "string", "integer", "number", "money", "date", "datetime", "boolean", "enum", "tags"
]
FIELD_TYPES: tuple[str, ...] = (
    "string",
    "integer",
    "number",
    "money",
    "date",
    "datetime",
    "boolean",
    "enum",
    "tags",
)
NUMERIC_TYPES = frozenset({"integer", "number", "money"})
TEMPORAL_TYPES = frozenset({"date", "datetime"})
PII_KINDS = frozenset({"phone", "email", "name", "id"})


@dataclass(frozen=True)
class TagSource:
    """Labels kept one per row in a side table (``table.key`` = customer key)."""

    table: str
    key: str
    column: str


@dataclass(frozen=True)
class Field:
    """One customer field a playbook may use."""

    key: str
    type: FieldType
    label: str
    name: str
    column: str | None = None
    sql: str | None = None
    tags: TagSource | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    pii: str | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def is_temporal(self) -> bool:
        return self.type in TEMPORAL_TYPES


@dataclass(frozen=True)
class DataDictionary:
    """All fields of one deployment, keyed by their playbook name."""

    fields: Mapping[str, Field]
    customer_table: str = "customers"
    key: str = "id"
    # channel -> field holding the address (sms -> phone), used by message actions
    channels: Mapping[str, str] = field(default_factory=dict)
    # role -> field holding the assignee's id (manager -> manager_id), used by tasks
    assignees: Mapping[str, str] = field(default_factory=dict)
    source: Path | None = None

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields.values())

    def get(self, key: str) -> Field | None:
        return self.fields.get(key)

    def suggest(self, wrong: str) -> Field | None:
        """The field a typo most likely meant, matching English keys and Chinese labels."""
        by_label = {f.label: f for f in self.fields.values()}
        if wrong in by_label:
            return by_label[wrong]
        close = difflib.get_close_matches(wrong, list(self.fields), n=1, cutoff=0.6)
        if close:
            return self.fields[close[0]]
        close = difflib.get_close_matches(wrong, list(by_label), n=1, cutoff=0.5)
        if close:
            return by_label[close[0]]
        return None


class DictionaryError(EngineError):
    """The data dictionary file itself is wrong: the deployment cannot start."""


def load_dictionary(path: Path) -> DataDictionary:
    """Read and check a data dictionary file; every problem is one clear error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DictionaryError("data dictionary not found", code="E0201", where=str(path)) from exc
    except yaml.YAMLError as exc:
        raise DictionaryError(
            f"data dictionary is not valid YAML: {exc}", code="E0202", where=str(path)
        ) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict):
        raise DictionaryError(
            "data dictionary needs a 'fields' mapping", code="E0203", where=str(path)
        )
    fields = {key: _parse_field(path, str(key), spec) for key, spec in raw["fields"].items()}
    links = {}
    for section in ("channels", "assignees"):
        mapping = raw.get(section) or {}
        for name, target in mapping.items():
            if target not in fields:
                raise DictionaryError(
                    f"{section}.{name} names unknown field {target!r}",
                    code="E0211",
                    where=str(path),
                )
        links[section] = {str(k): str(v) for k, v in mapping.items()}
    return DataDictionary(
        fields=fields,
        customer_table=str(raw.get("customer_table", "customers")),
        key=str(raw.get("key", "id")),
        channels=links["channels"],
        assignees=links["assignees"],
        source=path,
    )


def _parse_field(path: Path, key: str, spec: Any) -> Field:
    where = f"{path}: fields.{key}"
    if not isinstance(spec, dict):
        raise DictionaryError("a field must be a mapping", code="E0204", where=where)
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES:
        raise DictionaryError(
            f"unknown type {ftype!r}; expected one of {', '.join(FIELD_TYPES)}",
            code="E0205",
            where=where,
        )
    sources = [s for s in ("column", "sql", "tags") if spec.get(s)]
    if len(sources) != 1:
        raise DictionaryError(
            "a field needs exactly one of 'column', 'sql' or 'tags'", code="E0206", where=where
        )
    if (ftype == "tags") != (sources[0] == "tags"):
        raise DictionaryError(
            "type 'tags' and a 'tags' source go together", code="E0207", where=where
        )
    tags = None
    if spec.get("tags"):
        t = spec["tags"]
        try:
            tags = TagSource(table=str(t["table"]), key=str(t["key"]), column=str(t["column"]))
        except (KeyError, TypeError) as exc:
            raise DictionaryError(
                "'tags' needs table, key and column", code="E0208", where=where
            ) from exc
    values = spec.get("values") or {}
    if ftype == "enum" and not values:
        raise DictionaryError("an enum field needs 'values'", code="E0209", where=where)
    pii = spec.get("pii")
    if pii is not None and pii not in PII_KINDS:
        raise DictionaryError(
            f"unknown pii kind {pii!r}; expected one of {', '.join(sorted(PII_KINDS))}",
            code="E0210",
            where=where,
        )
    return Field(
        key=key,
        type=ftype,
        label=str(spec.get("label", key)),
        name=str(spec.get("name", key)),
        column=spec.get("column"),
        sql=spec.get("sql"),
        tags=tags,
        values={str(k): str(v) for k, v in values.items()},
        pii=pii,
    )
