"""The contact policy as typed rules: quiet hours, frequency caps, holdout, task escalation.

One file (``config/policy.yaml``) holds the policy for every playbook, so compliance can read
and change it in one place; :func:`load_policy` checks it and returns a frozen :class:`Policy`
that the executor and the dispatcher share.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.actions.compliance import MESSAGES_SCHEMA, MessageTexts, parse_texts
from engine.core.configfile import ConfigError, ConfigFile, load_config
from engine.core.deadlines import Deadline, parse_deadline
from engine.core.durations import DurationError
from engine.core.i18n import t

CHANNELS = ("sms", "email", "webhook")
WECOM = "wecom"  # not an outbox channel: a manager's task whose sends WeCom limits
PURPOSES = ("marketing", "service")
ROLES = ("manager", "senior_manager", "branch_leader")
# what a workday-only playbook does on a day the holiday calendar only estimates
ON_ESTIMATED_DAY = ("hold", "run")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class AllowedHours:
    """A daily window ``start``–``end`` (local time, end exclusive) when messages may arrive."""

    start: dt.time
    end: dt.time

    def allows(self, moment: dt.datetime) -> bool:
        return self.start <= moment.time() < self.end

    def next_open(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` if inside the window, else the next time the window opens."""
        if self.allows(moment):
            return moment
        day = moment.date() if moment.time() < self.start else moment.date() + dt.timedelta(1)
        return dt.datetime.combine(day, self.start)

    def closes(self, moment: dt.datetime) -> dt.datetime:
        """When the window holding (or next after) ``moment`` closes."""
        return dt.datetime.combine(self.next_open(moment).date(), self.end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Cap:
    """At most ``max`` marketing messages on ``channel`` per customer in any ``per`` period."""

    channel: str
    max: int
    per: dt.timedelta


ONE_WORKDAY = Deadline(workdays=1)
WORKING_HOURS = AllowedHours(dt.time(9), dt.time(17, 30))


@dataclass(frozen=True)
class TaskPolicy:
    """How overdue tasks climb the ladder of roles inside the customer's branch, counted in
    business days unless the policy writes calendar time (so nothing falls due on a Saturday
    night); ``working_hours`` says when a working day ends."""

    escalate_after: Deadline = ONE_WORKDAY
    ladder: tuple[str, ...] = ROLES
    escalation_due_in: Deadline = ONE_WORKDAY
    working_hours: AllowedHours = WORKING_HOURS

    def superior_role(self, role: str) -> str | None:
        if role not in self.ladder:
            return None  # team queues and roles off the ladder stay where they are
        at = self.ladder.index(role)
        return self.ladder[at + 1] if at + 1 < len(self.ladder) else None


@dataclass(frozen=True)
class Policy:
    quiet_hours: Mapping[tuple[str, str], AllowedHours] = field(default_factory=dict)
    caps: tuple[Cap, ...] = ()
    tasks: TaskPolicy = field(default_factory=TaskPolicy)
    source: str | None = None
    # "hold": a playbook whose calendar condition rests on an estimated day does nothing that
    # day and says so; "run": it acts on the estimate (and says so)
    on_estimated_day: str = "hold"
    # the signature and opt-out texts every message carries (section ``messages``)
    texts: MessageTexts = field(default_factory=MessageTexts)
    # what the operator (the carriers) allows at all, per channel and purpose: quiet hours
    # must lie inside, and without quiet hours this window applies
    operator_windows: Mapping[tuple[str, str], AllowedHours] = field(default_factory=dict)
    # WeCom mass messages a customer may receive, across every playbook (channel "wecom")
    wecom_limits: tuple[Cap, ...] = ()

    def hours(self, channel: str, purpose: str) -> AllowedHours | None:
        """When messages of ``channel`` and ``purpose`` may arrive: the quiet-hours window,
        else the operator's, else any time."""
        own = self.quiet_hours.get((channel, purpose))
        return own if own is not None else self.operator_windows.get((channel, purpose))

    def caps_for(self, channel: str, purpose: str) -> tuple[Cap, ...]:
        """Caps that apply: marketing only; service messages are exempt by design."""
        if purpose != "marketing":
            return ()
        return tuple(c for c in self.caps if c.channel == channel)


def held_out(playbook_id: str, customer_id: str, percent: float) -> bool:
    """Stable assignment to the holdout group: the same customer stays in (or out) run after
    run, and different playbooks draw independent groups."""
    if percent <= 0:
        return False
    return holdout_bucket(playbook_id, customer_id) < round(percent * 100)


def holdout_bucket(playbook_id: str, customer_id: str) -> int:
    """The customer's bucket, 0–9999, for this playbook: held out when below percent × 100
    (explain shows the number)."""
    digest = hashlib.sha256(f"{playbook_id}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


# --- the file ------------------------------------------------------------------------------

_DURATION = {"type": "string", "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$"}
_DEADLINE = {"type": "string"}  # a duration or "N workdays": checked by parse_deadline
_CAP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["max", "per"],
    "properties": {"max": {"type": "integer", "minimum": 1}, "per": _DURATION},
}
POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "version": {"const": 1},
        "quiet_hours": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                ch: {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {p: {"type": "string"} for p in PURPOSES},
                }
                for ch in CHANNELS
            },
        },
        "frequency_caps": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                ch: {"oneOf": [_CAP, {"type": "array", "minItems": 1, "items": _CAP}]}
                for ch in CHANNELS
            },
        },
        "calendar": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"on_estimated_day": {"enum": list(ON_ESTIMATED_DAY)}},
        },
        "messages": MESSAGES_SCHEMA,
        "tasks": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "escalate_after": _DEADLINE,
                "escalation_due_in": _DEADLINE,
                "working_hours": {"type": "string"},
                "escalation_ladder": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {"enum": list(ROLES)},
                },
            },
        },
    },
}


def default_policy() -> Policy:
    """What applies when a deployment has no ``config/policy.yaml``: the conservative policy
    the engine ships with (a test keeps the shipped file equal to it)."""
    marketing_day = AllowedHours(dt.time(8), dt.time(21))
    day = dt.timedelta(days=1)
    return Policy(
        quiet_hours={("sms", "marketing"): marketing_day, ("email", "marketing"): marketing_day},
        caps=(Cap("sms", 1, day), Cap("sms", 4, 30 * day), Cap("email", 2, 7 * day)),
        tasks=TaskPolicy(),
        source=None,
        texts=MessageTexts(),
        operator_windows={("sms", "marketing"): marketing_day},
        wecom_limits=(Cap(WECOM, 1, day), Cap(WECOM, 4, 30 * day)),
    )


def load_policy(path: Path) -> Policy:
    """Read and check the contact policy; a mistake is one error with file:line:col.
    Without the file, :func:`default_policy` applies."""
    if not path.exists():
        return default_policy()
    cfg = load_config(path, POLICY_SCHEMA, "E0401")
    default = default_policy()
    operator = _operator_windows(cfg, default.operator_windows)
    return Policy(
        quiet_hours=_quiet_hours(cfg, operator),
        caps=_caps(cfg),
        tasks=_tasks(cfg),
        source=cfg.path,
        on_estimated_day=(cfg.data.get("calendar") or {}).get("on_estimated_day", "hold"),
        texts=parse_texts(cfg),
        operator_windows=operator,
        wecom_limits=_wecom_limits(cfg, default.wecom_limits),
    )


def _operator_windows(
    cfg: ConfigFile, default: Mapping[tuple[str, str], AllowedHours]
) -> dict[tuple[str, str], AllowedHours]:
    """The built-in windows (the carriers' 08:00-21:00 for marketing SMS), replaced per
    channel where ``messages.<channel>.operator_window`` is written (``{}``: none)."""
    out = dict(default)
    for channel, spec in (cfg.data.get("messages") or {}).items():
        if not isinstance(spec, dict) or "operator_window" not in spec:
            continue
        out = {key: hours for key, hours in out.items() if key[0] != channel}
        for purpose, text in (spec["operator_window"] or {}).items():
            at = ("messages", channel, "operator_window", purpose)
            out[(channel, purpose)] = parse_hours(text, cfg, at)
    return out


def _wecom_limits(cfg: ConfigFile, default: tuple[Cap, ...]) -> tuple[Cap, ...]:
    spec = ((cfg.data.get("messages") or {}).get("wecom") or {}).get("per_customer")
    if spec is None:
        return default
    at = ("messages", "wecom", "per_customer")
    return tuple(
        Cap(WECOM, int(item["max"]), cfg.duration(item["per"], (*at, i, "per")))
        for i, item in enumerate(spec)
    )


def _quiet_hours(
    cfg: ConfigFile, operator: Mapping[tuple[str, str], AllowedHours]
) -> dict[tuple[str, str], AllowedHours]:
    """Quiet hours per channel and purpose; a window reaching outside what the operator
    allows is an error at the window (messages would be refused or reported there)."""
    out = {}
    for channel, per_purpose in (cfg.data.get("quiet_hours") or {}).items():
        for purpose, text in per_purpose.items():
            at = ("quiet_hours", channel, purpose)
            hours = out[(channel, purpose)] = parse_hours(text, cfg, at)
            allowed = operator.get((channel, purpose))
            if allowed is not None and (hours.start < allowed.start or hours.end > allowed.end):
                words = {"window": str(hours), "channel": channel, "allowed": str(allowed)}
                raise cfg.error(
                    at,
                    t("E0422", purpose=purpose, **words),
                    t("E0422.hint", allowed=str(allowed), channel=channel),
                    code="E0422",
                )
    return out


def parse_hours(text: str, cfg: ConfigFile, path: tuple[str | int, ...]) -> AllowedHours:
    match = _HOURS.match(text)
    hint = t("config.window.hint")
    if not match:
        raise cfg.error(path, t("config.window", value=text), hint)
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = dt.time(h1, m1), dt.time(h2, m2) if (h2, m2) != (24, 0) else dt.time.max
    except ValueError as exc:
        raise cfg.error(path, t("config.window", value=text), hint) from exc
    if start >= end:
        raise cfg.error(path, t("config.window.order", value=text), hint)
    return AllowedHours(start, end)


def _caps(cfg: ConfigFile) -> tuple[Cap, ...]:
    caps = []
    for channel, spec in (cfg.data.get("frequency_caps") or {}).items():
        items = spec if isinstance(spec, list) else [spec]
        for i, item in enumerate(items):
            path: tuple[str | int, ...] = ("frequency_caps", channel)
            if isinstance(spec, list):
                path = (*path, i)
            caps.append(Cap(channel, int(item["max"]), cfg.duration(item["per"], (*path, "per"))))
    return tuple(caps)


def _tasks(cfg: ConfigFile) -> TaskPolicy:
    raw = cfg.data.get("tasks") or {}
    default = TaskPolicy()

    def deadline(key: str, fallback: Deadline) -> Deadline:
        if key not in raw:
            return fallback
        try:
            return parse_deadline(raw[key])
        except DurationError as exc:
            raise cfg.error(("tasks", key), str(exc)) from exc

    hours = default.working_hours
    if "working_hours" in raw:
        hours = parse_hours(raw["working_hours"], cfg, ("tasks", "working_hours"))
    return TaskPolicy(
        escalate_after=deadline("escalate_after", default.escalate_after),
        ladder=tuple(raw.get("escalation_ladder", default.ladder)),
        escalation_due_in=deadline("escalation_due_in", default.escalation_due_in),
        working_hours=hours,
    )


__all__ = [
    "AllowedHours",
    "Cap",
    "ConfigError",
    "MessageTexts",
    "Policy",
    "TaskPolicy",
    "default_policy",
    "held_out",
    "load_policy",
]
