"""The data dictionary: the only place customer field names are declared.

Validation (is this field known, does the operator fit its type), the SQL compiler (which
column or expression) and the template checker (which variables exist) all read a
:class:`DataDictionary`; nothing else names customer fields.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from engine.core.errors import EngineError
from engine.core.i18n import Lang, Msg, choose_lang, localize, t
from engine.core.yamlfile import load_file

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


LookupValue = str | int | float | bool
"""A value a lookup's ``where`` compares a column with (as YAML gives it)."""

PICKS = ("min", "max")


@dataclass(frozen=True)
class Lookup:
    """A column of another table found by key: ``table.column`` of the row whose
    ``table.key`` equals the customer's ``by`` column (``branches.name`` where ``branches.id
    = customers.branch_id``). Compiled to one LEFT JOIN per query, shared by every field of
    the same table and key, so the planner joins once instead of probing once per row;
    ``key`` must be unique in ``table`` (check-mapping refuses it otherwise, E0533), or a
    customer would be counted once per match.

    With ``pick`` it is *grouped*: one value chosen among the rows under the key (those
    whose columns equal ``where``'s values), the smallest or largest ``column`` (the branch's
    leader: ``MIN(managers.id)`` among its managers of role ``branch_leader``). It joins a
    table grouped by ``key``, one row per key by construction, so ``key`` need not be unique.
    """

    table: str
    key: str
    by: str
    column: str
    # grouped lookups: column -> value, sorted by column so equal filters share their join
    where: tuple[tuple[str, LookupValue], ...] = ()
    pick: Literal["min", "max"] | None = None

    @property
    def grouped(self) -> bool:
        """One value chosen among several rows (``pick``), not the one row of a unique key."""
        return self.pick is not None

    @property
    def shared(self) -> tuple[object, ...]:
        """What fields must have in common to read one join: everything but ``column``."""
        return (self.table, self.key, self.by, self.where, self.pick)

    @property
    def alias(self) -> str:
        """The join's name in SQL: one per table and key (and filter and pick, for a grouped
        lookup), whatever column is read; the compiler makes it unique if two clash."""
        key = "" if self.key == "id" else f"_{self.key}"
        plain = f"{self.table}{key}_by_{self.by}"
        if self.pick is None:
            return plain
        named = "_".join([self.pick, plain, *(f"{c}_{v}" for c, v in self.where)])
        # PostgreSQL cuts names at 63 bytes; a value that is no plain name is left out
        return (
            named if len(named) <= 63 and _IDENTIFIER.fullmatch(named) else f"{self.pick}_{plain}"
        )


LOOKUP_PARTS = ("table", "key", "by", "column")
LOOKUP_CHOICE = ("where", "pick")  # optional: a grouped lookup
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

TODAY = "today"


@dataclass(frozen=True)
class Validity:
    """Plausibility bounds of a field (``valid:``), all inclusive: a value outside them is
    stored and well formed but cannot be true (a birthday in the future, a negative AUM), so
    it reads as empty, like a malformed one. ``not_after: today`` means on or before the
    run's date (``as_of`` in the bank's time zone), never the database's clock."""

    min: float | None = None
    max: float | None = None
    not_before: dt.date | None = None
    not_after: dt.date | Literal["today"] | None = None


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
    lookup: Lookup | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    pii: str | None = None
    # for a date field: the enum field saying which calendar the customer keeps it by
    # (solar / lunar), used by ``anniversary: {calendar: customer}``
    calendar_field: str | None = None
    valid: Validity | None = None

    @property
    def is_stored(self) -> bool:
        """A value kept in a column (of the customer's table or a looked-up one), so read
        checked for its type; a ``sql:`` value is computed and taken as it comes."""
        return self.column is not None or self.lookup is not None

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
    # related records (holdings, transactions, …) and value histories (AUM snapshots)
    related: Mapping[str, RelatedTable] = field(default_factory=dict)
    changes: Mapping[str, ChangeSeries] = field(default_factory=dict)
    source: Path | None = None
    # the customer-table column partitioned daemons hash (engine/store/partitions.py); None:
    # the key. Checked against the database when a daemon or run is partitioned (E1043)
    partition_column: str | None = None

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


@dataclass(frozen=True)
class RelatedTable:
    """Rows that belong to a customer (``table.link`` = customer key), with the columns a
    playbook may filter and aggregate on."""

    key: str
    label: str
    name: str
    table: str
    link: str
    columns: Mapping[str, Field]

    @property
    def scope(self) -> DataDictionary:
        """The columns as a dictionary of their own, so related filters reuse the field parser,
        the SQL compiler and the Python evaluator unchanged."""
        return DataDictionary(fields=self.columns, customer_table=self.table, key=self.link)


@dataclass(frozen=True)
class ChangeSeries:
    """A customer value and its dated history (``table.at`` → ``table.value``), for
    "AUM down 30% over 30 days"."""

    key: str
    label: str
    name: str
    current: str  # the customer field holding today's value
    table: str
    link: str
    at: str
    value: str


RESERVED_KEYS = frozenset({"all", "any", "not", "segment", "calendar"})

SQL_PARAMETERS = ("as_of", "as_of_time")
"""The bound parameters a field's ``sql`` may name: the run's local calendar day (a date) and
its local date and time (a timestamp), so a field can read a dated table "as of the run date"
and a dry-run for a past day sees that day's values."""

# SQLAlchemy's own rule for ``text()``: ``:name`` not preceded by a word character, a colon or
# a backslash, and not followed by a colon (so PostgreSQL's ``x::date`` is no parameter, and
# ``\:`` writes a colon). The SQL compiler binds exactly what this finds.
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")


def sql_parameters(sql: str) -> tuple[str, ...]:
    """The bound parameters (``:as_of``) an SQL expression names, in order, each once."""
    return tuple(dict.fromkeys(_BIND.findall(sql)))


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
    _check_calendar_fields(path, fields)
    related = {
        str(name): _parse_related(path, str(name), spec)
        for name, spec in (raw.get("related") or {}).items()
    }
    changes = {
        str(name): _parse_change(path, str(name), spec, fields)
        for name, spec in (raw.get("changes") or {}).items()
    }
    for name in [*related, *changes]:
        if name in fields or name in RESERVED_KEYS or (name in related and name in changes):
            raise DictionaryError(
                f"{name!r} is used twice (fields, related, changes and all/any/not/segment/"
                "calendar share one namespace in playbooks)",
                code="E0212",
                where=str(path),
            )
    return DataDictionary(
        fields=fields,
        customer_table=str(raw.get("customer_table", "customers")),
        key=str(raw.get("key", "id")),
        channels=links["channels"],
        assignees=links["assignees"],
        related=related,
        changes=changes,
        source=path,
        partition_column=_optional_name(raw.get("partition_column")),
    )


def _optional_name(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _check_calendar_fields(path: Path, fields: Mapping[str, Field]) -> None:
    for f in fields.values():
        if f.calendar_field is None:
            continue
        flag = fields.get(f.calendar_field)
        if f.type != "date" or flag is None or flag.type != "enum" or "lunar" not in flag.values:
            raise DictionaryError(
                "calendar_field belongs on a date field and names an enum field with the "
                "value 'lunar'",
                code="E0213",
                where=f"{path}: fields.{f.key}",
            )


def _parse_related(path: Path, name: str, spec: Any) -> RelatedTable:
    where = f"{path}: related.{name}"
    if not isinstance(spec, dict) or not isinstance(spec.get("columns"), dict):
        raise DictionaryError(
            "a related table needs table, key and a 'columns' mapping", code="E0214", where=where
        )
    columns = {
        str(k): _parse_field(path, str(k), v, f"related.{name}.columns")
        for k, v in spec["columns"].items()
    }
    if any(c.type == "tags" or c.calendar_field for c in columns.values()):
        raise DictionaryError(
            "related columns cannot be tags or carry calendar_field", code="E0214", where=where
        )
    return RelatedTable(
        key=name,
        label=str(spec.get("label", name)),
        name=str(spec.get("name", name)),
        table=str(spec.get("table", name)),
        link=str(spec.get("key", "customer_id")),
        columns=columns,
    )


def _parse_change(path: Path, name: str, spec: Any, fields: Mapping[str, Field]) -> ChangeSeries:
    where = f"{path}: changes.{name}"
    try:
        history = spec["history"]
        series = ChangeSeries(
            key=name,
            label=str(spec.get("label", name)),
            name=str(spec.get("name", name)),
            current=str(spec["current"]),
            table=str(history["table"]),
            link=str(history.get("key", "customer_id")),
            at=str(history["at"]),
            value=str(history["value"]),
        )
    except (KeyError, TypeError) as exc:
        raise DictionaryError(
            "a change needs 'current' (a field) and 'history' {table, key, at, value}",
            code="E0215",
            where=where,
        ) from exc
    current = fields.get(series.current)
    if current is None or not current.is_numeric:
        raise DictionaryError(
            f"'current' must name a numeric field, not {series.current!r}",
            code="E0215",
            where=where,
        )
    return series


def _parse_field(path: Path, key: str, spec: Any, section: str = "fields") -> Field:
    where = f"{path}: {section}.{key}"
    if not isinstance(spec, dict):
        raise DictionaryError("a field must be a mapping", code="E0204", where=where)
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES:
        raise DictionaryError(
            f"unknown type {ftype!r}; expected one of {', '.join(FIELD_TYPES)}",
            code="E0205",
            where=where,
        )
    sources = [s for s in ("column", "sql", "tags", "lookup") if spec.get(s)]
    if len(sources) != 1:
        raise DictionaryError(
            "a field needs exactly one of 'column', 'sql', 'lookup' or 'tags'",
            code="E0206",
            where=where,
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
    lookup = None
    if spec.get("lookup"):
        lookup = _parse_lookup(path, (*section.split("."), key, "lookup"), spec["lookup"])
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
    valid = _parse_validity(spec.get("valid"), ftype, spec, where)
    if spec.get("sql"):
        _check_sql_parameters(path, (*section.split("."), key, "sql"), str(spec["sql"]))
    return Field(
        key=key,
        type=ftype,
        label=str(spec.get("label", key)),
        name=str(spec.get("name", key)),
        column=spec.get("column"),
        sql=spec.get("sql"),
        tags=tags,
        lookup=lookup,
        values={str(k): str(v) for k, v in values.items()},
        pii=pii,
        calendar_field=spec.get("calendar_field"),
        valid=valid,
    )


VALID_KEYS = {"number": ("min", "max"), "date": ("not_before", "not_after")}


def _parse_validity(raw: Any, ftype: str, spec: Mapping[str, Any], where: str) -> Validity | None:
    """``valid: {min: 0}`` on a number, ``valid: {not_after: today}`` on a date."""
    if raw is None:
        return None
    family = "number" if ftype in NUMERIC_TYPES else "date" if ftype in TEMPORAL_TYPES else None
    if family is None:
        raise DictionaryError(
            f"'valid' bounds belong on number, money, integer, date or datetime fields, "
            f"not on a {ftype} field",
            code="E0216",
            where=f"{where}.valid",
        )
    allowed = VALID_KEYS[family]
    example = "{min: 0}" if family == "number" else "{not_after: today}"
    if not isinstance(raw, dict) or not raw or any(k not in allowed for k in raw):
        raise DictionaryError(
            f"'valid' on a {ftype} field is a mapping of {' and/or '.join(allowed)}, "
            f"e.g. valid: {example}",
            code="E0216",
            where=f"{where}.valid",
        )
    if not spec.get("column") and not spec.get("lookup"):
        raise DictionaryError(
            "'valid' bounds apply to stored columns; a 'sql' field computes its value, so put "
            "the bound into the expression",
            code="E0216",
            where=f"{where}.valid",
        )
    if family == "number":
        bounds = {}
        for k in allowed:
            v = raw.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise DictionaryError(
                    f"valid.{k} must be a number, not {v!r}", code="E0216", where=f"{where}.valid"
                )
            bounds[k] = None if v is None else float(v)
        low, high = bounds["min"], bounds["max"]
        if low is not None and high is not None and low > high:
            raise DictionaryError(
                f"valid.min {low:g} is above valid.max {high:g}",
                code="E0216",
                where=f"{where}.valid",
            )
        return Validity(min=low, max=high)
    dates: dict[str, dt.date | Literal["today"] | None] = {}
    for k in allowed:
        v = raw.get(k)
        if isinstance(v, dt.datetime):
            v = v.date()
        if v == TODAY and k == "not_after":
            dates[k] = "today"
        elif v is None or isinstance(v, dt.date):
            dates[k] = v
        else:
            hint = "a date (2000-01-01) or today" if k == "not_after" else "a date (1900-01-01)"
            raise DictionaryError(
                f"valid.{k} must be {hint}, not {v!r}", code="E0216", where=f"{where}.valid"
            )
    before, after = dates["not_before"], dates["not_after"]
    if isinstance(before, dt.date) and isinstance(after, dt.date) and before > after:
        raise DictionaryError(
            f"valid.not_before {before} is after valid.not_after {after}",
            code="E0216",
            where=f"{where}.valid",
        )
    return Validity(not_before=before if isinstance(before, dt.date) else None, not_after=after)


def _parse_lookup(path: Path, at: tuple[str, ...], raw: Any) -> Lookup:
    """``lookup: {table, key, by, column}``, every part a plain SQL name (they are written
    into the query as they are), and for a grouped lookup ``pick`` (min / max) with an
    optional ``where`` of column: value; each mistake at its own line and column."""
    lang = choose_lang()
    field = ".".join(at[:-1])
    if isinstance(raw, dict):
        for part in raw:
            if part not in (*LOOKUP_PARTS, *LOOKUP_CHOICE):
                close = difflib.get_close_matches(str(part), (*LOOKUP_PARTS, *LOOKUP_CHOICE), n=1)
                raise DictionaryError(
                    str(localize(t("E0530", field=field, part=part), lang)),
                    code="E0530",
                    where=_located(path, (*at, str(part)), str(part), key=True),
                    hint=localize(t("E0530.hint", near=close[0] if close else "column"), lang),
                )
        missing = [p for p in LOOKUP_PARTS if raw.get(p) in (None, "")]
    else:
        missing = list(LOOKUP_PARTS)
    if missing:
        raise DictionaryError(
            str(localize(t("E0531", field=field, missing=", ".join(missing)), lang)),
            code="E0531",
            where=_located(path, at, "lookup", key=True),
            hint=localize(t("E0531.hint"), lang),
        )
    for part in LOOKUP_PARTS:
        value = raw[part]
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise DictionaryError(
                str(localize(t("E0532", field=field, part=part, value=value), lang)),
                code="E0532",
                where=_located(path, (*at, part), str(value)),
                hint=localize(t("E0532.hint"), lang),
            )
    pick = raw.get("pick")
    if "pick" in raw and pick not in PICKS:
        raise DictionaryError(
            str(localize(t("E0534", field=field, value=pick), lang)),
            code="E0534",
            where=_located(path, (*at, "pick"), str(pick)),
            hint=localize(t("E0534.hint"), lang),
        )
    where = _parse_where(path, at, raw["where"], field, lang) if "where" in raw else ()
    if "where" in raw and pick is None:
        raise DictionaryError(
            str(localize(t("E0536", field=field), lang)),
            code="E0536",
            where=_located(path, (*at, "where"), "where", key=True),
            hint=localize(t("E0536.hint"), lang),
        )
    return Lookup(
        table=raw["table"],
        key=raw["key"],
        by=raw["by"],
        column=raw["column"],
        where=where,
        pick=pick,
    )


def _parse_where(
    path: Path, at: tuple[str, ...], raw: Any, field: str, lang: Lang
) -> tuple[tuple[str, LookupValue], ...]:
    """A grouped lookup's ``where: {column: value, …}``: plain column names, each equal to
    one text, number or true/false (a list, a mapping, a date or null is refused, E0535)."""

    def refuse(problem: Msg, place: tuple[str, ...], needle: str, *, key: bool = False) -> NoReturn:
        raise DictionaryError(
            str(localize(t("E0535", field=field, problem=problem), lang)),
            code="E0535",
            where=_located(path, place, needle, key=key),
            hint=localize(t("E0535.hint"), lang),
        )

    if not isinstance(raw, dict) or not raw:
        refuse(t("E0535.mapping"), (*at, "where"), "where", key=True)
    out: dict[str, LookupValue] = {}
    for name, value in raw.items():
        place = (*at, "where", str(name))
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            refuse(t("E0535.name", name=name), place, str(name), key=True)
        if not isinstance(value, str | int | float | bool):
            found = "null" if value is None else type(value).__name__
            refuse(t("E0535.value", name=name, found=found), place, str(name), key=True)
        out[name] = value
    return tuple(sorted(out.items()))


def _check_sql_parameters(path: Path, at: tuple[str, ...], sql: str) -> None:
    """A ``:name`` the engine does not bind would fail every run at the database, far from
    the dictionary line that wrote it: refuse it at load, at its line and column."""
    unknown = [p for p in sql_parameters(sql) if p not in SQL_PARAMETERS]
    if not unknown:
        return
    lang = choose_lang()
    field = ".".join(at[:-1])
    raise DictionaryError(
        str(localize(t("E0520", field=field, param=unknown[0]), lang)),
        code="E0520",
        where=_located(path, at, f":{unknown[0]}"),
        hint=localize(t("E0520.hint"), lang),
    )


def _located(path: Path, at: tuple[str, ...], needle: str, *, key: bool = False) -> str:
    """``file:line:col`` of ``needle`` inside the value at ``at`` (of the value itself when the
    text cannot be found there, e.g. a folded string); ``key``: in the key at ``at``."""
    doc = load_file(path)
    mark = doc.mark(at, key=key)
    lines = doc.text.splitlines()
    line, col = mark.line, mark.col
    for number in range(mark.line, min(mark.line + 20, len(lines)) + 1):
        start = mark.col - 1 if number == mark.line else 0
        found = lines[number - 1].find(needle, start)
        if found >= 0:
            line, col = number, found + 1
            break
    return f"{path}:{line}:{col}"
