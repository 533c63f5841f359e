"""The playbook folder as the daemon sees it: hot reload, always a good version of each file.

The folders are polled by content hash (portable, no inotify limits, and a file rewritten with
the same bytes is no change). On a change the whole folder is validated in full, against a
snapshot of the templates read in the same pass, before anything replaces what is running:

- a valid file replaces its previous version (or starts a new playbook);
- an invalid file keeps its last good version running, and its errors are reported;
- a disabled or deleted playbook stops.

Each version renders with the template snapshot it was validated against, so a template edit
that breaks validation cannot reach the messages of the version kept running.

With governance on, the valid playbooks then pass the same gate as ``run``
(:class:`engine.governance.gate.Gate`): one not approved, paused, or changed outside the
workflow stops and is listed in ``withheld``; a publish, rollback or pause in the store is a
change to reload like an edit of a file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from engine.actions.compliance import MessageTexts
from engine.core.diagnostics import Diagnostic
from engine.core.dictionary import DataDictionary
from engine.core.settings import Settings
from engine.execution.executor import Executor
from engine.governance.gate import Gate, Withheld
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator, discover
from engine.rendering.renderer import Renderer

ExecutorFactory = Callable[[Renderer], Executor]


@dataclass(frozen=True)
class Version:
    """One good version of one playbook file, ready to run."""

    playbook: Playbook
    executor: Executor  # renders with the template snapshot this version was validated with
    file: str
    templates_hash: str

    @property
    def id(self) -> str:
        return self.playbook.id


@dataclass(frozen=True)
class Problem:
    """A file that failed validation, and the last good version still running in its place."""

    file: str
    diagnostics: tuple[Diagnostic, ...]
    kept: Version | None


@dataclass
class Changes:
    """What one reload did."""

    started: list[Version] = field(default_factory=list)  # newly enabled (or new schedule)
    replaced: list[Version] = field(default_factory=list)  # same playbook, new version
    stopped: list[tuple[str, str]] = field(default_factory=list)  # (playbook id, why)
    problems: list[Problem] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)  # governance kept them from running

    @property
    def any(self) -> bool:
        return bool(self.started or self.replaced or self.stopped or self.problems or self.withheld)


@dataclass(frozen=True)
class Snapshot:
    digest: str
    templates: dict[str, str]
    templates_digest: str


class PlaybookFolder:
    """The playbooks a daemon runs, reloaded from disk only when the files change."""

    def __init__(
        self,
        settings: Settings,
        dictionary: DataDictionary,
        make_executor: ExecutorFactory,
        texts: Callable[[], MessageTexts | None] = lambda: None,
    ) -> None:
        """``texts``: the message texts of the policy in force (the last good one), so a
        reload counts SMS parts as they will be sent; None reads config/policy.yaml."""
        self.settings = settings
        self.dictionary = dictionary
        self.make_executor = make_executor
        self.texts = texts
        self.versions: dict[str, Version] = {}  # by file: the last good version of each
        self.problems: dict[str, Problem] = {}  # by file: current validation failures
        self.digest: str | None = None
        self.gate: Gate | None = None  # set when governance is on
        self.withheld: dict[str, Withheld] = {}  # by playbook id: what the gate kept back

    def active(self) -> dict[str, Version]:
        """Enabled playbooks by id: what the daemon schedules."""
        return {v.id: v for v in self.versions.values() if v.playbook.enabled}

    def state(self) -> tuple[dict[str, Version], dict[str, Problem], str | None]:
        """What is loaded, to :meth:`restore` if applying a reload elsewhere fails."""
        return dict(self.versions), dict(self.problems), self.digest

    def restore(self, state: tuple[dict[str, Version], dict[str, Problem], str | None]) -> None:
        """Go back to an earlier :meth:`state`; the next poll then reports the same changes."""
        self.versions, self.problems, self.digest = dict(state[0]), dict(state[1]), state[2]

    def poll(self) -> Changes | None:
        """Reload if anything under the two folders changed; None when nothing did."""
        snapshot = self._snapshot()
        if snapshot.digest == self.digest:
            return None
        return self._load(snapshot)

    # --- internals -------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        whole = hashlib.sha256()
        for path in discover([self.settings.playbooks_dir]):
            whole.update(f"P {path}\0".encode())
            whole.update(_digest(path).encode())
        templates: dict[str, str] = {}
        tdir = self.settings.templates_dir
        files = sorted(p for p in tdir.rglob("*") if p.is_file()) if tdir.is_dir() else []
        tdigest = hashlib.sha256()
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # validation reports the template as missing where it is used
            name = path.relative_to(tdir).as_posix()
            templates[name] = text
            tdigest.update(f"T {name}\0{text}\0".encode())
        whole.update(tdigest.digest())
        if self.gate is not None:
            # a version covers the segments it names, so their edits count as well (without
            # governance segments/ is read at validation only, as before)
            for path in discover([self.settings.segments_dir]):
                whole.update(f"S {path}\0{_digest(path)}".encode())
            whole.update(self.gate.stamp().encode())
        return Snapshot(whole.hexdigest(), templates, tdigest.hexdigest())

    def _load(self, snapshot: Snapshot) -> Changes:
        validator = Validator(self.settings, self.dictionary, self.texts())
        # Validate and render from the snapshot, not the live folder: what was checked is
        # exactly what runs, even if a template changes again a moment later.
        validator.renderer.env.loader = jinja2.DictLoader(snapshot.templates)
        catalog = validator.validate_paths([self.settings.playbooks_dir])
        good = {p.source: p for p in catalog.playbooks}
        withheld: dict[str, Withheld] = {}
        if self.gate is not None:
            admission = self.gate.admit(list(good.values()), snapshot.templates.get)
            good = {p.source: p for p in admission.admitted}
            withheld = {w.playbook_id: w for w in admission.withheld}
        errors: dict[str, list[Diagnostic]] = {}
        for d in catalog.errors:
            errors.setdefault(d.file, []).append(d)

        before = self.active()
        versions: dict[str, Version] = {}
        problems: dict[str, Problem] = {}
        executor: Executor | None = None
        for file, playbook in good.items():
            old = self.versions.get(file)
            if (
                old is not None
                and old.playbook.content_hash == playbook.content_hash
                and old.playbook.version_hash == playbook.version_hash
                and old.templates_hash == snapshot.templates_digest
            ):
                versions[file] = old
                continue
            executor = executor or self.make_executor(validator.renderer)
            versions[file] = Version(playbook, executor, file, snapshot.templates_digest)
        for file, diagnostics in errors.items():
            kept = self.versions.get(file)
            if kept is not None and file not in versions:
                versions[file] = kept
            problems[file] = Problem(file, tuple(diagnostics), kept)
        # a file that became a duplicate of another's id gives up its last good version
        by_id: dict[str, str] = {}
        for file in sorted(versions, key=lambda f: (f in problems, f)):
            if versions[file].id in by_id:
                del versions[file]
            else:
                by_id[versions[file].id] = file

        self.versions, self.problems, self.digest = versions, problems, snapshot.digest
        self.withheld = withheld
        return _diff(before, self.active(), list(problems.values()), self.versions, withheld)


def _diff(
    before: dict[str, Version],
    after: dict[str, Version],
    problems: list[Problem],
    versions: dict[str, Version],
    withheld: dict[str, Withheld],
) -> Changes:
    changes = Changes(problems=problems, withheld=list(withheld.values()))
    for pid, version in after.items():
        old = before.get(pid)
        if old is None or old.playbook.trigger != version.playbook.trigger:
            changes.started.append(version)
        elif old is not version:
            changes.replaced.append(version)
    present = {v.id for v in versions.values()}
    for pid in before.keys() - after.keys():
        if pid in withheld:
            changes.stopped.append((pid, withheld[pid].reason))
        else:
            changes.stopped.append((pid, "disabled" if pid in present else "deleted"))
    return changes


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"
