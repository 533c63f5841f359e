"""The contact policy: who may be contacted, on which channel, when, and how often.

``rules`` holds the typed policy read from ``config/policy.yaml`` (quiet hours, frequency
caps, holdout, task escalation); ``gate`` holds the set-based reads that apply it to a batch
of matched customers. Every "no" carries a stable reason so dry-run and reports show the
funnel.
"""

from __future__ import annotations

from engine.policy.gate import (
    ALREADY_DONE,
    COOLDOWN,
    HELD_OUT,
    MAX_PER_RUN,
    OPEN_TASK,
    WECOM_LIMIT,
    already_done,
    consenting,
    done_in_windows,
    frequency_cap,
    in_cooldown,
    marketing_contacts,
    no_consent,
    open_tasks,
    quiet_hours,
)
from engine.policy.rules import (
    AllowedHours,
    Cap,
    ConfigError,
    Policy,
    TaskPolicy,
    default_policy,
    held_out,
    load_policy,
)

__all__ = [
    "ALREADY_DONE",
    "COOLDOWN",
    "HELD_OUT",
    "MAX_PER_RUN",
    "OPEN_TASK",
    "WECOM_LIMIT",
    "AllowedHours",
    "Cap",
    "ConfigError",
    "Policy",
    "TaskPolicy",
    "already_done",
    "consenting",
    "default_policy",
    "done_in_windows",
    "frequency_cap",
    "held_out",
    "in_cooldown",
    "load_policy",
    "marketing_contacts",
    "no_consent",
    "open_tasks",
    "quiet_hours",
]
