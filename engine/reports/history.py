"""The contact history of one customer: every decision the engine took about them, oldest
first — each action with its text, channel and delivery, each suppression with its reason,
each task with its outcome, holdout membership — with the playbook version (its content hash)
that decided it, and who looked at the customer's personal data. Personal data masked unless
asked for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select

from engine.core.masking import mask_email, mask_name, mask_phone
from engine.store import holds
from engine.store.models import (
    action_ledger,
    audit_log,
    customers,
    outbox,
    playbook_versions,
    run_holds,
    runs,
    suppressions,
    tasks,
    version_events,
)


@dataclass
class History:
    customer_id: str
    known: bool  # the customer is in the store (a purged or foreign id may still have history)
    masked: bool
    entries: list[dict[str, Any]] = field(default_factory=list)


def history(store: Engine, customer_id: str, tz: dt.tzinfo, *, mask: bool = True) -> History:
    with store.connect() as conn:
        person = conn.execute(
            select(customers.c.name, customers.c.phone, customers.c.email).where(
                customers.c.id == customer_id
            )
        ).first()
        ledger = {
            r["id"]: dict(r)
            for r in conn.execute(
                select(action_ledger).where(action_ledger.c.customer_id == customer_id)
            ).mappings()
        }
        sent = conn.execute(select(outbox).where(outbox.c.customer_id == customer_id)).mappings()
        messages = [dict(r) for r in sent]
        work = conn.execute(select(tasks).where(tasks.c.customer_id == customer_id)).mappings()
        jobs = [dict(r) for r in work]
        held = conn.execute(
            select(suppressions).where(suppressions.c.customer_id == customer_id)
        ).mappings()
        held_back = [dict(r) for r in held]
        listed = conn.execute(
            select(
                run_holds.c.playbook_id,
                run_holds.c.window,
                run_holds.c.reason,
                run_holds.c.created_at,
                run_holds.c.customers,
            ).where(holds.lists(customer_id))
        ).mappings()
        # the search is a LIKE (case-blind in SQLite): the exact id decides
        held_back += [
            {**dict(r), "action": None}
            for r in listed
            if customer_id in holds.decode(r["customers"])
        ]
        looked = conn.execute(
            select(audit_log).where(audit_log.c.customer_id == customer_id)
        ).mappings()
        seen = [dict(r) for r in looked]
        approved = _approvals(conn, {int(r["run_id"]) for r in ledger.values()})
    found = History(customer_id, person is not None, mask)
    hide = _masker(person) if mask else (lambda text: text)

    def when(value: dt.datetime | None) -> str | None:
        return (
            None
            if value is None
            else value.replace(tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="seconds")
        )

    for row in ledger.values():
        if row["held_out"]:
            found.entries.append(
                {"at": when(row["created_at"]), "kind": "held_out", "playbook": row["playbook_id"],
                 "window": row["window"], "version": row["content_hash"][:12],
                 **approved.get(row["run_id"], {})}
            )  # fmt: skip
    for m in messages:
        origin = ledger.get(m["ledger_id"], {})
        found.entries.append(
            {
                "at": when(m["created_at"]),
                "kind": m["channel"],
                "playbook": m["playbook_id"],
                "window": origin.get("window"),
                "version": str(origin.get("content_hash", ""))[:12],
                **approved.get(int(origin.get("run_id") or 0), {}),
                "recipient": _recipient(m["channel"], m["recipient"]) if mask else m["recipient"],
                "subject": hide(m["subject"]),
                "text": hide(m["body"]),
                "status": m["status"],
                "sent_at": when(m["sent_at"]),
                "attempts": m["attempts"],
                "error": m["last_error"],
            }
        )
    for t in jobs:
        origin = ledger.get(t["ledger_id"], {})
        found.entries.append(
            {
                "at": when(t["created_at"]),
                "kind": "task",
                "playbook": t["playbook_id"],
                "window": origin.get("window"),
                "version": str(origin.get("content_hash", ""))[:12],
                **approved.get(int(origin.get("run_id") or 0), {}),
                "task": t["kind"],
                "text": hide(t["title"]),
                "assignee": t["assignee_id"] or t["queue"],
                "status": t["status"],
                "due": when(t["due_at"]),
                "outcome": t["outcome"],
                "note": hide(t["note"]),
                "done_at": when(t["done_at"]),
            }
        )
    for s in held_back:
        found.entries.append(
            {"at": when(s["created_at"]), "kind": "suppressed", "playbook": s["playbook_id"],
             "window": s["window"], "action": s["action"] or "all", "reason": s["reason"]}
        )  # fmt: skip
    for a in seen:
        found.entries.append(
            {"at": when(a["at"]), "kind": "looked_at", "actor": a["actor"],
             "action": a["action"], "subject": a["subject"]}
        )  # fmt: skip
    found.entries.sort(key=lambda e: (e["at"] or "", e["kind"]))
    return found


def _approvals(conn: Connection, run_ids: set[int]) -> dict[int, dict[str, Any]]:
    """run id → the governed version that decided it: its number and who approved it (empty
    for runs made without governance, or a store that never used it)."""
    if not run_ids or not inspect(conn).has_table(playbook_versions.name):
        return {}
    hashes = dict(
        conn.execute(
            select(runs.c.id, runs.c.version_hash).where(
                runs.c.id.in_(run_ids), runs.c.version_hash.is_not(None)
            )
        ).all()
    )
    if not hashes:
        return {}
    v = playbook_versions.c
    found = conn.execute(
        select(v.id, v.playbook_id, v.number, v.hash).where(v.hash.in_(set(hashes.values())))
    ).all()
    by_hash = {row.hash: row for row in found}
    events = conn.execute(
        select(version_events.c.version_id, version_events.c.actor).where(
            version_events.c.version_id.in_([row.id for row in found]),
            version_events.c.action == "approved",
        )
    ).all()
    approvers: dict[int, list[str]] = {}
    for version_id, actor in events:
        approvers.setdefault(version_id, []).append(actor)
    out: dict[int, dict[str, Any]] = {}
    for run_id, digest in hashes.items():
        row = by_hash.get(digest)
        if row is not None:
            out[run_id] = {
                "version_number": row.number,
                "approved_by": sorted(set(approvers.get(row.id, []))),
            }
    return out


def _masker(person: Any) -> Any:
    pairs = []
    if person is not None:
        pairs = [
            (person.name, mask_name(person.name)),
            (person.phone, mask_phone(person.phone)),
            (person.email, mask_email(person.email)),
        ]

    def hide(text: str | None) -> str | None:
        if not text:
            return text
        for real, masked in pairs:
            if real:
                text = text.replace(str(real), masked)
        return text

    return hide


def _recipient(channel: str, value: str) -> str:
    return (
        mask_email(value)
        if channel == "email"
        else mask_phone(value)
        if channel == "sms"
        else value
    )


def history_text(found: History) -> str:
    lines = [
        f"contact history of {found.customer_id}"
        + ("" if found.known else " (not in the customer tables)")
        + ("  (personal data masked)" if found.masked else "  (PERSONAL DATA SHOWN)"),
        "",
    ]
    for e in found.entries:
        head = f"{e['at']}  {e['kind']:<10}"
        if e["kind"] == "looked_at":
            lines.append(f"{head} {e['actor']} {e['action']} {e['subject']}")
            continue
        where = f"{e['playbook']} @{e['window']} (version {e.get('version') or '—'}"
        if e.get("version_number") is not None:
            who = ", ".join(e.get("approved_by") or []) or "—"
            where += f", v{e['version_number']} approved by {who}"
        where += ")"
        if e["kind"] == "suppressed":
            lines.append(f"{head} {where}: {e['action']} held back: {e['reason']}")
        elif e["kind"] == "held_out":
            lines.append(f"{head} {where}: in the holdout group, nothing sent")
        elif e["kind"] == "task":
            done = f", {e['outcome']} {e['done_at']}" if e["outcome"] else ""
            lines.append(
                f"{head} {where}: {e['task']} → {e['assignee']} due {e['due']} "
                f"[{e['status']}{done}] {e['text']}"
            )
        else:
            sent = f" sent {e['sent_at']}" if e["sent_at"] else ""
            lines.append(f"{head} {where}: → {e['recipient']} [{e['status']}{sent}] {e['text']}")
    if not found.entries:
        lines.append("no decisions recorded for this customer")
    return "\n".join(lines) + "\n"


@dataclass
class RunHolds:
    """The customers one run held back, per reason: ``runs.suppressed`` counts them, this
    lists them (the compact lists and the per-customer rows alike)."""

    run_id: int
    playbook_id: str
    window: str
    counted: dict[str, int]  # reason -> customers, as the run counted them
    listed: dict[str, list[str]]  # reason -> customer ids, sorted


def run_holds_of(store: Engine, run_id: int, reason: str | None = None) -> RunHolds | None:
    """None when there is no such run."""
    with store.connect() as conn:
        run = conn.execute(
            select(runs.c.playbook_id, runs.c.window, runs.c.suppressed).where(runs.c.id == run_id)
        ).first()
        if run is None:
            return None
        rows = select(suppressions.c.reason, suppressions.c.customer_id).where(
            suppressions.c.run_id == run_id
        )
        lists = select(run_holds.c.reason, run_holds.c.customers).where(
            run_holds.c.run_id == run_id
        )
        if reason is not None:
            rows = rows.where(suppressions.c.reason == reason)
            lists = lists.where(run_holds.c.reason == reason)
        listed: dict[str, set[str]] = {}
        for why, cid in conn.execute(rows):
            listed.setdefault(why, set()).add(cid)
        for why, text in conn.execute(lists):
            listed.setdefault(why, set()).update(holds.decode(text))
    counted = {k: int(v) for k, v in dict(run.suppressed or {}).items()}
    if reason is not None:
        counted = {k: v for k, v in counted.items() if k == reason}
    return RunHolds(
        run_id,
        run.playbook_id,
        run.window,
        counted,
        {k: sorted(v) for k, v in sorted(listed.items())},
    )


_UNLISTED = {
    "already_done": "counted, not listed: acted on by an earlier run of the window",
    "held_out": "counted, not listed here: the holdout is in the ledger (`history` shows each)",
}


def run_holds_text(found: RunHolds) -> str:
    lines = [f"run {found.run_id} · {found.playbook_id} · window {found.window}"]
    for why in sorted(set(found.counted) | set(found.listed)):
        ids = found.listed.get(why, [])
        count = found.counted.get(why)
        note = f"{len(ids):,} listed"
        if not ids and count:
            note = _UNLISTED.get(why, "counted, not listed")
        lines.append(f"{why}: {count if count is not None else len(ids):,} customers, {note}")
        lines.extend(f"  {cid}" for cid in ids)
    if len(lines) == 1:
        lines.append("nobody was held back")
    return "\n".join(lines) + "\n"
