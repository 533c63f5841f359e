"""Deployment configuration files (``config/*.yaml``): read with positions, checked by schema.

The contact policy and the channel settings are edited by people (compliance, IT), so a
mistake is reported like a playbook error: file, line, column, what was expected. Only
``yaml.safe_load``-equivalent parsing is used (the playbook loader, which keeps positions).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from engine.core.diagnostics import PathPart, dotted
from engine.core.durations import DurationError, parse_duration
from engine.core.errors import EngineError
from engine.core.i18n import Msg, choose_lang, localize, t
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
        first = _deepest(problems[0])
        where = tuple(first.absolute_path)
        message, hint, key = _words(first)
        lang = choose_lang()
        mark = doc.mark((*where, key), key=True) if key is not None else doc.mark(where)
        raise ConfigError(
            f"{dotted(where) or localize(t('config.top'), lang)}: {localize(message, lang)}",
            code=code,
            where=f"{doc.path}:{mark.line}:{mark.col}",
            hint=localize(hint, lang),
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
        self,
        path: tuple[PathPart, ...],
        message: str,
        hint: str | None = None,
        *,
        code: str | None = None,
        key: bool = False,
    ) -> ConfigError:
        """An error at ``path`` (its key with ``key``: a block missing something); catalog
        messages are said in the user's language, and a rule with its own code (the E042x of
        the ``messages`` section) names it."""
        lang = choose_lang()
        return ConfigError(
            f"{dotted(path)}: {localize(message, lang)}",
            code=code or self.code,
            where=_where(self.doc, path, key=key),
            hint=localize(hint, lang),
        )

    def duration(self, value: Any, path: tuple[PathPart, ...]) -> dt.timedelta:
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise self.error(path, str(exc)) from exc


def _where(doc: Document, path: tuple[PathPart, ...], *, key: bool = False) -> str:
    mark = doc.mark(path, key=key)
    return f"{doc.path}:{mark.line}:{mark.col}"


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For "one of these shapes" errors, the problem inside the shape the value was closest
    to (a cap given as a list: its bad item), not the schema's own wording."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        # the deepest problem is inside the shape the value took; on a tie, not a type error
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


_TYPE_WORDS = frozenset({"integer", "number", "string", "object", "array", "boolean"})


def _words(error: jsonschema.ValidationError) -> tuple[Msg, Msg | None, str | None]:
    """(message, hint, the unknown key to point at) in the catalog's words, for people who
    edit YAML, not JSON Schema."""
    value = error.instance
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if error.validator == "type":
        expected = error.validator_value
        kinds = [str(k) for k in expected] if isinstance(expected, list) else [str(expected)]
        kind = kinds[0] if kinds[0] in _TYPE_WORDS else "string"
        words = t(f"valuetype.{kind}")
        return t("config.type", expected=words, got=shown), None, None
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return t("config.required", name=missing), None, None
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        name = str(extra[0]) if extra else "?"
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = t("hint.did_you_mean", name=close[0]) if close else None
        return t("config.unknown", name=name, allowed=", ".join(allowed)), hint, name
    if error.validator in ("enum", "const"):
        given = error.validator_value
        options = list(given) if error.validator == "enum" and isinstance(given, list) else [given]
        close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
        hint = t("hint.did_you_mean", name=close[0]) if close else None
        return t("config.enum", value=shown, allowed=", ".join(map(str, options))), hint, None
    if error.validator == "pattern" and "min|h|d|w" in str(error.validator_value):
        return t("config.duration", value=shown), None, None
    if error.validator == "minimum":
        return t("config.minimum", value=shown, minimum=error.validator_value), None, None
    return t("config.other", problem=error.message), None, None
