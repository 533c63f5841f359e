"""Turn the ``audience`` part of a playbook into a typed condition tree.

Every problem is reported through ``report`` with its path, so the validator can point at
the exact key or value; parsing goes on after an error to find the others.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any, Protocol

from engine.conditions.ast import (
    EVERYONE,
    OPERATORS,
    RELATIVE_OPERATORS,
    All,
    AnyOf,
    Condition,
    Not,
    SegmentRef,
    Test,
)
from engine.conditions.special import Path, Report, SpecialForms
from engine.core.dictionary import DataDictionary, Field
from engine.core.durations import DurationError, parse_duration
from engine.core.i18n import Msg, t

BOOLEAN_KEYS = ("all", "any", "not")


class SegmentResolver(Protocol):
    def resolve(self, name: str, path: Path, report: Report) -> Condition | None: ...


MAX_DEPTH = 16
"""How many all / any / not may nest inside each other in one audience."""


class ConditionParser(SpecialForms):
    """Parses audiences (``nested=False``) and related-row filters (``nested=True``: only the
    related table's columns and all / any / not)."""

    def __init__(
        self,
        dictionary: DataDictionary,
        report: Report,
        segments: SegmentResolver | None = None,
        *,
        nested: bool = False,
    ) -> None:
        self.dictionary = dictionary
        self.report = report
        self.segments = segments
        self.nested = nested

    def audience(self, raw: Any, path: Path) -> Condition:
        """``audience: everyone`` or a condition mapping."""
        if raw == "everyone":
            return EVERYONE
        return self.condition(raw, path)

    def condition(self, raw: Any, path: Path) -> Condition:
        if sum(1 for part in path if part in ("all", "any", "not")) > MAX_DEPTH:
            # the SQL compiler and every database have a nesting limit (SQLite: "parser stack
            # overflow"); say so here, at the place, rather than fail at run time
            self.report("PB0102", t("PB0102.depth", limit=MAX_DEPTH), path, None, False)
            return EVERYONE
        if not isinstance(raw, dict) or not raw:
            self.report(
                "PB0102",
                t("PB0102.condition"),
                path,
                t("PB0102.condition.hint"),
                False,
            )
            return EVERYONE
        parts: list[Condition] = []
        for key, value in raw.items():
            child = (*path, key)
            if key in ("all", "any"):
                items = self._list(value, child)
                node: Condition = (All if key == "all" else AnyOf)(items)
                parts.append(node)
            elif key == "not":
                parts.append(Not(self.condition(value, child)))
            elif not self.nested and key == "segment":
                ref = self.segment(value, child)
                if ref is not None:
                    parts.append(ref)
            elif not self.nested and key == "calendar":
                cal = self.calendar(value, child)
                if cal is not None:
                    parts.append(cal)
            elif not self.nested and key in self.dictionary.related:
                rel = self.related(key, value, child)
                if rel is not None:
                    parts.append(rel)
            elif not self.nested and key in self.dictionary.changes:
                change = self.change(key, value, child)
                if change is not None:
                    parts.append(change)
            else:
                test = self.test(key, value, child)
                if test is not None:
                    parts.append(test)
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def _list(self, raw: Any, path: Path) -> tuple[Condition, ...]:
        if not isinstance(raw, list) or not raw:
            self.report(
                "PB0102",
                t("PB0102.list"),
                path,
                t("PB0102.list.hint"),
                False,
            )
            return ()
        return tuple(self.condition(item, (*path, i)) for i, item in enumerate(raw))

    def segment(self, raw: Any, path: Path) -> SegmentRef | None:
        if not isinstance(raw, str) or not raw:
            self.report("PB0102", t("PB0102.segment"), path, None, False)
            return None
        if self.segments is None:
            hint = t("PB0112.no_folder")
            self.report("PB0112", t("PB0112", name=raw), path, hint, False)
            return None
        found = self.segments.resolve(raw, path, self.report)
        return None if found is None else SegmentRef(raw, found)

    def test(self, name: str, raw: Any, path: Path) -> Test | None:
        field = self.dictionary.get(name)
        if field is None:
            self._unknown_field(name, path)
            return None
        return self.field_test(field, name, raw, path)

    def field_test(
        self, field: Field, name: str, raw: Any, path: Path, *, allowed: tuple[str, ...] = ()
    ) -> Test | None:
        """``raw`` as a test of ``field``; ``allowed`` narrows the operators (aggregates)."""
        if isinstance(raw, dict):
            if len(raw) != 1:
                self.report(
                    "PB0102",
                    t("PB0102.one_operator", name=name, count=len(raw)),
                    path,
                    t("PB0102.one_operator.hint"),
                    False,
                )
                return None
            op, value = next(iter(raw.items()))
            op_path = (*path, op)
            if op not in OPERATORS:
                close = difflib.get_close_matches(str(op), list(OPERATORS), n=1)
                hint = t("hint.did_you_mean", name=close[0]) if close else None
                self.report(
                    "PB0101",
                    t("PB0101.operator", op=op, allowed=", ".join(OPERATORS)),
                    op_path,
                    hint,
                    True,
                )
                return None
        elif isinstance(raw, list):
            op, value, op_path = "in", raw, path
        else:
            op, value, op_path = ("contains" if field.type == "tags" else "eq"), raw, path
        if field.type not in OPERATORS[op] or (allowed and op not in allowed):
            fitting = [
                o
                for o, types in OPERATORS.items()
                if field.type in types and (not allowed or o in allowed)
            ]
            self.report(
                "PB0108",
                t("PB0108", op=op, name=name, label=field.label, type=field.type),
                op_path,
                t("PB0108.hint", type=field.type, fitting=", ".join(fitting)),
                op_path != path,
            )
            return None
        typed = self._value(field, op, value, op_path)
        return None if typed is _BAD else Test(field.key, op, typed)

    def _unknown_field(self, name: str, path: Path) -> None:
        other = self._suggest_other(name)
        guess = self.dictionary.suggest(name)
        hint = (
            other
            or (t("hint.did_you_mean_field", name=guess.key, label=guess.label) if guess else None)
            or t("PB0107.hint")
        )
        what = t("word.column") if self.nested else t("word.field")
        self.report("PB0107", t("PB0107", what=what, name=name), path, hint, True)

    def _suggest_other(self, name: str) -> str | None:
        """Did-you-mean over related tables, changes and the special keys."""
        if self.nested:
            return None
        by_label = {v.label: k for k, v in self.dictionary.related.items()}
        by_label |= {v.label: k for k, v in self.dictionary.changes.items()}
        if name in by_label:
            return t("hint.did_you_mean", name=by_label[name])
        keys = [*self.dictionary.related, *self.dictionary.changes, "segment", "calendar"]
        close = difflib.get_close_matches(name, [*keys, *self.dictionary.fields], n=1, cutoff=0.6)
        if not close or close[0] not in keys:
            return None  # a field is closer: the field suggestion (with its label) wins
        return t("hint.did_you_mean", name=close[0])

    # --- values --------------------------------------------------------------------------

    def _value(self, field: Field, op: str, value: Any, path: Path) -> Any:
        if op == "is_null":
            if not isinstance(value, bool):
                return self._bad(path, t("PB0109.bool", what="is_null"), "is_null: true")
            return value
        if op == "in_past":
            if not isinstance(value, bool):
                return self._bad(path, t("PB0109.bool", what="in_past"), "in_past: true")
            return value
        if op == "anniversary":
            spec = self.anniversary(field, value, path)
            return _BAD if spec is None else spec
        if op in RELATIVE_OPERATORS:
            try:
                span = parse_duration(value)
            except DurationError as exc:
                return self._bad(path, exc.message, None, code="PB0110")
            if field.type == "date" and span % dt.timedelta(days=1):
                return self._bad(path, t("PB0109.whole_days", name=field.key), "30d")
            return span
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                return self._bad(path, t("PB0109.list", op=op), "[a, b]")
            items = [self._scalar(field, v, (*path, i)) for i, v in enumerate(value)]
            return _BAD if _BAD in items else tuple(items)
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                return self._bad(path, t("PB0109.between"), "[low, high]")
            low, high = (self._scalar(field, v, (*path, i)) for i, v in enumerate(value))
            if _BAD in (low, high):
                return _BAD
            if low > high:
                return self._bad(path, t("PB0109.between_order", low=low, high=high), None)
            return (low, high)
        if op == "contains":
            if not isinstance(value, str) or not value:
                return self._bad(path, t("PB0109.contains"), None)
            return value
        return self._scalar(field, value, path)

    def _scalar(self, field: Field, value: Any, path: Path) -> Any:
        kind = field.type
        if kind in ("string", "tags"):
            if isinstance(value, bool) or not isinstance(value, str | int):
                return self._bad(path, t("PB0109.text", name=field.key), None)
            return str(value)
        if kind == "enum":
            text = str(value)
            if text in field.values:
                return text
            for code, label in field.values.items():
                if label == text:
                    return code  # staff may write the Chinese label
            close = difflib.get_close_matches(text, list(field.values), n=1)
            choices = ", ".join(f"{c} ({lbl})" for c, lbl in field.values.items())
            guess = t("hint.did_you_mean_then", name=close[0]) if close else ""
            return self._bad(
                path,
                t("PB0109.enum", value=text, name=field.key, label=field.label),
                t("PB0109.enum.hint", guess=guess, choices=choices),
                code="PB0109",
            )
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return self._bad(path, t("PB0109.integer", name=field.key), None)
            return value
        if kind in ("number", "money"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return self._bad(path, t("PB0109.number", name=field.key), t("PB0109.number.hint"))
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                return self._bad(path, t("PB0109.bool", what=f"'{field.key}'"), None)
            return value
        if kind == "date":
            try:
                return dt.date.fromisoformat(str(value))
            except ValueError:
                return self._bad(
                    path, t("PB0109.date", name=field.key), "YYYY-MM-DD, e.g. 2026-01-31"
                )
        if kind == "datetime":
            try:
                parsed = dt.datetime.fromisoformat(str(value))
            except ValueError:
                return self._bad(path, t("PB0109.datetime", name=field.key), "2026-01-31 09:00")
            return parsed.replace(tzinfo=None)
        return self._bad(path, t("PB0109.compare", name=field.key), None)

    def _bad(self, path: Path, message: str, hint: str | None, *, code: str = "PB0109") -> Any:
        """``hint``: a catalog message, or a plain example shown as "for example: …"."""
        example = hint if hint is None or isinstance(hint, Msg) else t("hint.example", example=hint)
        self.report(code, message, path, example, False)
        return _BAD


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Any = _Bad()
