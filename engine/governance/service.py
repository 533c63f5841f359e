"""The life cycle of a playbook version, one function per step, for the CLI and the console.

draft → submitted → approved → live → paused ⇄ live → retired (another version went live),
and submitted → rejected. Every function takes ``(store, settings, gov, actor, …)``, checks
first and writes after, in one transaction per step with its event and audit entry, and
raises a located :class:`~engine.governance.errors.GovernanceError` with nothing changed when
the step is not allowed. Publish, rollback, pause and resume are compare-and-set updates of the
playbook's live pointer (records.move_live): of two racing approvers exactly one wins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from engine.core.clock import utc_now
from engine.core.dictionary import DataDictionary
from engine.core.settings import Settings
from engine.governance import files as vfiles
from engine.governance import records
from engine.governance.config import GovernanceSettings
from engine.governance.errors import refuse
from engine.governance.records import Actor, Live
from engine.governance.review import check_stored, estimate, unified_diff, valid_playbook
from engine.playbook.validation import Validator
from engine.store.models import playbook_live, playbook_versions

OPEN_STATES = ("draft", "submitted", "approved", "live", "paused")
RESTORABLE = ("approved", "retired")  # were approved once; may go live again


@dataclass(frozen=True)
class Deployment:
    """What every step needs besides the actor: the store, the folders, the rules."""

    store: Engine
    settings: Settings
    dictionary: DataDictionary
    gov: GovernanceSettings


@dataclass(frozen=True)
class Done:
    """What a step did, for the CLI's one line (and the console's message)."""

    playbook_id: str
    number: int
    state: str
    message: str
    detail: dict[str, Any]


def resolve_actor(store: Engine, as_name: str | None, os_user: str) -> Actor:
    """``--as NAME``: that console account (with its role), refused when unknown or disabled;
    otherwise ``cli:USER`` with no role (allowed only where the file names it)."""
    records.ensure_tables(store)
    if as_name is None:
        return Actor(f"cli:{os_user}")
    with store.connect() as conn:
        role = records.account_role(conn, as_name)
    if role is None:
        raise refuse("unknown_account", None, name=as_name)
    return Actor(as_name, role)


# --- submit ---------------------------------------------------------------------------------------


def submit(
    dep: Deployment, actor: Actor, playbook_id: str, *, day: dt.date, draft: bool = False
) -> Done:
    """Store the playbook's files as they are now as a new version, ``submitted`` for review
    (or kept as a ``draft``), with its audience estimate and its diff against the live one."""
    validator = Validator(dep.settings, dep.dictionary)
    catalog = validator.validate_paths([dep.settings.playbooks_dir])
    playbook = valid_playbook(catalog, playbook_id)
    found = vfiles.collect(playbook, dep.settings, vfiles.disk_templates(dep.settings))
    if found is None:
        raise refuse("write_failed", playbook.source, problem="the files changed while read")
    digest = vfiles.version_hash(found)
    records.ensure_live_row(dep.store, playbook_id, actor.name)
    with dep.store.connect() as conn:
        existing = [v for v in records.versions(conn, playbook_id) if v["hash"] == digest]
        pointer = records.live(conn, playbook_id)
        base = (
            records.version_by_id(conn, pointer.version_id)
            if pointer and pointer.version_id
            else None
        )
    for old in existing:
        if old["state"] in OPEN_STATES and not (old["state"] == "draft" and not draft):
            raise refuse("duplicate", f"{playbook_id}@{old['number']}", state=old["state"])
    if base is not None and base["hash"] == digest:
        raise refuse("no_change", playbook.source, number=base["number"])
    numbers = estimate(dep.store, dep.settings, dep.dictionary, validator, playbook, day)
    needed = dep.gov.approvals_needed(
        playbook_id, playbook.category, numbers.get("audience"), numbers.get("sms_per_day")
    )
    label = f"v{base['number']}" if base else "none"
    diff = unified_diff(base["files"] if base else {}, found, label, "new")
    state = "draft" if draft else "submitted"
    now = utc_now()
    reuse = next((o for o in existing if o["state"] == "draft"), None)
    try:
        with dep.store.begin() as conn:
            values = {
                "state": state,
                "category": playbook.category,
                "submitted_at": None if draft else now,
                "estimate": numbers,
                "base_version_id": base["id"] if base else None,
                "diff": diff,
                "approvals_needed": needed,
            }
            if reuse is not None:
                conn.execute(
                    playbook_versions.update()
                    .where(playbook_versions.c.id == reuse["id"])
                    .values(**values)
                )
                row = records.version_by_id(conn, reuse["id"])
            else:
                number = records.next_number(conn, playbook_id)
                new_id = conn.execute(
                    playbook_versions.insert()
                    .values(
                        playbook_id=playbook_id,
                        number=number,
                        hash=digest,
                        files=found,
                        author=actor.name,
                        created_at=now,
                        **values,
                    )
                    .returning(playbook_versions.c.id)
                ).scalar_one()
                row = records.version_by_id(conn, int(new_id))
            detail = {"approvals_needed": needed, "estimate": numbers}
            records.add_event(conn, row, state, actor, detail=detail, at=now)
    except IntegrityError as exc:  # another submission took the same number: try again
        raise refuse("race_lost", playbook_id) from exc
    return Done(
        playbook_id,
        row["number"],
        state,
        f"version {row['number']} {state}; needs {needed} approver(s)",
        {"hash": digest, "estimate": numbers, "approvals_needed": needed, "diff": diff},
    )


# --- approve and reject ------------------------------------------------------------------------


def approve(
    dep: Deployment, actor: Actor, playbook_id: str, number: int, comment: str | None = None
) -> Done:
    """One approval of a submitted version by someone allowed to approve its category and who
    is not its author; the last approval needed makes it ``approved``."""
    row = _version(dep.store, playbook_id, number)
    where = f"{playbook_id}@{number}"
    if row["state"] != "submitted":
        raise refuse("wrong_state", where, state=row["state"], expected="submitted")
    if Actor(row["author"]).person == actor.person:
        raise refuse("self_approval", where, author=row["author"])
    _may_approve(dep, actor, row, where)
    with dep.store.connect() as conn:
        if actor.person in records.people(records.events(conn, row["id"]), "approved"):
            raise refuse("already_approved", where, name=actor.name)
    check_stored(row["files"], playbook_id, dep.settings, dep.dictionary, where)
    with dep.store.begin() as conn:
        # take the version's row lock first: two approvals at once are counted one after the
        # other, so the one that completes the count moves the state
        if not records.set_state(conn, row["id"], "submitted", "submitted"):
            raise refuse("race_lost", where)
        records.add_event(conn, row, "approved", actor, comment=comment)
        count = len(records.people(records.events(conn, row["id"]), "approved"))
        state = "submitted"
        if count >= row["approvals_needed"]:
            records.set_state(conn, row["id"], "submitted", "approved")
            state = "approved"
    need = row["approvals_needed"]
    message = (
        f"version {number} approved ({count} of {need}); publish it with "
        f"`playbook publish {playbook_id} {number}`"
        if state == "approved"
        else f"approval {count} of {need} recorded; version {number} needs another approver"
    )
    return Done(playbook_id, number, state, message, {"approvals": count, "needed": need})


def reject(dep: Deployment, actor: Actor, playbook_id: str, number: int, comment: str) -> Done:
    """Send a submitted (or approved, not yet live) version back with a comment; its author
    may withdraw it the same way."""
    row = _version(dep.store, playbook_id, number)
    where = f"{playbook_id}@{number}"
    if not comment.strip():
        raise refuse("comment_needed", where)
    if row["state"] not in ("submitted", "approved", "draft"):
        raise refuse("wrong_state", where, state=row["state"], expected="submitted")
    if Actor(row["author"]).person != actor.person:
        _may_approve(dep, actor, row, where)
    with dep.store.begin() as conn:
        if not records.set_state(conn, row["id"], row["state"], "rejected"):
            raise refuse("race_lost", where)
        conn.execute(
            playbook_versions.update()
            .where(playbook_versions.c.id == row["id"])
            .values(comment=comment)
        )
        records.add_event(conn, row, "rejected", actor, comment=comment)
    return Done(playbook_id, number, "rejected", f"version {number} rejected", {})


# --- publish and rollback ------------------------------------------------------------------


def publish(dep: Deployment, actor: Actor, playbook_id: str, number: int) -> Done:
    """Make an approved version live: the pointer moves (compare-and-set) and its files are
    written into the folders. Refused when the live version is no longer the one it was
    reviewed against (another version was published meanwhile). Publishing the live version
    again rewrites its files: the repair for a file changed outside the workflow."""
    row = _version(dep.store, playbook_id, number)
    where = f"{playbook_id}@{number}"
    pointer = _pointer(dep.store, playbook_id)
    if row["state"] in ("live", "paused") and pointer.version_id == row["id"]:
        _may_act(dep, actor, row, where)
        return _write_again(dep, actor, row)
    if row["state"] != "approved":
        raise refuse("wrong_state", where, state=row["state"], expected="approved")
    _may_act(dep, actor, row, where)
    if pointer.version_id != row["base_version_id"]:
        raise refuse("newer_live", where, live=_number_of(dep.store, pointer.version_id))
    return _make_live(dep, actor, row, pointer, "approved", "published")


def rollback(dep: Deployment, actor: Actor, playbook_id: str, number: int) -> Done:
    """Make an earlier approved version live again, with its exact files. Takes
    ``people.rollback`` different persons: the first asks, the last one's call does it."""
    row = _version(dep.store, playbook_id, number)
    where = f"{playbook_id}@{number}"
    pointer = _pointer(dep.store, playbook_id)
    if row["state"] not in RESTORABLE or pointer.version_id == row["id"]:
        raise refuse("wrong_state", where, state=row["state"], expected="retired")
    _may_act(dep, actor, row, where)
    check_stored(row["files"], playbook_id, dep.settings, dep.dictionary, where)
    pending = _second_person(dep, actor, row, pointer, "rollback")
    if pending is not None:
        return pending
    return _make_live(dep, actor, row, pointer, row["state"], "rolled_back")


def _make_live(
    dep: Deployment, actor: Actor, row: dict[str, Any], seen: Live, expected: str, action: str
) -> Done:
    where = f"{row['playbook_id']}@{row['number']}"
    with dep.store.connect() as conn:
        previous = records.version_by_id(conn, seen.version_id) if seen.version_id else None
        _shared_templates(dep, conn, row)
    try:
        staged = vfiles.stage(row["files"], dep.settings)
    except OSError as exc:
        raise refuse("write_failed", where, problem=str(exc)) from exc
    try:
        with dep.store.begin() as conn:
            if not records.move_live(conn, seen, actor.name, version_id=row["id"], paused=False):
                raise refuse("race_lost", where)
            if not records.set_state(conn, row["id"], expected, "live"):
                raise refuse("race_lost", where)
            if previous is not None:
                records.set_state(conn, previous["id"], previous["state"], "retired")
            records.add_event(
                conn,
                row,
                action,
                actor,
                generation=seen.generation + 1,
                detail={"replaces": previous["number"] if previous else None},
            )
    except BaseException:
        vfiles.discard(staged)
        raise
    # the store says live: now the files. A failure here leaves files the gate reports as
    # changed outside the workflow (not run) until `publish` of the live version rewrites them.
    try:
        vfiles.commit(staged)
        _remove_moved_playbook(dep.settings, previous, row)
    except OSError as exc:
        vfiles.discard(staged)
        raise refuse("write_failed", where, problem=str(exc)) from exc
    replaced = f" (was version {previous['number']})" if previous else ""
    return Done(
        row["playbook_id"],
        row["number"],
        "live",
        f"version {row['number']} is live{replaced}; its files are written",
        {"hash": row["hash"], "files": sorted(row["files"])},
    )


def _write_again(dep: Deployment, actor: Actor, row: dict[str, Any]) -> Done:
    where = f"{row['playbook_id']}@{row['number']}"
    try:
        staged = vfiles.stage(row["files"], dep.settings)
        vfiles.commit(staged)
    except OSError as exc:
        raise refuse("write_failed", where, problem=str(exc)) from exc
    with dep.store.begin() as conn:
        records.add_event(conn, row, "rewritten", actor)
    return Done(
        row["playbook_id"],
        row["number"],
        row["state"],
        f"version {row['number']} is already live; its files are written again",
        {"hash": row["hash"]},
    )


# --- pause and resume ------------------------------------------------------------------------


def pause(dep: Deployment, actor: Actor, playbook_id: str) -> Done:
    """Stop the live version from running (files untouched); ``people.pause`` persons."""
    return _toggle(dep, actor, playbook_id, pause=True)


def resume(dep: Deployment, actor: Actor, playbook_id: str) -> Done:
    """Let a paused live version run again; ``people.resume`` persons."""
    return _toggle(dep, actor, playbook_id, pause=False)


def _toggle(dep: Deployment, actor: Actor, playbook_id: str, *, pause: bool) -> Done:
    pointer = _pointer(dep.store, playbook_id)
    if pointer.version_id is None or pointer.paused == pause:
        raise refuse("not_live", playbook_id, paused=pointer.paused)
    with dep.store.connect() as conn:
        row = records.version_by_id(conn, pointer.version_id)
    where = f"{playbook_id}@{row['number']}"
    _may_act(dep, actor, row, where)
    action = "pause" if pause else "resume"
    pending = _second_person(dep, actor, row, pointer, action)
    if pending is not None:
        return pending
    before, after = ("live", "paused") if pause else ("paused", "live")
    with dep.store.begin() as conn:
        if not records.move_live(conn, pointer, actor.name, version_id=row["id"], paused=pause):
            raise refuse("race_lost", where)
        records.set_state(conn, row["id"], before, after)
        records.add_event(
            conn, row, "paused" if pause else "resumed", actor, generation=pointer.generation + 1
        )
    return Done(playbook_id, row["number"], after, f"{playbook_id} {after}", {})


def _second_person(
    dep: Deployment, actor: Actor, row: dict[str, Any], pointer: Live, action: str
) -> Done | None:
    """None when ``actor`` completes the persons ``action`` needs (with the requests made
    against this same live generation); otherwise records the request and says so."""
    needed = dep.gov.people.get(action, 1)
    requested = f"{action}_requested"
    with dep.store.connect() as conn:
        asked = records.people(
            records.events(conn, row["id"]), requested, generation=pointer.generation
        )
    if actor.person in asked:
        raise refuse("already_approved", f"{row['playbook_id']}@{row['number']}", name=actor.name)
    if len(asked) + 1 >= needed:
        return None
    with dep.store.begin() as conn:
        records.add_event(conn, row, requested, actor, generation=pointer.generation)
    more = needed - len(asked) - 1
    return Done(
        row["playbook_id"],
        row["number"],
        row["state"],
        f"{action} of version {row['number']} requested; {more} more person(s) must confirm "
        "with the same command",
        {"requested_by": sorted({*asked, actor.person}), "needed": needed},
    )


# --- reading ------------------------------------------------------------------------------------


def history(store: Engine, playbook_id: str) -> list[dict[str, Any]]:
    """Every version of the playbook with its events, its estimate and the diff it was
    submitted with, oldest first (the files by name only)."""
    records.ensure_tables(store)
    with store.connect() as conn:
        pointer = records.live(conn, playbook_id)
        out = []
        for v in records.versions(conn, playbook_id):
            entry = {k: v[k] for k in v if k != "files"}  # the diff stays: what was reviewed
            entry["files"] = sorted(v["files"])
            entry["events"] = records.events(conn, v["id"])
            entry["is_live"] = pointer is not None and pointer.version_id == v["id"]
            out.append(entry)
    return out


def diff(dep: Deployment, playbook_id: str, old: int | None, new: int | None) -> str:
    """The diff between two versions; ``old`` None is the live version, ``new`` None the
    files in the folders now (what a submission would store)."""
    records.ensure_tables(dep.store)
    with dep.store.connect() as conn:
        pointer = records.live(conn, playbook_id)
        if old is None:
            left = (
                records.version_by_id(conn, pointer.version_id)
                if pointer and pointer.version_id
                else None
            )
        else:
            left = records.version(conn, playbook_id, old)
            if left is None:
                raise refuse("unknown_version", f"{playbook_id}@{old}", number=old)
        right_row = records.version(conn, playbook_id, new) if new is not None else None
    if new is not None and right_row is None:
        raise refuse("unknown_version", f"{playbook_id}@{new}", number=new)
    if right_row is not None:
        right, right_label = right_row["files"], f"v{new}"
    else:
        catalog = Validator(dep.settings, dep.dictionary).validate_paths(
            [dep.settings.playbooks_dir]
        )
        playbook = valid_playbook(catalog, playbook_id)
        right = vfiles.collect(playbook, dep.settings, vfiles.disk_templates(dep.settings)) or {}
        right_label = "disk"
    left_files = left["files"] if left else {}
    left_label = f"v{left['number']}" if left else "none"
    return unified_diff(left_files, right, left_label, right_label)


# --- checks ---------------------------------------------------------------------------------------


def _version(store: Engine, playbook_id: str, number: int) -> dict[str, Any]:
    records.ensure_tables(store)
    with store.connect() as conn:
        row = records.version(conn, playbook_id, number)
    if row is None:
        raise refuse("unknown_version", f"{playbook_id}@{number}", number=number)
    return row


def _pointer(store: Engine, playbook_id: str) -> Live:
    with store.connect() as conn:
        pointer = records.live(conn, playbook_id)
    return pointer or Live(playbook_id, None, False, 0)


def _number_of(store: Engine, version_id: int | None) -> int | str:
    if version_id is None:
        return "none"
    with store.connect() as conn:
        return int(records.version_by_id(conn, version_id)["number"])


def _may_approve(dep: Deployment, actor: Actor, row: dict[str, Any], where: str) -> None:
    category = row["category"]
    who = dep.gov.approvers.get(category)
    if who is None or not who.admits(actor.name, actor.role):
        raise refuse(
            "not_allowed",
            where,
            name=actor.name,
            role=actor.role or "-",
            category=category,
            source=dep.gov.source or dep.settings.governance_path.name,
        )


def _may_act(dep: Deployment, actor: Actor, row: dict[str, Any], where: str) -> None:
    """Publish, rollback, pause and resume: the people who may approve the category."""
    _may_approve(dep, actor, row, where)


def _shared_templates(dep: Deployment, conn: Connection, row: dict[str, Any]) -> None:
    """Refuse to overwrite a template another playbook's live version uses with other text:
    that playbook would stop running as changed outside the workflow."""
    others = conn.execute(
        playbook_live.select().where(
            playbook_live.c.playbook_id != row["playbook_id"],
            playbook_live.c.version_id.is_not(None),
        )
    ).mappings()
    for other in list(others):
        files = records.version_by_id(conn, other["version_id"])["files"]
        for path, text in row["files"].items():
            if path in files and files[path] != text:
                raise refuse(
                    "shared_template",
                    f"{row['playbook_id']}@{row['number']}",
                    path=path,
                    other=other["playbook_id"],
                )


def _remove_moved_playbook(
    settings: Settings, previous: dict[str, Any] | None, row: dict[str, Any]
) -> None:
    """When the playbook file was renamed between versions, the old name would hold a second
    playbook of the same id: remove it."""
    if previous is None:
        return
    old = vfiles.playbook_file(previous["files"], settings)
    if old != vfiles.playbook_file(row["files"], settings):
        Path(settings.root / old).unlink(missing_ok=True)
