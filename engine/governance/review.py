"""What a reviewer needs to judge a version: does it validate (on disk, or as stored), how many
customers it reaches, and what changed against the live version.

The estimate is the same pass as ``dry-run --playbook ID --as-of DAY`` and the console's
estimate (:func:`engine.execution.selection.decide`), on the first day from ``day`` on that the
playbook is scheduled, so the number an approver sees is the number the run would find.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from typing import Any

from croniter import croniter
from sqlalchemy import Engine

from engine.core.dictionary import DataDictionary
from engine.core.settings import Settings
from engine.execution.executor import Executor, slot_on
from engine.execution.selection import decide
from engine.governance.errors import refuse
from engine.governance.files import materialized
from engine.playbook.model import Playbook, cron_of
from engine.playbook.validation import Catalog, Validator

LOOK_AHEAD_DAYS = 400  # a yearly playbook (an anniversary of a fixed date) still finds its day


def valid_playbook(catalog: Catalog, playbook_id: str, *, stored: str | None = None) -> Playbook:
    """The playbook ``playbook_id`` from ``catalog``, or a located refusal: its first error
    (file:line:col) when it does not validate, "no such playbook" when it is not there.
    ``stored``: the version being checked, named in the refusal instead of a temporary path."""
    found = {p.id: p for p in catalog.playbooks}
    if playbook_id in found:
        return found[playbook_id]
    for d in catalog.errors:
        if stored is not None or playbook_id in (catalog.sources.get(d.file) or ""):
            where = stored or f"{d.file}:{d.line}:{d.col}"
            raise refuse("invalid", where, problem=f"[{d.code}] {d.message}")
    raise refuse("unknown_playbook", None, id=playbook_id, known=", ".join(sorted(found)))


def check_stored(
    files: Mapping[str, str],
    playbook_id: str,
    settings: Settings,
    dictionary: DataDictionary,
    label: str,
) -> None:
    """Refuse (E0633) a stored version that no longer validates against today's data
    dictionary, configuration and engine: approving or restoring it would stop it at run time."""
    with materialized(files, settings) as there:
        catalog = Validator(there, dictionary).validate_paths([there.playbooks_dir])
        valid_playbook(catalog, playbook_id, stored=label)


def estimate(
    store: Engine,
    settings: Settings,
    dictionary: DataDictionary,
    validator: Validator,
    playbook: Playbook,
    day: dt.date,
) -> dict[str, Any]:
    """Audience and SMS of one scheduled run, on the first day from ``day`` the playbook runs;
    SMS a day counts every slot of that day. An event playbook has no estimate (it acts on
    events as they come)."""
    tz = settings.timezone
    cron = cron_of(playbook)
    if cron is None:
        return {"kind": "event", "audience": None, "sms_per_day": None}
    for offset in range(LOOK_AHEAD_DAYS):
        on = day + dt.timedelta(days=offset)
        if slot_on(playbook, on, tz) is not None:
            break
    else:
        return {"kind": "schedule", "audience": None, "sms_per_day": None, "day": None}
    executor = Executor(store, settings, dictionary, validator.renderer)
    moment = dt.datetime.combine(on, dt.time(), tz)
    selected = decide(store, executor, [playbook], moment, whole_day=True, dry_run=True, mask=True)
    outcome = selected.outcomes[0]
    slots = _slots_on(cron, on)
    return {
        "kind": "schedule",
        "day": on.isoformat(),
        "audience": outcome.matched_count,
        "acted": outcome.acted,
        "sms_per_day": outcome.effects.get("sms", 0) * slots,
        "error": outcome.error,
    }


def _slots_on(cron: str, day: dt.date) -> int:
    start = dt.datetime.combine(day, dt.time()) - dt.timedelta(microseconds=1)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    it = croniter(cron, start)
    n = 0
    while it.get_next(dt.datetime) < end and n < 24 * 60:
        n += 1
    return max(n, 1)


def unified_diff(before: Mapping[str, str], after: Mapping[str, str], a: str, b: str) -> str:
    """Every file of two versions, as ``diff -u`` shows them (a file only on one side is
    added or removed in full)."""
    out: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        out += difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=f"{a}/{path}" if old is not None else "/dev/null",
            tofile=f"{b}/{path}" if new is not None else "/dev/null",
        )
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
    return "".join(out)
