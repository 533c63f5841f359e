"""Dry-run reports: the funnel per playbook, in text for people and JSON for machines.

The JSON shape is a contract (README, "Dry-run JSON"): one document with ``as_of`` and, per
playbook, every matched customer id, every action with its rendered fields and every
suppression with its reason. The funnel adds up: matched = customers acted + customers held
back entirely (``counts.held_back``, by reason) + held out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from engine.actions.base import Effect
from engine.conditions.quality import KINDS as ISSUE_KINDS
from engine.execution.executor import Outcome

REASONS: dict[str, tuple[str, str]] = {
    "already_done": ("本时段已执行", "already done in this window"),
    "cooldown": ("冷静期内", "inside the playbook's cooldown"),
    "max_per_run": ("超出单次上限", "over the per-run limit"),
    "no_consent_sms": ("无短信授权", "no SMS consent"),
    "no_consent_email": ("无邮件授权", "no e-mail consent"),
    "no_consent_phone": ("无电话营销授权", "no phone consent"),
    "no_phone": ("无手机号", "no phone number"),
    "no_email": ("无邮箱", "no e-mail address"),
    "no_manager": ("无客户经理", "no relationship manager"),
    "no_senior_manager": ("无高级客户经理", "no senior manager in the branch"),
    "no_branch_leader": ("无网点负责人", "no branch leader"),
    "open_task": ("已有未完成任务", "an open task for the same reason"),
    "quiet_hours_sms": ("短信免打扰时段", "outside SMS hours (expire)"),
    "quiet_hours_email": ("邮件免打扰时段", "outside e-mail hours (expire)"),
    "frequency_cap_sms": ("短信频次上限", "SMS frequency cap"),
    "frequency_cap_email": ("邮件频次上限", "e-mail frequency cap"),
    "wecom_limit": ("企业微信每客户上限", "WeCom per-customer limit"),
    "displaced_by_priority": ("被高优先级替换", "displaced by a higher-priority playbook"),
    "held_out": ("对照组", "held out for measurement"),
    "no_action_left": ("所有动作均未执行", "every action held back"),
    "render_error": ("文本渲染失败", "the text failed to render"),
}
KIND_LABELS = {
    "sms": "短信",
    "task": "任务",
    "wecom": "企业微信",
    "email": "邮件",
    "webhook": "推送",
    "tag": "标签",
}
# action kinds that become a task for a person (a due time, an assignee)
TASK_KINDS = ("task", "wecom")


def effect_json(effect: Effect, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    row = {k: v for k, v in effect.row.items() if not isinstance(v, dt.datetime)}
    if effect.kind in TASK_KINDS:
        row["due_at"] = row.pop("due_local")
    if effect.not_before is not None:  # waits for the channel's allowed hours
        row["not_before"] = _local(effect.not_before, tz)
    if effect.expires_at is not None:
        row["expires_at"] = _local(effect.expires_at, tz)
    if effect.displaces is not None:  # the queued lower-priority message it cancels
        row["displaces"] = {
            "playbook": effect.displaces.playbook_id,
            "priority": effect.displaces.priority,
            "outbox_id": effect.displaces.outbox_id,
        }
    return {"customer_id": effect.customer_id, "type": effect.kind, **row}


def _local(utc_naive: dt.datetime, tz: dt.tzinfo | None) -> str:
    return utc_naive.replace(tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="minutes")


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    tz = outcome.as_of.tzinfo
    actions = [effect_json(e, tz) for d in outcome.decisions for e in d.effects]
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
        **({"partition": outcome.partition.label} if outcome.partition is not None else {}),
        "matched": outcome.matched,
        "actions": actions,
        "suppressed": suppressed,
        "held_out": [d.customer_id for d in outcome.decisions if d.held_out],
        "data_issues": outcome.data_issues,
        **({"error": outcome.error} if outcome.error is not None else {}),
        **(
            {
                "calendar_estimated": {
                    "days": [d.isoformat() for d in outcome.estimated_days],
                    "decision": "held" if outcome.held_for_estimate else "ran",
                }
            }
            if outcome.estimated_days
            else {}
        ),
        **({"render_errors": dict(outcome.render_errors)} if outcome.render_errors else {}),
        **({"bad_addresses": dict(outcome.bad_addresses)} if outcome.bad_addresses else {}),
        "counts": {
            "matched": outcome.matched_count,
            "customers_acted": outcome.acted,
            "customers_suppressed": outcome.customers_suppressed,
            "held_out": outcome.held_out,
            "actions": dict(outcome.effects),
            "suppressed": dict(outcome.suppressed),
            "held_back": dict(outcome.held_back_by),
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


def _trigger_text(p: Any) -> str:
    cron = getattr(p.trigger, "cron", None)
    return f"schedule '{cron}'" if cron is not None else str(p.trigger.summary)


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
            f"{p.id}  {p.title}  (sha {p.content_hash[:7]})  {_trigger_text(p)}  window {o.window}"
            + (f"  [partition {o.partition.label}]" if o.partition is not None else "")
        )
        if o.error is not None:
            lines += [f"  FAILED 运行失败: {o.error}", "  (nothing decided for this playbook)", ""]
            continue
        if o.estimated_days:
            lines += estimate_lines(o)
            if o.held_for_estimate:
                lines.append("")
                continue
        lines.append(_dots("matched 符合条件", f"{o.matched_count:,}"))
        lines += _issue_lines(o)
        lines += [
            f"  ! text failed 文本渲染失败: {key}: {n:,} customer(s)"
            for key, n in sorted(o.render_errors.items())
        ]
        if o.bad_addresses:
            found = "; ".join(f"{k} {n:,}" for k, n in sorted(o.bad_addresses.items()))
            lines.append(f"  ! address unusable 地址无效(未发送): {found}")
        lines += _funnel_lines(o)
        shown = 0
        for d in o.decisions:
            if not d.effects or shown >= samples:
                continue
            shown += 1
            for e in d.effects:
                lines.append(f"    {effect_line(e)}")
        lines.append("")
    for p in skipped:
        lines.append(f"{p.id}  {p.title}: not scheduled on this day ('{p.trigger.cron}')")
    if not outcomes and not skipped:
        lines.append("no playbooks selected")
    return "\n".join(lines).rstrip() + "\n"


def estimate_lines(o: Outcome) -> list[str]:
    """Why a workday decision is a guess, and what policy made of it."""
    days = ", ".join(d.isoformat() for d in o.estimated_days[:3])
    if len(o.estimated_days) > 3:
        days += f" … ({len(o.estimated_days)} days)"
    years = sorted({d.year for d in o.estimated_days})
    files = ", ".join(f"config/calendar/CN-{y}.yaml" for y in years)
    what = (
        "HELD 暂停: nothing decided (policy calendar.on_estimated_day: hold)"
        if o.held_for_estimate
        else "ran on the estimate 按估算运行 (policy calendar.on_estimated_day: run)"
    )
    return [
        f"  ! calendar estimated 工作日为估算: {days} — no official holiday schedule;"
        f" type the notice into {files}",
        f"    {what}",
    ]


def _funnel_lines(o: Outcome) -> list[str]:
    """matched − held out − customers held back (by reason) = customers acted, so the lines
    add up; then the single actions held back for customers who still got something else."""
    lines = []
    if o.held_out:
        lines.append(_dots("− 对照组 held out", f"{o.held_out:,}"))
    for reason, count in sorted(o.held_back_by.items(), key=lambda kv: (-kv[1], kv[0])):
        zh, en = REASONS.get(reason, (reason, reason))
        lines.append(_dots(f"− {zh} {en}", f"{count:,}"))
    kinds = ", ".join(f"{KIND_LABELS.get(k, k)} {k} ×{n:,}" for k, n in sorted(o.effects.items()))
    lines.append(_dots("= customers acted 执行客户", f"{o.acted:,}   ({kinds or 'none'})"))
    held = sorted(o.actions_held_back.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
    if held:
        lines.append("  actions held back 未执行的动作:")
        for (kind, reason), count in held:
            zh, en = REASONS.get(reason, (reason, reason))
            lines.append(_dots(f"  {KIND_LABELS.get(kind, kind)} {kind}: {zh} {en}", f"{count:,}"))
    return lines


def _issue_lines(o: Outcome) -> list[str]:
    """Customers the audience was decided on without a usable value: their conditions on
    the field were false. Shown so bad data is seen, not just a smaller audience."""
    if not o.data_issues:
        return []
    parts = []
    for key, counts in sorted(o.data_issues.items()):
        found = [f"{counts[k]:,} {k}" for k in ISSUE_KINDS if counts.get(k)]
        parts.append(f"{key} {', '.join(found)}")
    return [f"  ! no usable value 无可用值: {'; '.join(parts)}"]


def effect_line(e: Effect) -> str:
    r = e.row
    if e.kind == "task":
        # a team-queue task has no assignee: it goes to the queue's people
        who = r["assignee_id"] or f"队列 queue {r.get('queue') or '?'}"
        due = r["due_local"]
        return f"{e.customer_id} 任务→{who} [{r['priority']}] {r['title']} (due {due})"
    if e.kind == "wecom":  # the manager confirms and sends it in WeCom
        return (
            f'{e.customer_id} 企业微信→{r["assignee_id"]} "{r["body"]}" '
            f"(to send by {r['due_local']})"
        )
    if e.kind == "tag":
        return f"{e.customer_id} 标签 {r['op']} {r['tag']}"
    wait = " (waits for allowed hours)" if e.not_before is not None else ""
    if e.kind == "email":
        return f'{e.customer_id} email→{r["recipient"]} "{r["subject"]}"{wait}'
    return f'{e.customer_id} {e.kind}→{r["recipient"]} "{r["body"]}"{wait}'
