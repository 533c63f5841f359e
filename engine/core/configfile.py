"""Deployment configuration files (``config/*.yaml``): read with positions, checked by schema.

The contact policy and the channel settings are edited by people (compliance, IT), so a
mistake is reported like a playbook error: file, line, column, what was expected. Only
``yaml.safe_load``-equivalent parsing is used (the playbook loader, which keeps positions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from engine.core.diagnostics import PathPart, dotted
from engine.core.durations import DurationError, parse_duration
from engine.core.errors import EngineError
from engine.core.yamlfile import Document, load_file


class ConfigError(EngineError):
    """A configuration file is missing a key, has a wrong value, or is not YAML."""


def load_config(path: Path, schema: Mapping[str, Any], code: str) -> ConfigFile:
    """Read ``path`` and check it against ``schema``; the first problem is one clear error."""
    if not path.exists():
        raise ConfigError(
            "configuration file not found",
            code=code,
            where=str(path),
            hint="copy the shipped file from config/ of the engine's repository",
        )
    doc = load_file(path)
    errors = [d for d in doc.diagnostics if d.is_error]
    if errors:
        d = errors[0]
        raise ConfigError(d.message, code=code, where=f"{path}:{d.line}:{d.col}", hint=d.hint)
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping of keys", code=code, where=str(path))
    validator = jsonschema.Draft202012Validator(schema)
    problems = sorted(validator.iter_errors(doc.data), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        where = tuple(first.absolute_path)
        raise ConfigError(
            f"{dotted(where) or 'top level'}: {_words(first)}",
            code=code,
            where=_where(doc, where),
        )
    return ConfigFile(doc, code)


class ConfigFile:
    """A checked configuration document; typed readers report errors at their position."""

    def __init__(self, doc: Document, code: str) -> None:
        self.doc = doc
        self.code = code
        self.data: dict[str, Any] = doc.data

    @property
    def path(self) -> str:
        return self.doc.path

    def error(
        self, path: tuple[PathPart, ...], message: str, hint: str | None = None
    ) -> ConfigError:
        return ConfigError(
            f"{dotted(path)}: {message}", code=self.code, where=_where(self.doc, path), hint=hint
        )

    def duration(self, value: Any, path: tuple[PathPart, ...]) -> dt.timedelta:
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise self.error(path, str(exc)) from exc


def _where(doc: Document, path: tuple[PathPart, ...]) -> str:
    mark = doc.mark(path)
    return f"{doc.path}:{mark.line}:{mark.col}"


def _words(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = (
            ", ".join(error.schema.get("properties", {})) if isinstance(error.schema, dict) else ""
        )
        return f"{error.message} (allowed: {allowed})" if allowed else error.message
    return error.message
