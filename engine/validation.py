"""The one validator behind every entry point: CLI, daemon, tests and dry-run.

A file goes through three stages and every problem of every stage is collected:
YAML (with positions, duplicate keys and YAML 1.1 traps), the JSON Schema (structure, unknown
keys with "did you mean"), then meaning (fields from the data dictionary, operators that fit
their types, cron, durations, templates rendered against a typed sample customer). Only a
file with no errors becomes a :class:`~engine.playbook.Playbook`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from croniter import croniter

from engine.actions import REGISTRY
from engine.actions.base import ParseContext
from engine.actions.templates import sample_value
from engine.conditions.ast import EVERYONE, Condition
from engine.conditions.parse import ConditionParser
from engine.conditions.segments import SegmentLibrary
from engine.config import Settings
from engine.diagnostics import Diagnostic, PathPart
from engine.diagnostics import dotted as _dotted
from engine.dictionary import DataDictionary
from engine.durations import DurationError, parse_duration
from engine.events.model import sample_event
from engine.events.parse import parse_event_trigger
from engine.events.trigger import EventTrigger
from engine.loading import Document, load_file
from engine.playbook import Limits, Playbook, Schedule
from engine.rendering import Renderer, template_context
from engine.schema import playbook_schema

PathT = tuple[PathPart, ...]
PLAYBOOK_SUFFIXES = (".yaml", ".yml")


@dataclass
class Catalog:
    """The outcome of validating a set of files: good playbooks and every diagnostic."""

    playbooks: list[Playbook] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    files: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]


def discover(paths: Iterable[Path]) -> list[Path]:
    """Playbook files under the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in PLAYBOOK_SUFFIXES)
        else:
            found.append(path)
    return found


class Validator:
    def __init__(self, settings: Settings, dictionary: DataDictionary) -> None:
        self.settings = settings
        self.dictionary = dictionary
        self.renderer = Renderer(settings.templates_dir, dictionary)
        self.schema = playbook_schema(dictionary)
        self.json_validator = jsonschema.Draft202012Validator(self.schema)
        self.sample_customer = {f.key: sample_value(f.type, f.values, f.pii) for f in dictionary}
        self.segments = SegmentLibrary.load(dictionary, settings.segments_dir)

    def validate_paths(self, paths: Iterable[Path]) -> Catalog:
        catalog = Catalog()
        catalog.diagnostics += self.segments.diagnostics  # segments/ belongs to every playbook
        catalog.sources |= self.segments.sources
        seen: dict[str, tuple[str, int]] = {}
        for path in discover(paths):
            catalog.files += 1
            if not path.exists():
                catalog.diagnostics.append(
                    Diagnostic("PB0010", "no such file or folder", str(path))
                )
                continue
            doc = load_file(path)
            catalog.sources[doc.path] = doc.text
            playbook, diagnostics = self.validate_document(doc)
            catalog.diagnostics += diagnostics
            if playbook is None:
                continue
            if playbook.id in seen:
                first_file, first_line = seen[playbook.id]
                mark = doc.mark(("id",))
                catalog.diagnostics.append(
                    Diagnostic(
                        "PB0130",
                        f"playbook id '{playbook.id}' is already used by {first_file}:{first_line}",
                        doc.path,
                        mark.line,
                        mark.col,
                        ("id",),
                        "every playbook needs its own id",
                        width=mark.width,
                    )
                )
                continue
            seen[playbook.id] = (doc.path, doc.mark(("id",)).line)
            catalog.playbooks.append(playbook)
        return catalog

    def validate_document(self, doc: Document) -> tuple[Playbook | None, list[Diagnostic]]:
        check = _FileCheck(self, doc)
        playbook = check.run()
        return playbook, check.diagnostics


class _FileCheck:
    """Validation of one file; collects diagnostics instead of stopping at the first."""

    def __init__(self, validator: Validator, doc: Document) -> None:
        self.v = validator
        self.doc = doc
        self.diagnostics: list[Diagnostic] = list(doc.diagnostics)
        self.schema_error_paths: list[PathT] = []

    def report(
        self, code: str, message: str, path: PathT, hint: str | None = None, at_key: bool = False
    ) -> None:
        mark = self.doc.mark(path, key=at_key)
        self.diagnostics.append(
            Diagnostic(
                code, message, self.doc.path, mark.line, mark.col, path, hint, width=mark.width
            )
        )

    def run(self) -> Playbook | None:
        data = self.doc.data
        if data is None:
            return None
        if not isinstance(data, dict):
            self.report("PB0003", "a playbook is a mapping of keys (id, title, trigger, …)", ())
            return None
        self._schema(data)
        audience = self._audience(data)
        trigger = self._trigger(data)
        limits = self._limits(data)
        actions = self._actions(data, trigger)
        if any(d.is_error for d in self.diagnostics):
            return None
        assert trigger is not None
        return Playbook(
            id=data["id"],
            title=data["title"],
            owner=data.get("owner", ""),
            enabled=data.get("enabled", True),
            category=data.get("category", "marketing"),
            priority=data.get("priority", 50),
            trigger=trigger,
            audience=audience,
            actions=tuple(actions),
            limits=limits,
            description=data.get("description", ""),
            source=self.doc.path,
            content_hash=hashlib.sha256(self.doc.text.encode()).hexdigest(),
            holdout_percent=float(data.get("holdout_percent", 0)),
        )

    # --- stage 2: JSON Schema ----------------------------------------------------------------

    def _schema(self, data: Mapping[str, Any]) -> None:
        for error in self.v.json_validator.iter_errors(data):
            path: PathT = tuple(error.absolute_path)
            if path and path[0] == "audience" and not _is_audience_shape(error):
                continue  # the condition parser reports these with dictionary hints
            self.schema_error_paths.append(path)
            self._schema_error(error, path)

    def _schema_error(self, error: jsonschema.ValidationError, path: PathT) -> None:
        kind = error.validator
        schema = error.schema if isinstance(error.schema, dict) else {}
        if kind == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(schema.get("properties", {}))
            for key in error.instance:
                if key in allowed:
                    continue
                close = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f"did you mean '{close[0]}'?" if close else None
                self.report(
                    "PB0101",
                    f"unknown key '{key}'",
                    (*path, key),
                    suggestion or f"allowed: {', '.join(allowed)}",
                    True,
                )
        elif kind == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else "?"
            where = f" in {_dotted(path)}" if path else ""
            self.report("PB0100", f"missing required key '{missing}'{where}", path)
        elif kind == "type":
            expected = error.validator_value
            self.report(
                "PB0102",
                f"expected {_type_words(expected)}, found {_json_type(error.instance)}",
                path,
            )
        elif kind in ("enum", "const"):
            value = error.validator_value
            options = [str(o) for o in (value if isinstance(value, list) else [value])]
            close = difflib.get_close_matches(str(error.instance), options, n=1)
            hint: str | None = f"did you mean '{close[0]}'?" if close else None
            self.report(
                "PB0103",
                f"'{error.instance}' is not allowed here; expected one of: {', '.join(options)}",
                path,
                hint,
            )
        elif kind == "pattern":
            if path == ("id",):
                self.report(
                    "PB0104",
                    f"id '{error.instance}' may use only lower-case letters, digits and '-'",
                    path,
                    "for example: vip-inactive-60d",
                )
            else:
                self.report(
                    "PB0110",
                    f"'{error.instance}' is not a duration",
                    path,
                    "write a number and a unit: 30d, 2w, 12h, 90min",
                )
        elif kind in ("maxProperties", "minProperties") and path[:1] == ("actions",):
            self.report(
                "PB0105",
                "each action is one item with one kind: " + ", ".join(REGISTRY),
                path,
                "start a new '- ' item for each action",
            )
        else:
            self.report("PB0106", _short(error.message), path)

    def _clean(self, path: PathT) -> bool:
        """True when no schema error lies at or under ``path``."""
        n = len(path)
        return not any(p[:n] == path for p in self.schema_error_paths)

    # --- stage 3: meaning ----------------------------------------------------------------

    def _audience(self, data: Mapping[str, Any]) -> Condition:
        if "audience" not in data or not self._clean(("audience",)):
            return EVERYONE
        parser = ConditionParser(self.v.dictionary, self.report, self.v.segments)
        return parser.audience(data["audience"], ("audience",))

    def _trigger(self, data: Mapping[str, Any]) -> Schedule | EventTrigger | None:
        trigger = data.get("trigger")
        if not isinstance(trigger, dict) or not self._clean(("trigger",)):
            return None
        if "event" in trigger:
            return parse_event_trigger(trigger, self.report)
        if "schedule" not in trigger:
            self.report(
                "PB0167",
                "a trigger needs 'schedule' (a time) or 'event' (an event type)",
                ("trigger",),
                'e.g. trigger: {schedule: "0 9 * * 1-5"} or trigger: {event: withdrawal}',
            )
            return None
        cron = str(trigger.get("schedule", ""))
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            self.report(
                "PB0111",
                f"'{cron}' is not a cron schedule",
                ("trigger", "schedule"),
                "five fields: minute hour day-of-month month weekday, "
                "e.g. '0 9 * * 1-5' = 09:00 on Monday to Friday",
            )
            return None
        return Schedule(cron)

    def _limits(self, data: Mapping[str, Any]) -> Limits:
        raw = data.get("limits")
        if not isinstance(raw, dict) or not self._clean(("limits",)):
            return Limits()
        cooldown = None
        if "once_per_customer" in raw:
            try:
                cooldown = parse_duration(raw["once_per_customer"])
            except DurationError as exc:
                self.report("PB0110", str(exc), ("limits", "once_per_customer"))
        return Limits(
            once_per_customer=cooldown,
            max_per_run=raw.get("max_per_run"),
            quiet_hours=raw.get("quiet_hours", "wait"),
        )

    def _actions(
        self, data: Mapping[str, Any], trigger: Schedule | EventTrigger | None
    ) -> list[Any]:
        raw = data.get("actions")
        if not isinstance(raw, list):
            return []
        sample = template_context(
            self.v.sample_customer,
            playbook_id=str(data.get("id", "sample")),
            playbook_title=str(data.get("title", "")),
            bank_name=self.v.settings.bank_name,
            now=dt.datetime(2026, 1, 31, 9, 30),
        )
        if isinstance(trigger, EventTrigger):
            # templates see the match's first event: a typed sample of the trigger's type(s)
            sample["event"] = sample_event(trigger.first.types, self.v.settings.timezone)
        ctx = ParseContext(
            report=self.report,
            dictionary=self.v.dictionary,
            renderer=self.v.renderer,
            settings=self.v.settings,
            category=str(data.get("category", "marketing")),
            sample=sample,
        )
        actions = []
        for i, item in enumerate(raw):
            path: PathT = ("actions", i)
            if not isinstance(item, dict) or len(item) != 1 or not self._clean(path):
                continue
            kind, spec = next(iter(item.items()))
            action = REGISTRY[kind].parse(spec, (*path, kind), ctx)
            if action is not None:
                actions.append(action)
        return actions


def _is_audience_shape(error: jsonschema.ValidationError) -> bool:
    # 'audience: 42' or 'audience: everybody' are shape errors the schema words best.
    return len(error.absolute_path) == 1 and not isinstance(error.instance, dict)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ('{value}')"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


def _type_words(expected: Any) -> str:
    words = {
        "string": "text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "array": "a list",
        "object": "a mapping",
    }
    if isinstance(expected, list):
        return " or ".join(words.get(str(e), str(e)) for e in expected)
    return words.get(expected, str(expected))


def _short(message: str) -> str:
    return message if len(message) < 160 else message[:157] + "…"
