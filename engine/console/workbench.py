"""What the console does with an edit, over the engine's own parts: validate the unsaved text
(the same checks and codes as ``validate``), estimate its audience for a date (the same pass
as ``dry-run --playbook ID --as-of DATE``), explain one customer, diff, render a template and
save. Routes stay thin; this module holds no HTTP."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.actions.compliance import compose_sms, load_texts
from engine.core.clock import Clock
from engine.core.diagnostics import Diagnostic
from engine.core.dictionary import DataDictionary, load_dictionary
from engine.core.errors import EngineError, TemplateError
from engine.core.i18n import Lang, localize, t
from engine.core.masking import mask_values
from engine.core.settings import Settings
from engine.core.yamlfile import MAX_BYTES, load_text
from engine.execution.executor import Executor, Outcome
from engine.execution.explain import Explainer
from engine.execution.selection import decide
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator, discover
from engine.rendering.renderer import Renderer, sms_segments, template_context
from engine.reports.dryrun import REASONS, outcome_json
from engine.reports.explain import explanation_json
from engine.reports.tabular import audience_facets
from engine.store.replica import ReplicaReads

PLAYBOOK_FILE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.ya?ml$")
TEMPLATE_FILE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}(\.[a-z]{2,8})?\.j2$")
SAMPLES = 5


class NotFound(EngineError):
    """A playbook or template file the console does not have."""


@dataclass
class Checked:
    """One unsaved text checked: its playbook when valid, and every diagnostic."""

    text: str
    playbook: Playbook | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def to_json(self, lang: Lang) -> dict[str, Any]:
        items = [
            {
                "code": d.code,
                "severity": d.severity,
                "line": d.line,
                "column": d.col,
                "width": d.width,
                "path": d.dotted_path,
                "message": localize(d.message, lang),
                "hint": localize(d.hint, lang),
            }
            for d in sorted(self.diagnostics, key=lambda d: (d.line, d.col))
        ]
        errors, warnings = len(self.errors), len(self.diagnostics) - len(self.errors)
        if not items:
            summary = "无错误 no errors"
        else:
            summary = f"{errors} 个错误 error(s), {warnings} 个提示 warning(s)"
        return {"diagnostics": items, "summary": summary, "valid": self.playbook is not None}


class Workbench:
    def __init__(
        self, settings: Settings, store: Engine, replica: ReplicaReads | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.replica = replica  # where previews read the bank's data (None: the primary)
        self._lock = threading.Lock()
        self._validator: Validator | None = None
        self._policy_stamp: tuple[int, int] | None = None
        self._ids: dict[Path, tuple[tuple[int, int], str | None]] = {}

    # --- the engine's parts, loaded once and again after a save -----------------------------

    @property
    def dictionary(self) -> DataDictionary:
        return self.validator.dictionary

    @property
    def validator(self) -> Validator:
        with self._lock:
            # an edit of config/policy.yaml changes the texts SMS parts are counted with
            stamp = _stamp(self.settings.policy_path)
            if self._validator is None or stamp != self._policy_stamp:
                dictionary = load_dictionary(self.settings.dictionary_path)
                self._validator = Validator(self.settings, dictionary)
                self._policy_stamp = stamp
            return self._validator

    def forget(self) -> None:
        """Files changed: the next check loads templates and segments afresh."""
        with self._lock:
            self._validator = None

    # --- files ------------------------------------------------------------------------------

    def playbook_path(self, name: str) -> Path:
        if not PLAYBOOK_FILE.match(name):
            raise NotFound(f"no playbook file {name!r}", code="E0610")
        return self.settings.playbooks_dir / name

    def template_path(self, name: str) -> Path:
        if not TEMPLATE_FILE.match(name):
            raise NotFound(f"no template file {name!r}", code="E0611")
        return self.settings.templates_dir / name

    def playbook_files(self) -> list[Path]:
        return discover([self.settings.playbooks_dir])

    def template_files(self) -> list[str]:
        folder = self.settings.templates_dir
        return sorted(p.name for p in folder.glob("*.j2") if TEMPLATE_FILE.match(p.name))

    def shown_path(self, path: Path) -> str:
        """The path as ``validate`` prints it, relative to the project."""
        try:
            return str(path.relative_to(self.settings.root))
        except ValueError:
            return str(path)

    # --- playbooks --------------------------------------------------------------------------

    def check(self, text: str, name: str) -> Checked:
        """Validate ``text`` as the file ``name`` would be: every check and code of
        ``validate``, and its id must not be another file's."""
        shown = self.shown_path(self.playbook_path(name))
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_BYTES:
            problem = t("PB0011", size=f"{size:,}", limit=f"{MAX_BYTES:,}")
            too_big = Diagnostic("PB0011", problem, shown, hint=t("PB0011.hint"))
            return Checked(text, None, [too_big])
        doc = load_text(text, shown)
        playbook, diagnostics = self.validator.validate_document(doc)
        if playbook is not None:
            twin = self._other_file_with_id(playbook.id, name)
            if twin is not None:
                mark = doc.mark(("id",))
                diagnostics.append(
                    Diagnostic(
                        "PB0130",
                        t("PB0130", id=playbook.id, first=twin),
                        shown,
                        mark.line,
                        mark.col,
                        ("id",),
                        t("PB0130.hint"),
                        width=mark.width,
                    )
                )
                playbook = None
        return Checked(text, playbook, diagnostics)

    def _other_file_with_id(self, playbook_id: str, name: str) -> str | None:
        for path in self.playbook_files():
            if path.name != name and self._id_of(path) == playbook_id:
                return self.shown_path(path)
        return None

    def saved_id(self, name: str) -> str | None:
        """The ``id:`` of the saved playbook file ``name`` (what a submission stores)."""
        return self._id_of(self.playbook_path(name))

    def _id_of(self, path: Path) -> str | None:
        """The ``id:`` of a playbook file, remembered until the file changes: the editor asks
        after every pause in typing, and reading every other file each time cost 100 ms."""
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._ids.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        data = load_text(_read(path), str(path)).data
        found = data.get("id") if isinstance(data, dict) else None
        playbook_id = found if isinstance(found, str) else None
        self._ids[path] = (stamp, playbook_id)
        return playbook_id

    def saved_text(self, name: str) -> str | None:
        path = self.playbook_path(name)
        return _read(path) if path.exists() else None

    def diff(self, name: str, text: str) -> str:
        """The edit against the file in force, as a reviewer reads it in a pull request."""
        before = self.saved_text(name) or ""
        shown = self.shown_path(self.playbook_path(name))
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{shown} (in force)" if before else "/dev/null",
            tofile=f"{shown} (edited)",
        )
        return "".join(lines)

    def save(self, name: str, text: str) -> Checked:
        """Write the file only when ``text`` validates; atomically, so a reader (the daemon's
        reloader) sees the old file or the new one, never half of it."""
        checked = self.check(text, name)
        if checked.playbook is not None:
            _write_atomically(self.playbook_path(name), text)
            self.forget()
        return checked

    # --- previews over the store --------------------------------------------------------------

    def bank(self) -> Engine:
        """Where a preview reads the bank's data: the replica while it is fit, else the
        primary (said in the console's log, as ``--replica-fallback`` decides)."""
        return self.replica.source() if self.replica is not None else self.store

    def executor(self) -> Executor:
        """An executor for a preview: the bank's data from the replica while it is fit (the
        same rules as ``dry-run --replica-db``), the engine's tables from the primary."""
        return Executor(
            self.store,
            self.settings,
            self.dictionary,
            self.validator.renderer,
            replica=self.replica,
        )

    def estimate(self, playbook: Playbook, day: dt.date) -> dict[str, Any]:
        """The audience and funnel of ``playbook`` on ``day`` at its scheduled slot: the same
        pass, and so the same numbers, as ``dry-run --playbook ID --as-of DAY``."""
        tz = self.settings.timezone
        moment = dt.datetime.combine(day, dt.time(), tz)
        executor = self.executor()
        selected = decide(
            self.store, executor, [playbook], moment, whole_day=True, dry_run=True, mask=True
        )
        if not selected.outcomes:
            return {"scheduled": False, "day": day.isoformat(), "playbook": playbook.id}
        outcome = selected.outcomes[0]
        return {"scheduled": True, "day": day.isoformat(), **self._estimate_of(outcome)}

    def _estimate_of(self, outcome: Outcome) -> dict[str, Any]:
        entry = outcome_json(outcome)
        funnel = [
            {"reason": reason, "label": " ".join(REASONS.get(reason, (reason, reason))), "n": n}
            for reason, n in sorted(outcome.held_back_by.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        facets: dict[str, dict[str, int]] = {}
        if outcome.error is None and outcome.matched:
            clock = Clock.at(outcome.as_of, self.settings.timezone)
            facets = audience_facets(self.bank(), self.dictionary, clock, outcome.matched)
        samples = entry["actions"][:SAMPLES]
        return {
            "playbook": outcome.playbook.id,
            "evaluated_at": outcome.as_of.isoformat(timespec="minutes"),
            "window": outcome.window,
            "error": outcome.error,
            "counts": entry["counts"],
            "funnel": funnel,
            "facets": facets,
            "samples": samples,
            "render_errors": dict(outcome.render_errors),
            "data_issues": outcome.data_issues,
        }

    def explain(self, playbook: Playbook, customer_id: str, day: dt.date) -> dict[str, Any]:
        moment = dt.datetime.combine(day, dt.time(), self.settings.timezone)
        explainer = Explainer(self.store, self.settings, self.dictionary, self.validator.renderer)
        exp = explainer.explain(customer_id, [playbook], moment, whole_day=True, mask=True)
        return explanation_json(exp, self.dictionary)

    # --- templates ----------------------------------------------------------------------------

    def template_text(self, name: str) -> str:
        path = self.template_path(name)
        if not path.exists():
            raise NotFound(f"no template file {name!r}", code="E0611")
        return _read(path)

    def render_template(self, name: str, text: str, *, marketing: bool = True) -> dict[str, Any]:
        """``text`` rendered as template ``name`` for the sample customer (masked), includes
        and all, with the SMS parts it would bill (signature and opt-out included)."""
        self.template_path(name)
        renderer = Renderer(self.settings.templates_dir, self.dictionary, overrides={name: text})
        customer = mask_values(self.validator.sample_customer, self.dictionary)
        context = template_context(
            customer,
            playbook_id="preview",
            playbook_title="预览 preview",
            bank_name=self.settings.bank_name,
            now=dt.datetime.now(self.settings.timezone),
        )
        try:
            body = renderer.render(renderer.file(name), context).strip()
        except TemplateError as exc:
            return {"ok": False, "error": f"{exc.code} {exc.message}", "hint": exc.hint}
        result: dict[str, Any] = {"ok": True, "text": body}
        if ".sms." in name:
            # the texts in config/policy.yaml now, as a run would send them
            texts = load_texts(self.settings.policy_path)
            sent = compose_sms(body, "marketing" if marketing else "service", texts)
            result |= {"sent": sent, "length": len(sent), "segments": sms_segments(sent)}
        return result

    def save_template(self, name: str, text: str) -> dict[str, Any]:
        rendered = self.render_template(name, text)
        if rendered["ok"]:
            _write_atomically(self.template_path(name), text)
            self.forget()
        return rendered


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def day_or_tomorrow(text: str | None, settings: Settings) -> dt.date:
    """The date a preview is for: the one given, else tomorrow (what an editor plans for)."""
    if text:
        try:
            return dt.date.fromisoformat(text.strip()[:10])
        except ValueError:
            pass
    return dt.datetime.now(settings.timezone).date() + dt.timedelta(days=1)


def _stamp(path: Path) -> tuple[int, int] | None:
    """When and how big ``path`` was last written; None when it is absent."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size
