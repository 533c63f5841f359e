"""Problems found in a playbook, and how they are shown.

A :class:`Diagnostic` is a structured finding (code, file, line, column, path inside the
playbook, message, hint). Every checker returns a list of them, so all problems of all files
are reported at once; only the printers here decide what a person or a machine sees.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from engine.core.i18n import LANGS, Lang, localize, t

Severity = Literal["error", "warning"]
PathPart = str | int
DOCS = "docs/errors.md"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    file: str
    line: int = 1
    col: int = 1
    path: tuple[PathPart, ...] = ()
    hint: str | None = None
    severity: Severity = "error"
    width: int = 1  # how many characters the caret underlines

    @property
    def dotted_path(self) -> str:
        return dotted(self.path)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def dotted(path: Sequence[PathPart]) -> str:
    """``("audience", "all", 1)`` → ``audience.all[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


MAX_SHOWN = 120
"""Characters of a source line shown under a diagnostic (a window around the column)."""


def format_text(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, str], lang: Lang = "en"
) -> str:
    """Compiler-style output: location, code, message, the source line with a caret, hint;
    messages and hints in ``lang`` (codes, paths and the layout stay the same)."""
    blocks = []
    for d in sorted(diagnostics, key=lambda d: (d.file, d.line, d.col)):
        head = f"{d.file}:{d.line}:{d.col}: {d.severity}[{d.code}]: {localize(d.message, lang)}"
        lines = [head]
        if d.path:
            lines.append(f"  {localize(t('word.at'), lang)} {d.dotted_path}")
        text = sources.get(d.file)
        if text is not None:
            source_lines = text.splitlines()
            if 1 <= d.line <= len(source_lines):
                number = str(d.line)
                source = source_lines[d.line - 1]
                col = d.col
                if len(source) > MAX_SHOWN:  # a window around the column, not a whole line
                    start = max(0, col - 1 - MAX_SHOWN // 2)
                    source = ("…" if start else "") + source[start : start + MAX_SHOWN] + "…"
                    col = col - start + (1 if start else 0)
                lines.append(f"  {number} | {source}")
                pad = " " * len(number)
                lead = _columns(source[: col - 1])
                span = max(1, _columns(source[col - 1 : col - 1 + d.width]))
                lines.append(f"  {pad} | {' ' * lead}{'^' * span}")
        if d.hint:
            lines.append(f"  = {localize(d.hint, lang)}")
        lines.append(f"  {localize(t('word.see'), lang)}: {DOCS}#{d.code.lower()}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _columns(text: str) -> int:
    """Terminal columns: Chinese characters are two wide, so carets stay under them."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_json(diagnostics: Iterable[Diagnostic], lang: Lang = "en") -> str:
    """``message`` and ``hint`` in ``lang``; ``messages`` and ``hints`` carry every language,
    so a tool can pick its own. Codes are stable whatever the language."""
    items = []
    for d in diagnostics:
        item: dict[str, Any] = asdict(d)
        item["path"] = d.dotted_path
        del item["width"]
        item["message"] = localize(d.message, lang)
        item["hint"] = localize(d.hint, lang)
        item["messages"] = {code: localize(d.message, code) for code in LANGS}
        item["hints"] = {code: localize(d.hint, code) for code in LANGS} if d.hint else None
        items.append(item)
    return json.dumps({"lang": lang, "diagnostics": items}, ensure_ascii=False, indent=2)
