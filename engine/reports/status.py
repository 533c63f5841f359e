"""``status``: what the daemons are doing, in words a newcomer can act on (or as JSON).

Everything comes from the store (daemons' heartbeats and loaded versions, run claims, runs,
outbox, tasks) plus a fresh validation of the playbook folder, so ``status`` works from any
machine that reaches the database, with or without a daemon running.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from engine.core.clock import local_naive, utc_naive
from engine.core.observability import DEAD_LETTER_STATUSES
from engine.playbook.model import cron_of
from engine.playbook.validation import Catalog
from engine.reports.calendar import coverage, render_coverage
from engine.reports.calendar import load as load_calendar
from engine.store.claims import DONE, FAILED, MISSED, RUNNING
from engine.store.models import (
    daemons,
    event_cursors,
    events,
    outbox,
    partition_scheme,
    run_claims,
    runs,
    tasks,
)
from engine.triggers.schedule import next_slot

RECENT = 10


def gather(
    store: Engine, catalog: Catalog, now: dt.datetime, tz: Any, calendar_dir: Path
) -> dict[str, Any]:
    """The status document: ``now`` is aware; times shown are local to the bank."""
    wall = utc_naive(now)
    local_now = local_naive(now, tz)
    with store.connect() as conn:
        live = _daemons(conn, wall, tz)
        running = {
            pid: {**info, "daemon": d["id"]}
            for d in live
            if d["alive"]
            for pid, info in d["state"].get("playbooks", {}).items()
        }
        playbooks = [
            _playbook(conn, p, running.get(p.id), local_now, tz) for p in catalog.playbooks
        ]
        known = {p.id for p in catalog.playbooks}
        for pid, info in sorted(running.items()):
            if pid not in known:  # running a last good version of a file that is now invalid
                playbooks.append(_orphan(conn, pid, info, local_now, tz))
        doc = {
            "now": now.astimezone(tz).isoformat(timespec="seconds"),
            "daemons": [{k: v for k, v in d.items() if k != "state"} for d in live],
            "playbooks": playbooks,
            "reload_errors": _errors(catalog, running),
            "policy_errors": [
                {"daemon": d["id"], **d["state"]["policy_error"]}
                for d in live
                if d["alive"] and d["state"].get("policy_error")
            ],
            "events": _events(conn, live, wall, tz),
            "partitions": _partitions(conn, live, tz),
            "missed": _claims(conn, MISSED, tz),
            "failed": _claims(conn, FAILED, tz),
            "outbox": _outbox(conn, tz),
            "tasks": {"open": _count(conn, select(func.count()).where(tasks.c.status == "open"))},
            "calendar": coverage(*load_calendar(calendar_dir), now.astimezone(tz).date()),
        }
    return doc


def _events(
    conn: Connection, live: list[dict[str, Any]], wall: dt.datetime, tz: Any
) -> dict[str, Any]:
    """Who hosts the event playbooks (the cursor's lease) and how far it got."""
    row = conn.execute(select(event_cursors)).first()
    stored = conn.execute(select(func.max(events.c.seq))).scalar()
    holder = None
    if row is not None and row.owner and row.lease_until and row.lease_until >= wall:
        holder = row.owner
    return {
        "host": holder,
        "processed_seq": row.last_seq if row is not None else 0,
        "stored_seq": int(stored or 0),
        "updated_at": _local(row.updated_at, tz) if row is not None else None,
    }


def _partitions(conn: Connection, live: list[dict[str, Any]], tz: Any) -> dict[str, Any] | None:
    """Per partition of the recorded scheme: the live daemon that owns it (none: the other
    daemons serve it), and its claims by status and latest slot; None when unpartitioned."""
    scheme = conn.execute(select(partition_scheme)).first()
    if scheme is None:
        return None
    owners: dict[int, list[str]] = {}
    for d in live:
        label = d["state"].get("partition") if d["alive"] else None
        k, _, count = label.partition("/") if isinstance(label, str) else ("", "", "")
        if k.isdigit() and count == str(scheme.partitions):  # a state from elsewhere: skipped
            owners.setdefault(int(k), []).append(d["id"])
    c = run_claims.c
    claims: dict[int, dict[str, int]] = {}
    latest: dict[int, str] = {}
    for number, status, count, slot in conn.execute(
        select(c.partition_no, c.status, func.count(), func.max(c.slot)).group_by(
            c.partition_no, c.status
        )
    ):
        claims.setdefault(int(number), {})[status] = int(count)
        latest[int(number)] = max(latest.get(int(number), ""), str(slot))
    return {
        "count": int(scheme.partitions),
        "set_by": scheme.set_by,
        "set_at": _local(scheme.set_at, tz),
        "parts": [
            {
                "partition": f"{k}/{scheme.partitions}",
                "daemons": owners.get(k, []),
                "claims": claims.get(k, {}),
                "latest_slot": latest.get(k),
            }
            for k in range(1, scheme.partitions + 1)
        ],
    }


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar_one())


def _local(value: dt.datetime | None, tz: Any) -> str | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="seconds")


def _daemons(conn: Connection, wall: dt.datetime, tz: Any) -> list[dict[str, Any]]:
    out = []
    query = select(daemons).order_by(daemons.c.started_at.desc()).limit(20)
    for row in conn.execute(query):
        state: Mapping[str, Any] = row.state or {}
        every = float(state.get("heartbeat_seconds", 20))
        silent = (wall - row.heartbeat_at).total_seconds()
        alive = row.stopped_at is None and silent <= max(3 * every, 5.0)
        if not alive and row.stopped_at is None and silent > 86400:
            continue  # long dead and never stopped cleanly: not news any more
        out.append(
            {
                "id": row.id,
                "host": row.host,
                "pid": row.pid,
                "alive": alive,
                "started_at": _local(row.started_at, tz),
                "heartbeat_at": _local(row.heartbeat_at, tz),
                "seconds_since_heartbeat": round(silent, 1),
                "stopped_at": _local(row.stopped_at, tz),
                "clock": state.get("clock"),
                "grace_seconds": state.get("grace_seconds"),
                "dispatcher": state.get("dispatcher"),
                "state": state,
            }
        )
    return out


def _last_claim(conn: Connection, playbook_id: str, tz: Any) -> dict[str, Any] | None:
    row = conn.execute(
        select(run_claims, runs.c.matched, runs.c.acted, runs.c.suppressed)
        .select_from(run_claims.outerjoin(runs, runs.c.id == run_claims.c.run_id))
        .where(run_claims.c.playbook_id == playbook_id)
        .order_by(run_claims.c.slot.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {
        "slot": row.slot,
        "status": row.status,
        "finished_at": _local(row.finished_at, tz),
        "duration_ms": row.duration_ms,
        "lag_ms": row.lag_ms,
        "matched": row.matched,
        "acted": row.acted,
        "suppressed": row.suppressed,
        "error": row.error,
        "run_id": row.run_id,
    }


def _playbook(
    conn: Connection, p: Any, running: Mapping[str, Any] | None, local_now: dt.datetime, tz: Any
) -> dict[str, Any]:
    cron = cron_of(p)
    nxt = next_slot(cron, local_now) if cron and p.enabled else None
    return {
        "id": p.id,
        "title": p.title,
        "file": p.source,
        "enabled": p.enabled,
        "schedule": cron,
        "next_run": nxt.replace(tzinfo=tz).isoformat(timespec="minutes") if nxt else None,
        "last_run": _last_claim(conn, p.id, tz),
        "content_hash": p.content_hash,
        "running_hash": running.get("content_hash") if running else None,
        "kept_last_good": bool(running and running.get("kept_last_good")),
        "daemon": running.get("daemon") if running else None,
    }


def _orphan(
    conn: Connection, pid: str, info: Mapping[str, Any], local_now: dt.datetime, tz: Any
) -> dict[str, Any]:
    cron = info.get("schedule")
    nxt = next_slot(cron, local_now) if cron else None
    return {
        "id": pid,
        "title": None,
        "file": info.get("file"),
        "enabled": True,
        "schedule": cron,
        "next_run": nxt.replace(tzinfo=tz).isoformat(timespec="minutes") if nxt else None,
        "last_run": _last_claim(conn, pid, tz),
        "content_hash": None,
        "running_hash": info.get("content_hash"),
        "kept_last_good": True,
        "daemon": info.get("daemon"),
    }


def _errors(catalog: Catalog, running: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    kept = {info.get("file"): pid for pid, info in running.items() if info.get("kept_last_good")}
    return [
        {
            "file": d.file,
            "line": d.line,
            "col": d.col,
            "code": d.code,
            "message": d.message,
            "hint": d.hint,
            "running_last_good": kept.get(d.file),
        }
        for d in catalog.errors
    ]


def _claims(conn: Connection, status: str, tz: Any) -> dict[str, Any]:
    total = _count(conn, select(func.count()).where(run_claims.c.status == status))
    rows = conn.execute(
        select(run_claims)
        .where(run_claims.c.status == status)
        .order_by(run_claims.c.due_at.desc())
        .limit(RECENT)
    )
    recent = [
        {"playbook": r.playbook_id, "slot": r.slot, "error": r.error, "attempts": r.attempts}
        for r in rows
    ]
    return {"total": total, "recent": recent}


def _outbox(conn: Connection, tz: Any) -> dict[str, Any]:
    pending = select(func.count(), func.min(outbox.c.created_at)).where(
        outbox.c.status == "pending"
    )
    n, oldest = conn.execute(pending).one()
    dead = _count(conn, select(func.count()).where(outbox.c.status.in_(DEAD_LETTER_STATUSES)))
    sent = _count(conn, select(func.count()).where(outbox.c.status == "sent"))
    return {
        "pending": int(n),
        "oldest_pending": _local(oldest, tz),
        "dead_letters": dead,
        "sent": sent,
    }


# --- text ---------------------------------------------------------------------------------


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _short(iso: str | None) -> str:
    return "-" if not iso else iso[:16].replace("T", " ")


def _last(run: Mapping[str, Any] | None) -> str:
    if run is None:
        return "never"
    text = f"{run['slot'].replace('T', ' ')} {run['status']}"
    if run["status"] == DONE and run.get("matched") is not None:
        text += f": matched {run['matched']}, acted {run['acted']}"
        if run.get("duration_ms") is not None:
            text += f" in {run['duration_ms'] / 1000:.1f}s"
    elif run["status"] == RUNNING:
        text += " (now)"
    elif run.get("error"):
        text += f": {run['error']}"
    return text


def render_text(doc: Mapping[str, Any]) -> str:
    lines = [f"status at {_short(doc['now'])} (bank time)", ""]
    alive = [d for d in doc["daemons"] if d["alive"]]
    lines.append(f"Daemons: {len(alive)} running")
    if not alive:
        lines.append("  none: start one with `python runner.py daemon` (nothing runs on schedule)")
    for d in doc["daemons"]:
        if d["alive"]:
            lines.append(
                f"  {d['id']}  up since {_short(d['started_at'])}, "
                f"heartbeat {_ago(d['seconds_since_heartbeat'])}, clock {d['clock']}"
            )
        elif d["stopped_at"] is None:
            lines.append(
                f"  {d['id']}  SILENT since {_short(d['heartbeat_at'])} (killed or hung); "
                "its claims are resumed by the next daemon"
            )
    parts = doc.get("partitions")
    if parts:
        lines += [
            "",
            f"Partitions: customers split {parts['count']} ways (recorded by {parts['set_by']} "
            f"at {_short(parts['set_at'])})",
        ]
        for part in parts["parts"]:
            who = ", ".join(part["daemons"]) or "NO LIVE DAEMON: the others serve its slots"
            done = ", ".join(f"{n} {status}" for status, n in sorted(part["claims"].items()))
            lines.append(
                f"  {part['partition']:<6} {who}; claims: {done or 'none yet'}"
                + (f", latest slot {part['latest_slot']}" if part["latest_slot"] else "")
            )
    pbs = doc["playbooks"]
    enabled = [p for p in pbs if p["enabled"]]
    lines += ["", f"Playbooks: {len(enabled)} enabled, {len(pbs) - len(enabled)} disabled"]
    width = max([len(p["id"]) for p in pbs] + [8])
    lines.append(f"  {'ID':<{width}}  {'SCHEDULE':<16} {'NEXT RUN':<17} LAST RUN")
    for p in pbs:
        nxt = _short(p["next_run"]) if p["enabled"] else "(disabled)"
        if p["schedule"] is None:  # event playbooks run as their events arrive
            nxt = "on events" if p["enabled"] else nxt
        mark = "  [running last good version: file has errors]" if p["kept_last_good"] else ""
        lines.append(
            f"  {p['id']:<{width}}  {p['schedule'] or '(events)':<16} {nxt:<17} "
            f"{_last(p['last_run'])}{mark}"
        )
    errors = doc["reload_errors"]
    if errors:
        lines += [
            "",
            f"Playbook files with errors: {len(errors)} (fix and save; no restart needed)",
        ]
        for e in errors:
            kept = (
                f"  -> daemon keeps running the last good '{e['running_last_good']}'"
                if e["running_last_good"]
                else ""
            )
            lines.append(
                f"  {e['file']}:{e['line']}:{e['col']}: [{e['code']}] {e['message']}{kept}"
            )
    held = doc.get("governance") or []
    if held:
        changed = sum(1 for h in held if h["reason"] == "changed_outside_workflow")
        lines += [
            "",
            f"Not run by governance: {len(held)} ({changed} changed outside the workflow; "
            "`playbook diff ID` shows how, `playbook submit ID` or `playbook publish ID N` "
            "puts it right)",
        ]
        for h in held:
            lines.append(f"  {h['playbook']} ({h['file']}): {h['words']}")
    for p in doc["policy_errors"]:
        lines += [
            "",
            f"Contact policy has an error (daemon {p['daemon']} keeps the last good policy; "
            "fix and save, no restart needed):",
            f"  {p['where'] or 'config/policy.yaml'}: [{p['code']}] {p['message']}",
        ]
    ev = doc["events"]
    if ev["stored_seq"] or ev["host"]:
        behind = max(ev["stored_seq"] - ev["processed_seq"], 0)
        host = ev["host"] or "no daemon (start one: absence windows close only while one runs)"
        lines += ["", f"Events: hosted by {host}; {behind} stored event(s) not yet processed"]
    for key, title in (
        ("missed", "Missed slots (not run within the grace period)"),
        ("failed", "Failed slots"),
    ):
        block = doc[key]
        if block["total"]:
            lines += ["", f"{title}: {block['total']}"]
            for c in block["recent"]:
                lines.append(f"  {c['playbook']} {c['slot']}: {c['error'] or ''}")
    o = doc["outbox"]
    lines += [
        "",
        f"Outbox: {o['pending']} pending"
        + (f" (oldest queued {_short(o['oldest_pending'])})" if o["oldest_pending"] else "")
        + f", {o['sent']} sent, {o['dead_letters']} dead letters",
        f"Tasks: {doc['tasks']['open']} open",
        "",
        *render_coverage(doc["calendar"]),
    ]
    return "\n".join(lines)
