"""``explain`` as text for a branch employee and as JSON for machines.

The text reads top to bottom like a trace: each condition with ✓ or ✗, the customer's value
and the threshold, then each policy gate, then the outcome. Field names stand beside their
Chinese labels from the data dictionary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.conditions.explain import Implausible, Malformed, Step, show_value
from engine.core.dictionary import DataDictionary
from engine.execution.explain import Explanation, PlaybookExplanation
from engine.policy.explain import FAIL, PASS
from engine.reports.dryrun import KIND_LABELS, REASONS, effect_json, effect_line

MARKS = {PASS: "✓", FAIL: "✗"}
HEADLINE_FIELDS = ("name", "tier", "branch_id", "manager_id")


def outcome_of(entry: PlaybookExplanation) -> dict[str, Any]:
    """What the customer would get, from the executor's decision."""
    if entry.evaluated_at is None:
        return {"verdict": "not_scheduled", "actions": [], "suppressed": []}
    if entry.held_for_estimate:
        return {"verdict": "held_calendar_estimated", "actions": [], "suppressed": []}
    d = entry.decision
    if d is None:
        return {"verdict": "not_matched", "actions": [], "suppressed": []}
    suppressed = [{"action": kind, "reason": reason} for kind, reason in d.suppressed]
    if d.held_out:
        verdict = "held_out"
    elif d.effects:
        verdict = "acts"
    else:
        verdict = "suppressed"
    return {"verdict": verdict, "actions": [e.kind for e in d.effects], "suppressed": suppressed}


def explanation_json(exp: Explanation, dictionary: DataDictionary) -> dict[str, Any]:
    tz = exp.as_of.tzinfo
    playbooks = []
    for entry in exp.playbooks:
        p = entry.playbook
        item: dict[str, Any] = {
            "id": p.id,
            "title": p.title,
            "trigger": entry.trigger,
            "evaluated_at": entry.evaluated_at.isoformat() if entry.evaluated_at else None,
            "window": entry.window,
            "matched": entry.matched,
            "audience": entry.audience.to_json() if entry.audience else None,
            "evaluators_agree": entry.agrees,
            "gates": [g.to_json() for g in entry.gates],
            "outcome": outcome_of(entry),
            "effects": [effect_json(e, tz) for e in entry.decision.effects]
            if entry.decision
            else [],
        }
        playbooks.append(item)
    return {
        "customer_id": exp.customer_id,
        "as_of": exp.as_of.isoformat(),
        "personal_data_masked": exp.masked,
        "customer": {k: _json_value(v) for k, v in exp.customer.items()},
        "whole_run": exp.whole_run,
        "playbooks": playbooks,
    }


def explanation_text(exp: Explanation, dictionary: DataDictionary) -> str:
    masked = "personal data masked" if exp.masked else "PERSONAL DATA SHOWN"
    lines = [
        f"explain {exp.customer_id} as of {exp.as_of.isoformat(timespec='minutes')}  ({masked})"
    ]
    facts = []
    for key in HEADLINE_FIELDS:
        f = dictionary.fields.get(key)
        if f is not None and key in exp.customer:
            facts.append(f"{f.label} {key}: {show_value(exp.customer[key], f)}")
    if facts:
        lines.append("customer 客户: " + " · ".join(facts))
    for entry in exp.playbooks:
        lines.append("")
        lines += _playbook_text(entry)
    if not exp.playbooks:
        lines.append("no playbooks selected")
    return "\n".join(lines).rstrip() + "\n"


def _playbook_text(entry: PlaybookExplanation) -> list[str]:
    p = entry.playbook
    head = f"{p.id}  {p.title}  {entry.trigger}"
    if entry.evaluated_at is None:
        return [head, "  not scheduled on this day 当日不运行"]
    lines = [
        f"{head}  at {entry.evaluated_at.isoformat(timespec='minutes')}  window {entry.window}"
    ]
    assert entry.audience is not None
    lines.append(f"  audience 目标客户: {_tf(entry.audience.holds)}")
    lines += _step_lines(entry.audience, 2)
    if not entry.agrees:
        lines.append(
            f"  ! the database query says {_tf(entry.matched)}: the SQL audience and the "
            "reference evaluator disagree; the outcome follows the database. Please report this."
        )
    if entry.matched:
        lines.append("  policy 联系策略:")
        for g in entry.gates:
            scope = f"[{KIND_LABELS.get(g.action, g.action)} {g.action}] " if g.action else ""
            mark = MARKS.get(g.verdict, "–")
            lines.append(f"    {mark} {scope}{g.label}: {g.verdict} — {g.detail}")
    lines.append(f"  outcome 结果: {_outcome_text(entry)}")
    if entry.decision is not None:
        lines += [f"    {effect_line(e)}" for e in entry.decision.effects]
    return lines


def _step_lines(step: Step, depth: int) -> list[str]:
    mark = "✓" if step.holds else "✗"
    text = f"{'  ' * depth}{mark} {step.label}: {_tf(step.holds)}"
    if step.detail:
        text += f" — {step.detail}"
    out = [text]
    for child in step.children:
        out += _step_lines(child, depth + 1)
    return out


def _outcome_text(entry: PlaybookExplanation) -> str:
    result = outcome_of(entry)
    verdict = result["verdict"]
    if verdict == "held_calendar_estimated":
        return (
            "would not 不执行: held 暂停 — the workday is an estimate (no official holiday"
            " schedule) and policy calendar.on_estimated_day is hold"
        )
    if verdict == "not_matched":
        return "would not 不执行: not in the audience 不符合目标客户条件"
    if verdict == "held_out":
        return "would not 不执行: held out 对照组 (recorded in the ledger, nothing sent)"
    parts = []
    if result["actions"]:
        kinds = ", ".join(f"{KIND_LABELS.get(k, k)} {k}" for k in result["actions"])
        parts.append(f"would get 将执行: {kinds}")
    for s in result["suppressed"]:
        zh, en = REASONS.get(s["reason"], (s["reason"], s["reason"]))
        what = f"{KIND_LABELS.get(s['action'], s['action'])} {s['action']}" if s["action"] else ""
        prefix = f"would not get {what}" if what else "would not 不执行"
        parts.append(f"{prefix}: {s['reason']} {zh} ({en})")
    return "; ".join(parts)


def _tf(value: bool) -> str:
    return "true" if value else "false"


def _json_value(value: Any) -> Any:
    if isinstance(value, Malformed):
        return {"malformed": str(value.raw)}
    if isinstance(value, Implausible):
        return {"implausible": _json_value(value.value), "why": value.why}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
