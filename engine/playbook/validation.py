"""The one validator behind every entry point: CLI, daemon, tests and dry-run.

A file goes through three stages and every problem of every stage is collected:
YAML (with positions, duplicate keys and YAML 1.1 traps), the JSON Schema (structure, unknown
keys with "did you mean"), then meaning (fields from the data dictionary, operators that fit
their types, cron, durations, templates rendered against a typed sample customer). Only a
file with no errors becomes a :class:`~engine.playbook.model.Playbook`.
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

from engine.actions import REGISTRY
from engine.actions.base import ParseContext
from engine.actions.compliance import MessageTexts, load_texts
from engine.actions.templates import sample_value
from engine.conditions.ast import EVERYONE, Condition
from engine.conditions.context import Selection, parse_context
from engine.conditions.goals import KINDS as GOAL_KINDS
from engine.conditions.goals import Goal, parse_goal
from engine.conditions.parse import ConditionParser
from engine.conditions.segments import SegmentLibrary
from engine.core.diagnostics import Diagnostic, PathPart
from engine.core.diagnostics import dotted as _dotted
from engine.core.dictionary import DataDictionary
from engine.core.durations import DurationError, parse_duration
from engine.core.i18n import CATALOG, t
from engine.core.settings import Settings
from engine.core.yamlfile import Document, load_file
from engine.playbook.model import Limits, Playbook
from engine.playbook.schema import playbook_schema
from engine.rendering.renderer import Renderer, template_context
from engine.triggers.event import EventTrigger
from engine.triggers.event_model import sample_event
from engine.triggers.event_parse import parse_event_trigger
from engine.triggers.schedule import Schedule, is_valid_cron

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
    def __init__(
        self,
        settings: Settings,
        dictionary: DataDictionary,
        texts: MessageTexts | None = None,
    ) -> None:
        """``texts``: the signature and opt-out texts SMS parts are counted with; by default
        the deployment's (config/policy.yaml), a daemon passes its last good ones."""
        self.settings = settings
        self.dictionary = dictionary
        self.texts = texts if texts is not None else load_texts(settings.policy_path)
        self.renderer = Renderer(settings.templates_dir, dictionary)
        self.schema = playbook_schema(dictionary)
        self.json_validator = jsonschema.Draft202012Validator(self.schema)
        self.sample_customer = {f.key: sample_value(f.type, f.values, f.pii) for f in dictionary}
        self.segments = SegmentLibrary.load(dictionary, settings.segments_dir)

    def sample_row(self, related: str) -> dict[str, Any]:
        """A typed stand-in row of a related table, for ``context:`` selections."""
        columns = self.dictionary.related[related].columns
        return {f.key: sample_value(f.type, f.values, f.pii) for f in columns.values()}

    def validate_paths(self, paths: Iterable[Path]) -> Catalog:
        catalog = Catalog()
        catalog.diagnostics += self.segments.diagnostics  # segments/ belongs to every playbook
        catalog.sources |= self.segments.sources
        seen: dict[str, tuple[str, int]] = {}
        for path in discover(paths):
            catalog.files += 1
            if not path.exists():
                catalog.diagnostics.append(Diagnostic("PB0010", t("PB0010"), str(path)))
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
                        t("PB0130", id=playbook.id, first=f"{first_file}:{first_line}"),
                        doc.path,
                        mark.line,
                        mark.col,
                        ("id",),
                        t("PB0130.hint"),
                        width=mark.width,
                    )
                )
                continue
            seen[playbook.id] = (doc.path, doc.mark(("id",)).line)
            catalog.playbooks.append(playbook)
        return catalog

    def validate_document(self, doc: Document) -> tuple[Playbook | None, list[Diagnostic]]:
        """One file's playbook or its diagnostics. A fault boundary: whatever goes wrong while
        checking this file is this file's located error, and the other files are checked as
        if it were not there."""
        check = _FileCheck(self, doc)
        try:
            playbook = check.run()
        except RecursionError:
            problem = t("PB0013.python")
            return None, [*check.diagnostics, Diagnostic("PB0013", problem, doc.path)]
        except Exception as exc:  # a bug in one file's check must not take the others down
            problem = t("PB0099", problem=type(exc).__name__)
            return None, [*check.diagnostics, Diagnostic("PB0099", problem, doc.path)]
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
            self.report("PB0003", t("PB0003.playbook"), ())
            return None
        self._schema(data)
        audience = self._audience(data)
        trigger = self._trigger(data)
        limits = self._limits(data)
        context = self._context(data)
        actions = self._actions(data, context, trigger)
        goal = self._goal(data)
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
            goal=goal,
            context=context,
        )

    # --- stage 2: JSON Schema ----------------------------------------------------------------

    def _schema(self, data: Mapping[str, Any]) -> None:
        for error in self.v.json_validator.iter_errors(data):
            path: PathT = tuple(error.absolute_path)
            if path and path[0] == "audience" and not _is_audience_shape(error):
                continue  # the condition parser reports these with dictionary hints
            if path[:2] in _GOAL_KINDS:
                continue  # parse_goal words a goal's value with its kind's own examples
            if path[:1] == ("context",) and path[2:3] == ("where",):
                continue  # the condition parser reports these with the table's columns
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
                suggestion = t("hint.did_you_mean", name=close[0]) if close else None
                self.report(
                    "PB0101",
                    t("PB0101", key=key),
                    (*path, key),
                    suggestion or t("hint.allowed", allowed=", ".join(allowed)),
                    True,
                )
        elif kind == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else "?"
            where = t("PB0100.in", path=_dotted(path)) if path else ""
            self.report("PB0100", t("PB0100", key=missing, where=where), path)
        elif kind == "type":
            expected = error.validator_value
            self.report(
                "PB0102",
                t("PB0102", expected=_type_words(expected), found=_json_type(error.instance)),
                path,
            )
        elif kind in ("enum", "const"):
            value = error.validator_value
            options = [str(o) for o in (value if isinstance(value, list) else [value])]
            close = difflib.get_close_matches(str(error.instance), options, n=1)
            hint: str | None = t("hint.did_you_mean", name=close[0]) if close else None
            self.report(
                "PB0103",
                t("PB0103", value=error.instance, options=", ".join(options)),
                path,
                hint,
            )
        elif kind == "pattern":
            if path == ("id",):
                self.report(
                    "PB0104",
                    t("PB0104", id=error.instance),
                    path,
                    t("hint.example", example="vip-inactive-60d"),
                )
            else:
                self.report(
                    "PB0110",
                    t("PB0110", value=error.instance),
                    path,
                    t("PB0110.hint"),
                )
        elif kind in ("maxProperties", "minProperties") and path[:1] == ("actions",):
            self.report(
                "PB0105",
                t("PB0105", kinds=", ".join(REGISTRY)),
                path,
                t("PB0105.hint"),
            )
        else:
            self.report("PB0106", t("PB0106", detail=_short(error.message)), path)

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
                t("PB0167"),
                ("trigger",),
                t("PB0167.hint"),
            )
            return None
        cron = str(trigger.get("schedule", ""))
        if not is_valid_cron(cron):
            self.report(
                "PB0111",
                t("PB0111", cron=cron),
                ("trigger", "schedule"),
                t("PB0111.hint"),
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
                self.report("PB0110", exc.message, ("limits", "once_per_customer"))
        return Limits(
            once_per_customer=cooldown,
            max_per_run=raw.get("max_per_run"),
            quiet_hours=raw.get("quiet_hours", "wait"),
        )

    def _goal(self, data: Mapping[str, Any]) -> Goal | None:
        raw = data.get("goal")
        if not isinstance(raw, dict) or not self._clean(("goal",)):
            return None

        def parser(scope: DataDictionary, nested: bool) -> ConditionParser:
            return ConditionParser(scope, self.report, self.v.segments, nested=nested)

        return parse_goal(raw, ("goal",), self.v.dictionary, self.report, parser)

    def _context(self, data: Mapping[str, Any]) -> tuple[Selection, ...]:
        if not self._clean(("context",)):
            return ()

        def parser(scope: DataDictionary) -> ConditionParser:
            return ConditionParser(scope, self.report, nested=True)

        return parse_context(data.get("context"), self.v.dictionary, self.report, parser)

    def _actions(
        self,
        data: Mapping[str, Any],
        context: tuple[Selection, ...],
        trigger: Schedule | EventTrigger | None,
    ) -> list[Any]:
        raw = data.get("actions")
        if not isinstance(raw, list):
            return []
        rows = {s.name: [self.v.sample_row(s.source)] for s in context}

        def sample(rows: Mapping[str, Any]) -> dict[str, Any]:
            found = template_context(
                self.v.sample_customer,
                playbook_id=str(data.get("id", "sample")),
                playbook_title=str(data.get("title", "")),
                bank_name=self.v.settings.bank_name,
                now=dt.datetime(2026, 1, 31, 9, 30),
                rows=rows,
            )
            if isinstance(trigger, EventTrigger):
                # templates see the match's first event: a typed sample of its type(s)
                found["event"] = sample_event(trigger.first.types, self.v.settings.timezone)
            return found

        ctx = ParseContext(
            report=self.report,
            dictionary=self.v.dictionary,
            renderer=self.v.renderer,
            settings=self.v.settings,
            category=str(data.get("category", "marketing")),
            texts=self.v.texts,
            sample=sample(rows),
            empty_sample=sample({name: [] for name in rows}) if rows else None,
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


_GOAL_KINDS = tuple(("goal", kind) for kind in GOAL_KINDS)


def _is_audience_shape(error: jsonschema.ValidationError) -> bool:
    # 'audience: 42' or 'audience: everybody' are shape errors the schema words best.
    return len(error.absolute_path) == 1 and not isinstance(error.instance, dict)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return t("found.bool", value=str(value).lower())
    if isinstance(value, int | float):
        return t("found.number", value=value)
    if isinstance(value, str):
        return t("found.text", value=value)
    if isinstance(value, list):
        return t("found.list")
    if isinstance(value, dict):
        return t("found.mapping")
    return t("found.nothing") if value is None else type(value).__name__


def _type_words(expected: Any) -> str:
    def word(name: str) -> str:
        return t(f"type.{name}") if f"type.{name}" in CATALOG else name

    if isinstance(expected, list):
        out = word(str(expected[0])) if expected else ""
        for e in expected[1:]:
            out = t("type.or", left=out, right=word(str(e)))
        return out
    return word(str(expected))


def _short(message: str) -> str:
    return message if len(message) < 160 else message[:157] + "…"
