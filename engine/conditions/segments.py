"""Named segments: reusable audiences in ``segments/*.yaml``, used as ``segment: <id>``.

A segment file holds ``id``, ``title``, an optional ``description`` and a ``condition``
(the same language as an audience, and it may use other segments). Every file is checked once
per validator; a reference to an unknown segment gets a did-you-mean, a reference to a broken
segment points at the segment's file, and a cycle (a → b → a) is reported where it closes.
Segments are inlined into the playbook's condition tree (kept by name for explain), so the
compiled audience is still one query.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from engine.conditions.ast import Condition
from engine.conditions.parse import ConditionParser
from engine.conditions.special import Path, Report
from engine.core.diagnostics import Diagnostic
from engine.core.dictionary import DataDictionary
from engine.core.i18n import t
from engine.core.yamlfile import Document, load_file

SEGMENT_KEYS = ("id", "title", "description", "condition")
SEGMENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


@dataclass
class _Entry:
    doc: Document
    raw: Any
    condition: Condition | None = None
    done: bool = False


@dataclass
class SegmentLibrary:
    """The segments of one deployment, parsed on first use and then shared."""

    dictionary: DataDictionary
    folder: FsPath
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, dictionary: DataDictionary, folder: FsPath) -> SegmentLibrary:
        library = cls(dictionary, folder)
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml")):
                library._index(load_file(path))
            for name in list(library._entries):
                library._parse(name)
        return library

    @property
    def names(self) -> list[str]:
        return sorted(self._entries)

    def _index(self, doc: Document) -> None:
        self.sources[doc.path] = doc.text
        self.diagnostics += doc.diagnostics
        data = doc.data
        if data is None:
            return
        report = _reporter(doc, self.diagnostics)
        if not isinstance(data, dict):
            report("PB0003", t("PB0003.segment"), (), None, False)
            return
        for key in data:
            if key not in SEGMENT_KEYS:
                close = difflib.get_close_matches(str(key), SEGMENT_KEYS, n=1)
                hint = (
                    t("hint.did_you_mean", name=close[0])
                    if close
                    else t("hint.allowed", allowed=", ".join(SEGMENT_KEYS))
                )
                report("PB0101", t("PB0101", key=key), (key,), hint, True)
        missing = [k for k in ("id", "title", "condition") if k not in data]
        for key in missing:
            report("PB0100", t("PB0100", key=key, where=""), (), None, False)
        sid = data.get("id")
        if not isinstance(sid, str) or not SEGMENT_ID.match(sid):
            if "id" in data:
                report(
                    "PB0104",
                    t("PB0104.segment", id=sid),
                    ("id",),
                    t("hint.example", example="high-value"),
                    False,
                )
            return
        if sid in self._entries:
            first = self._entries[sid].doc.path
            report(
                "PB0131",
                t("PB0131", id=sid, first=first),
                ("id",),
                t("PB0131.hint"),
                False,
            )
            return
        self._entries[sid] = _Entry(doc, data.get("condition"), done=bool(missing))

    def _parse(self, name: str) -> Condition | None:
        entry = self._entries[name]
        if entry.done:
            return entry.condition
        errors_before = len(self.diagnostics)
        report = _reporter(entry.doc, self.diagnostics)
        self._stack.append(name)
        try:
            parsed = ConditionParser(self.dictionary, report, self).condition(
                entry.raw, ("condition",)
            )
        finally:
            self._stack.pop()
        entry.done = True
        broken = any(d.is_error for d in self.diagnostics[errors_before:])
        entry.condition = None if broken else parsed
        return entry.condition

    def resolve(self, name: str, path: Path, report: Report) -> Condition | None:
        """The condition of segment ``name``, or None after reporting why at ``path``."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=1, cutoff=0.5)
            hint = (
                t("hint.did_you_mean", name=close[0])
                if close
                else t(
                    "PB0112.hint",
                    folder=self.folder.name,
                    names=", ".join(self.names) or t("word.none_yet"),
                )
            )
            report("PB0112", t("PB0112", name=name), path, hint, False)
            return None
        if name in self._stack:
            loop = " → ".join([*self._stack[self._stack.index(name) :], name])
            report(
                "PB0113",
                t("PB0113", loop=loop),
                path,
                t("PB0113.hint"),
                False,
            )
            return None
        found = self._parse(name)
        if found is None:
            report(
                "PB0119",
                t("PB0119", name=name),
                path,
                t("PB0119.hint", path=self._entries[name].doc.path),
                False,
            )
        return found


def _reporter(doc: Document, sink: list[Diagnostic]) -> Report:
    def report(code: str, message: str, path: Path, hint: str | None, at_key: bool) -> None:
        mark = doc.mark(path, key=at_key)
        sink.append(
            Diagnostic(code, message, doc.path, mark.line, mark.col, path, hint, width=mark.width)
        )

    return report
