"""The contact policy for one customer and one playbook, gate by gate, with its evidence.

Each gate's verdict comes from the same reads the batch gate uses (:mod:`engine.policy.gate`,
:func:`engine.policy.rules.held_out`), asked for this one customer; beside it stands what a
person needs to believe it: the last send, the counted messages, the consent row, the open
task. The outcome itself (what the customer would get) is not decided here: the caller takes
it from the executor's own decision, so explain and dry-run cannot part ways.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from engine.actions import REGISTRY
from engine.core.clock import Clock
from engine.core.durations import format_duration
from engine.playbook.model import Playbook
from engine.policy.gate import (
    WECOM_KIND,
    already_done,
    consenting,
    in_cooldown,
    marketing_contacts,
    open_tasks,
    wecom_messages,
)
from engine.policy.rules import Policy, held_out, holdout_bucket
from engine.store.models import action_ledger, consents

PASS, FAIL, SKIP = "pass", "fail", "n/a"


@dataclass(frozen=True)
class Gate:
    """One check of the policy. ``action`` is the action kind it applies to (None: all)."""

    name: str  # already_done / cooldown / holdout / max_per_run / consent / open_task / …
    label: str  # Chinese and English
    verdict: str  # pass / fail / n/a
    detail: str
    action: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "verdict": self.verdict,
            "detail": self.detail,
            "action": self.action,
        }


def customer_gates(
    conn: Connection,
    policy: Policy,
    clock: Clock,
    playbook: Playbook,
    customer_id: str,
    window: str,
    planned: Counter[tuple[str, str]],
    reached: bool,
) -> list[Gate]:
    """Every gate of ``playbook`` for one customer, in the executor's order. ``planned`` holds
    the marketing messages earlier playbooks of the same preview would send (frequency caps
    count them); ``reached``: the executor found something left to do for this customer after
    every other gate (acted on or held out), so the holdout bucket decides."""
    ids = [customer_id]
    gates: list[Gate] = []
    done = customer_id in already_done(conn, playbook.id, window, ids)
    gates.append(
        Gate(
            "already_done",
            "本时段已执行 already done in this window",
            FAIL if done else PASS,
            f"window {window}: " + ("acted on by an earlier run" if done else "not yet acted on"),
        )
    )
    gates.append(_cooldown(conn, clock, playbook, customer_id))
    for index, action in enumerate(playbook.actions):
        gates += _action_gates(conn, policy, clock, playbook, action.kind, index, customer_id)
        gates += _message_gates(policy, clock, playbook, action.kind, customer_id, conn, planned)
        if action.kind == WECOM_KIND:
            gates += _wecom_gates(policy, clock, customer_id, conn, planned)
    gates.append(holdout_gate(playbook, customer_id, reached))
    return gates


def holdout_gate(playbook: Playbook, customer_id: str, reached: bool) -> Gate:
    """The last gate: only a customer who would be acted on is tested against the bucket, so
    the holdout group is a random share of the would-be treated."""
    percent = playbook.holdout_percent
    if percent <= 0:
        return Gate("holdout", "对照组 holdout", SKIP, "no holdout group")
    bucket = holdout_bucket(playbook.id, customer_id)
    rule = f"holdout_percent {percent:g}: bucket {bucket} of 10000, held out below "
    rule += str(round(percent * 100))
    if not reached:
        return Gate("holdout", "对照组 holdout", SKIP, f"{rule}; not reached: nothing left to do")
    out = held_out(playbook.id, customer_id, percent)
    return Gate("holdout", "对照组 holdout", FAIL if out else PASS, rule)


def _cooldown(conn: Connection, clock: Clock, playbook: Playbook, customer_id: str) -> Gate:
    last = conn.execute(
        select(func.max(action_ledger.c.created_at)).where(
            action_ledger.c.playbook_id == playbook.id,
            action_ledger.c.customer_id == customer_id,
        )
    ).scalar_one_or_none()
    last_text = f"last acted {local(last, clock)}" if last is not None else "never acted on"
    span = playbook.limits.once_per_customer
    if not span:
        return Gate("cooldown", "冷静期 cooldown", SKIP, f"no once_per_customer; {last_text}")
    since = clock.utc_naive() - span
    cooling = customer_id in in_cooldown(conn, playbook.id, [customer_id], since)
    return Gate(
        "cooldown",
        "冷静期 cooldown",
        FAIL if cooling else PASS,
        f"once_per_customer {format_duration(span)}: {last_text}; "
        f"{'on or after' if cooling else 'none since'} {local(since, clock)}",
    )


def _action_gates(
    conn: Connection,
    policy: Policy,
    clock: Clock,
    playbook: Playbook,
    kind: str,
    index: int,
    customer_id: str,
) -> list[Gate]:
    gates: list[Gate] = []
    channel = REGISTRY[kind].consent_channel
    if channel is not None:
        ok = customer_id in consenting(conn, channel, playbook.category, [customer_id], clock.now)
        row = conn.execute(
            select(consents.c.given_at, consents.c.withdrawn_at).where(
                consents.c.customer_id == customer_id,
                consents.c.channel == channel,
                consents.c.purpose == playbook.category,
            )
        ).first()
        if row is None:
            evidence = "no consent on record"
        else:
            given, withdrawn = row
            evidence = "never given" if given is None else f"given {_naive(given)}"
            if given is not None and given > clock.now:
                evidence += " (not yet in force)"
            if withdrawn is not None:
                evidence += f", withdrawn {_naive(withdrawn)}"
        gates.append(
            Gate(
                "consent",
                f"授权 consent {channel}/{playbook.category}",
                PASS if ok else FAIL,
                evidence,
                kind,
            )
        )
    if kind in ("task", WECOM_KIND):
        action = playbook.actions[index]
        task_kind = str(getattr(action, "task_kind", WECOM_KIND))
        reason = str(getattr(action, "reason", None) or playbook.id)
        found = (customer_id, task_kind, reason) in open_tasks(conn, [customer_id])
        gates.append(
            Gate(
                "open_task",
                "未完成任务 open task",
                FAIL if found else PASS,
                f"{'an' if found else 'no'} open {task_kind} task with reason {reason}",
                kind,
            )
        )
    return gates


def _message_gates(
    policy: Policy,
    clock: Clock,
    playbook: Playbook,
    kind: str,
    customer_id: str,
    conn: Connection,
    planned: Counter[tuple[str, str]],
) -> list[Gate]:
    channel = REGISTRY[kind].channel
    if channel is None:
        return []
    gates: list[Gate] = []
    caps = policy.caps_for(channel, playbook.category)
    if not caps:
        gates.append(
            Gate(
                "frequency_cap",
                f"频次上限 frequency cap {channel}",
                SKIP,
                f"none for {playbook.category} {channel}",
                kind,
            )
        )
    for cap in caps:
        since = clock.utc_naive() - cap.per
        sent = marketing_contacts(conn, channel, [customer_id], since)[customer_id]
        earlier = planned[(customer_id, channel)]
        total = sent + earlier
        gates.append(
            Gate(
                "frequency_cap",
                f"频次上限 frequency cap {channel} {cap.max}/{format_duration(cap.per)}",
                FAIL if total >= cap.max else PASS,
                f"{sent} marketing {channel} queued or sent since {local(since, clock)}"
                + (f" + {earlier} planned by earlier playbooks" if earlier else "")
                + f"; at most {cap.max}",
                kind,
            )
        )
    hours = policy.hours(channel, playbook.category)
    if hours is None:
        gates.append(
            Gate("quiet_hours", f"免打扰 quiet hours {channel}", SKIP, "no allowed hours", kind)
        )
    else:
        inside = hours.allows(clock.now)
        mode = playbook.limits.quiet_hours
        if inside:
            detail = f"{clock.now:%H:%M} is inside {hours}"
        elif mode == "expire":
            detail = f"{clock.now:%H:%M} is outside {hours}; quiet_hours: expire"
        else:
            opens = hours.next_open(clock.now)
            detail = f"{clock.now:%H:%M} is outside {hours}; waits until {opens:%Y-%m-%d %H:%M}"
        gates.append(
            Gate(
                "quiet_hours",
                f"免打扰 quiet hours {channel}",
                PASS if inside or mode != "expire" else FAIL,
                detail,
                kind,
            )
        )
    return gates


def _wecom_gates(
    policy: Policy,
    clock: Clock,
    customer_id: str,
    conn: Connection,
    planned: Counter[tuple[str, str]],
) -> list[Gate]:
    """One gate per WeCom limit: the customer's messages waiting or sent in its period, plus
    those earlier playbooks of the same preview would add."""
    gates = []
    for cap in policy.wecom_limits:
        since = clock.utc_naive() - cap.per
        counted = wecom_messages(conn, [customer_id], since)[customer_id]
        earlier = planned[(customer_id, WECOM_KIND)]
        gates.append(
            Gate(
                "wecom_limit",
                f"企业微信上限 WeCom limit {cap.max}/{format_duration(cap.per)}",
                FAIL if counted + earlier >= cap.max else PASS,
                f"{counted} WeCom message(s) waiting or sent since {local(since, clock)}"
                + (f" + {earlier} planned by earlier playbooks" if earlier else "")
                + f"; at most {cap.max}",
                WECOM_KIND,
            )
        )
    return gates


def local(utc_naive: dt.datetime, clock: Clock) -> str:
    """An engine timestamp (naive UTC) in the bank's local time."""
    tz = clock.as_of.tzinfo
    return utc_naive.replace(tzinfo=dt.UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _naive(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else str(value)
