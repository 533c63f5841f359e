"""What a version is made of, on disk and in the store.

A version is the playbook file, every template it uses (and every template those include,
import or extend) and every segment it names, as ``{path relative to the deployment: text}``,
hashed together. The same function computes it for a submission, for the gate that compares
the folders with the live version, and for publishing, so the three cannot disagree.

Publishing writes a version's files atomically one by one (a temporary file in the same folder,
then ``os.replace``), after the store has committed the change: a crash in between leaves files
that no longer match the live version's hash, which the gate reports and does not run, never a
half-published version that runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from engine.conditions.ast import SegmentRef
from engine.core.settings import Settings
from engine.core.yamlfile import load_file
from engine.playbook.model import Playbook

Files = dict[str, str]
ReadTemplate = Callable[[str], str | None]


def version_hash(files: Mapping[str, str]) -> str:
    """sha256 over the sorted (path, text) pairs: the same files give the same hash anywhere."""
    canonical = json.dumps(sorted(files.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def relative(settings: Settings, path: str | Path) -> str:
    """``path`` as the deployment names it (``playbooks/x.yaml``), or ValueError outside it."""
    return Path(path).resolve().relative_to(settings.root.resolve()).as_posix()


def disk_templates(settings: Settings) -> ReadTemplate:
    """Template texts as they are in ``templates/`` now."""

    def read(name: str) -> str | None:
        try:
            return (settings.templates_dir / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    return read


def collect(playbook: Playbook, settings: Settings, read_template: ReadTemplate) -> Files | None:
    """The files of ``playbook`` as found now; None when one cannot be read or the playbook
    file no longer holds the text that was validated (it changed a moment ago)."""
    try:
        text = Path(playbook.source).read_text(encoding="utf-8")
        files: Files = {relative(settings, playbook.source): text}
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if hashlib.sha256(text.encode()).hexdigest() != playbook.content_hash:
        return None
    templates_root = relative(settings, settings.templates_dir)
    for name in sorted(templates_used(playbook, read_template)):
        source = read_template(name)
        if source is None:
            return None
        files[f"{templates_root}/{name}"] = source
    segment_files = _segment_files(settings)
    for name in sorted(segments_named(playbook)):
        path = segment_files.get(name)
        if path is None:
            return None
        try:
            files[relative(settings, path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError):
            return None
    return files


def templates_used(playbook: Playbook, read_template: ReadTemplate) -> set[str]:
    """Template file names the actions render, and those they include, at any depth."""
    todo = [name for action in playbook.actions for name in _template_names(action)]
    env = jinja2.Environment()
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = read_template(name)
        if source is None:
            continue
        try:
            referenced = jinja2.meta.find_referenced_templates(env.parse(source))
        except jinja2.TemplateSyntaxError:
            continue  # validation said so; the hash still covers the text
        todo += [r for r in referenced if r is not None]
    return seen


def _template_names(action: Any) -> list[str]:
    """The template files one action renders (its fields holding a named template)."""
    return [
        value.name
        for part in dataclasses.fields(action)
        if isinstance(value := getattr(action, part.name), jinja2.Template) and value.name
    ]


def segments_named(playbook: Playbook) -> set[str]:
    """Every segment the playbook's conditions name, nested segments included (they are
    inlined into the tree, kept by name)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SegmentRef):
            found.add(value.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for part in dataclasses.fields(value):
                walk(getattr(value, part.name))
        elif isinstance(value, tuple | list | frozenset | set):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk((playbook.audience, playbook.goal, playbook.context))
    return found


def _segment_files(settings: Settings) -> dict[str, Path]:
    folder = settings.segments_dir
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml")):
        data = load_file(path).data
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            found.setdefault(data["id"], path)
    return found


def playbook_file(files: Mapping[str, str], settings: Settings) -> str:
    """The version's playbook file (the one under ``playbooks/``)."""
    root = relative(settings, settings.playbooks_dir) + "/"
    return next(p for p in sorted(files) if p.startswith(root))


@contextmanager
def materialized(files: Mapping[str, str], settings: Settings) -> Iterator[Settings]:
    """A throwaway deployment holding only ``files`` (and a copy of ``config/``), to validate
    a stored version as it would run, whatever the folders hold now."""
    with tempfile.TemporaryDirectory(prefix="care-version-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for folder in ("playbooks", "templates", "segments"):
            (root / folder).mkdir(exist_ok=True)
        if settings.config_dir.is_dir():
            shutil.copytree(settings.config_dir, root / "config", dirs_exist_ok=True)
        yield dataclasses.replace(settings, root=root)


def stage(files: Mapping[str, str], settings: Settings) -> list[tuple[Path, Path]]:
    """Write every file's text beside its target as a temporary file: (temporary, target).
    Nothing visible changes yet; OSError after removing what was staged."""
    staged: list[tuple[Path, Path]] = []
    try:
        for rel, text in sorted(files.items()):
            target = settings.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            staged.append((Path(name), target))
    except OSError:
        discard(staged)
        raise
    return staged


def commit(staged: list[tuple[Path, Path]]) -> None:
    """Move each staged file over its target (atomic per file)."""
    for temporary, target in staged:
        os.replace(temporary, target)


def discard(staged: list[tuple[Path, Path]]) -> None:
    for temporary, _ in staged:
        temporary.unlink(missing_ok=True)
