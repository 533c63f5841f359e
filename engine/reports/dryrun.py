"""Dry-run reports: the funnel per playbook, in text for people and JSON for machines.

The JSON shape is a contract (README, "Dry-run JSON"): one document with ``as_of`` and, per
playbook, every matched customer id, every action with its rendered fields and every
suppression with its reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from engine.actions.base import Effect
from engine.execution import Outcome

REASONS: dict[str, tuple[str, str]] = {
    "already_done": ("本时段已执行", "already done in this window"),
    "cooldown": ("冷静期内", "inside the playbook's cooldown"),
    "max_per_run": ("超出单次上限", "over the per-run limit"),
    "no_consent_sms": ("无短信授权", "no SMS consent"),
    "no_consent_email": ("无邮件授权", "no e-mail consent"),
    "no_phone": ("无手机号", "no phone number"),
    "no_email": ("无邮箱", "no e-mail address"),
    "no_manager": ("无客户经理", "no relationship manager"),
}
KIND_LABELS = {"sms": "短信", "task": "任务", "email": "邮件"}


def effect_json(effect: Effect) -> dict[str, Any]:
    row = {k: v for k, v in effect.row.items() if not isinstance(v, dt.datetime)}
    if effect.kind == "task":
        row["due_at"] = row.pop("due_local")
    return {"customer_id": effect.customer_id, "type": effect.kind, **row}


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    actions = [effect_json(e) for d in outcome.decisions for e in d.effects]
    suppressed = [
        {"customer_id": d.customer_id, "reason": reason, **({"action": kind} if kind else {})}
        for d in outcome.decisions
        for kind, reason in d.suppressed
    ]
    return {
        "id": outcome.playbook.id,
        "title": outcome.playbook.title,
        "content_hash": outcome.playbook.content_hash,
        "evaluated_at": outcome.as_of.isoformat(),
        "window": outcome.window,
        "matched": outcome.matched,
        "actions": actions,
        "suppressed": suppressed,
        "counts": {
            "matched": outcome.matched_count,
            "customers_acted": outcome.acted,
            "actions": dict(outcome.effects),
            "suppressed": dict(outcome.suppressed),
        },
    }


def report_json(
    as_of: dt.datetime, outcomes: Sequence[Outcome], skipped: Sequence[Any]
) -> dict[str, Any]:
    return {
        "as_of": as_of.isoformat(),
        "playbooks": [outcome_json(o) for o in outcomes],
        "not_scheduled": [{"id": p.id, "schedule": p.trigger.cron} for p in skipped],
    }


def _dots(label: str, value: str, width: int = 34) -> str:
    # CJK characters take two columns in a terminal
    shown = sum(2 if ord(ch) > 0x2E80 else 1 for ch in label)
    return f"  {label} {'.' * max(3, width - shown)} {value}"


def report_text(
    as_of: dt.datetime, outcomes: Sequence[Outcome], skipped: Sequence[Any], samples: int = 3
) -> str:
    lines = [f"dry-run as of {as_of.isoformat(timespec='minutes')}  (personal data masked)", ""]
    for o in outcomes:
        p = o.playbook
        lines.append(
            f"{p.id}  {p.title}  (sha {p.content_hash[:7]})  "
            f"schedule '{p.trigger.cron}'  window {o.window}"
        )
        lines.append(_dots("matched 符合条件", f"{o.matched_count:,}"))
        for reason, count in sorted(o.suppressed.items(), key=lambda kv: -kv[1]):
            zh, en = REASONS.get(reason, (reason, reason))
            lines.append(_dots(f"− {zh} {en}", f"{count:,}"))
        kinds = ", ".join(
            f"{KIND_LABELS.get(k, k)} {k} ×{n:,}" for k, n in sorted(o.effects.items())
        )
        lines.append(_dots("= customers acted 执行客户", f"{o.acted:,}   ({kinds or 'none'})"))
        shown = 0
        for d in o.decisions:
            if not d.effects or shown >= samples:
                continue
            shown += 1
            for e in d.effects:
                lines.append(f"    {_sample(e)}")
        lines.append("")
    for p in skipped:
        lines.append(f"{p.id}  {p.title}: not scheduled on this day ('{p.trigger.cron}')")
    if not outcomes and not skipped:
        lines.append("no playbooks selected")
    return "\n".join(lines).rstrip() + "\n"


def _sample(e: Effect) -> str:
    r = e.row
    if e.kind == "task":
        who, due = r["assignee_id"], r["due_local"]
        return f"{e.customer_id} 任务→{who} [{r['priority']}] {r['title']} (due {due})"
    return f'{e.customer_id} {e.kind}→{r["recipient"]} "{r["body"]}"'
