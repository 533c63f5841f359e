"""YAML loading that keeps line and column for every key and value.

PyYAML's ``safe_load`` forgets where things came from and silently keeps the last of two
duplicate keys. We compose the node tree with the safe loader and build plain Python values
ourselves, recording positions and reporting the YAML 1.1 traps that bite non-programmers:
``yes``/``no``/``on``/``off`` turning into booleans, ``0755`` into octal, ``08:00`` into a
base-60 number. Unquoted dates are kept deliberately as ISO text; the field type decides.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.core.diagnostics import Diagnostic, PathPart
from engine.core.i18n import t

MAX_DEPTH = 64
"""Collections inside collections a file may nest; playbooks need about ten."""
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
# A playbook is a page of YAML; anything this big is a mistake (or an attack on the loader).
MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    col: int  # 1-based
    width: int = 1


@dataclass
class Document:
    """A loaded YAML file: its data, its text, and where each key and value sits."""

    path: str
    text: str
    data: Any = None
    values: dict[tuple[PathPart, ...], Mark] = field(default_factory=dict)
    keys: dict[tuple[PathPart, ...], Mark] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def mark(self, path: tuple[PathPart, ...], *, key: bool = False) -> Mark:
        """Position of the value (or key) at ``path``, or of its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if key and probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Mark(1, 1))


def load_file(path: Path) -> Document:
    size = path.stat().st_size
    if size > MAX_BYTES:
        doc = Document(path=str(path), text="")
        doc.diagnostics.append(
            Diagnostic(
                "PB0011",
                t("PB0011", size=f"{size:,}", limit=f"{MAX_BYTES:,}"),
                str(path),
                hint=t("PB0011.hint"),
            )
        )
        return doc
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        doc = Document(path=str(path), text="")
        doc.diagnostics.append(
            Diagnostic(
                "PB0007",
                t("PB0007", problem=f"{exc.reason} at byte {exc.start}"),
                str(path),
                hint=t("PB0007.hint"),
            )
        )
        return doc
    return load_text(text, str(path))


def load_text(text: str, path: str) -> Document:
    """Parse ``text``; problems go to ``Document.diagnostics``, never raise."""
    doc = Document(path=path, text=text)
    try:
        deep = _too_deep(text)
        if deep is not None:  # composing it would recurse past Python's limit
            doc.diagnostics.append(
                Diagnostic(
                    "PB0013",
                    t("PB0013", limit=MAX_DEPTH),
                    path,
                    deep.line + 1,
                    deep.column + 1,
                    hint=t("PB0013.hint"),
                )
            )
            return doc
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and exc.context_mark is not None and mark.index >= len(text.rstrip()):
            mark = exc.context_mark  # "unclosed [" at the end of the file: point at the "["
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        hint = t("PB0001.hint")
        if "\\t" in problem or "'\\t'" in problem:
            hint = t("PB0001.tabs")
        message = t("PB0001", problem=problem, context=context)
        doc.diagnostics.append(Diagnostic("PB0001", message, path, line, col, hint=hint))
        return doc
    except yaml.YAMLError as exc:
        doc.diagnostics.append(Diagnostic("PB0001", t("PB0001", problem=exc, context=""), path))
        return doc
    if len(nodes) > 1:
        doc.diagnostics.append(
            Diagnostic(
                "PB0003",
                t("PB0003.several"),
                path,
                nodes[1].start_mark.line + 1,
                1,
            )
        )
    if not nodes or nodes[0] is None or _is_null(nodes[0]):  # nothing, or a lone "---"
        doc.diagnostics.append(Diagnostic("PB0003", t("PB0003.empty"), path))
        return doc
    builder = _Builder(doc)
    doc.data = builder.build(nodes[0], ())
    return doc


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _too_deep(text: str) -> Any:
    """Where the text first nests deeper than :data:`MAX_DEPTH` collections, if it does.

    PyYAML's parser is a state machine (no recursion), its composer is recursive: walking the
    events first bounds the depth before anything recurses."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used
        self.seen: set[int] = set()

    def build(self, node: Node, path: tuple[PathPart, ...]) -> Any:
        if id(node) in self.seen and not isinstance(node, ScalarNode):
            # an alias ("*name") of a mapping or list: expanding it is how "billion laughs"
            # files blow up; playbooks share audiences through named segments instead
            self._report(
                node,
                path,
                "PB0012",
                t("PB0012"),
                hint=t("PB0012.hint"),
            )
            return None
        self.seen.add(id(node))
        self.doc.values[path] = _mark(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: MappingNode, path: tuple[PathPart, ...]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._report(key_node, path, "PB0008", t("PB0008"))
                continue
            if not isinstance(key_node, ScalarNode):
                self._report(key_node, path, "PB0009", t("PB0009"))
                continue
            # keys are names: `no:` or `1:` stay as written, so no trap is reported for them
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                first = self.doc.keys[child]
                self._report(
                    key_node,
                    child,
                    "PB0002",
                    t("PB0002", key=key, line=first.line),
                    hint=t("PB0002.hint"),
                )
                continue
            self.doc.keys[child] = _mark(key_node)
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: ScalarNode, path: tuple[PathPart, ...]) -> Any:
        try:
            value = self.constructor.construct_object(node)
        except (ValueError, yaml.YAMLError):
            # e.g. 2026-13-01 looks like a date to YAML but is none: keep the text, and let
            # the field's type say what is wrong with it
            return node.value
        if node.style is not None:  # quoted or block text: always a string
            return value
        raw = node.value
        if node.tag == _BOOL_TAG and raw.lower() not in ("true", "false"):
            self._report(
                node,
                path,
                "PB0004",
                t("PB0004", raw=raw, value=str(value).lower()),
                hint=t("PB0004.hint", raw=raw, value=str(value).lower()),
            )
        elif node.tag == _INT_TAG and _OCTAL.match(raw):
            self._report(
                node,
                path,
                "PB0005",
                t("PB0005", raw=raw, value=value),
                hint=t("PB0005.hint", raw=raw),
            )
        elif node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in raw:
            self._report(
                node,
                path,
                "PB0006",
                t("PB0006", raw=raw, value=value),
                hint=t("PB0006.hint", raw=raw),
            )
        elif node.tag == _TIMESTAMP_TAG and isinstance(value, dt.date):
            return raw  # dates stay text; the field's type gives them meaning
        return value

    def _report(
        self,
        node: Node,
        path: tuple[PathPart, ...],
        code: str,
        message: str,
        *,
        hint: str | None = None,
    ) -> None:
        m = _mark(node)
        self.doc.diagnostics.append(
            Diagnostic(code, message, self.doc.path, m.line, m.col, path, hint, width=m.width)
        )


def _mark(node: Node) -> Mark:
    start, end = node.start_mark, node.end_mark
    width = end.column - start.column if end.line == start.line else 1
    return Mark(start.line + 1, start.column + 1, max(1, width))
