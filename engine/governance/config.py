"""``config/governance.yaml``: whether governance is on, who may approve what, when a second
approver is needed, the urgent fast path, and how many people a pause or rollback takes.

Rules live in configuration, not code, because banks differ in them (and change them after an
audit). The file is checked like the contact policy: a mistake is one located error in the
reader's language (E0630).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.configfile import load_config
from engine.governance.errors import refuse

CODE = "E0630"
CATEGORIES = ("marketing", "service")
# The console's roles (engine/console/roles.py, a layer above; a test keeps them equal).
ROLES = ("editor", "approver", "manager", "leader", "auditor", "admin")
ACTIONS = ("pause", "resume", "rollback")

_WHO = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "roles": {"type": "array", "uniqueItems": True, "items": {"enum": list(ROLES)}},
        "users": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
    },
}
_PEOPLE = {"type": "integer", "minimum": 1, "maximum": 5}
GOVERNANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "enabled"],
    "properties": {
        "version": {"const": 1},
        "enabled": {"type": "boolean"},
        "approvers": {
            "type": "object",
            "additionalProperties": False,
            "properties": {c: _WHO for c in CATEGORIES},
        },
        "second_approver": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "audience_over": {"type": "integer", "minimum": 0},
                "sms_per_day_over": {"type": "integer", "minimum": 0},
            },
        },
        "fast_path": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "playbooks": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
                "categories": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"enum": list(CATEGORIES)},
                },
            },
        },
        "people": {
            "type": "object",
            "additionalProperties": False,
            "properties": {a: _PEOPLE for a in ACTIONS},
        },
    },
}


@dataclass(frozen=True)
class Who:
    """Who may approve one category: any account with one of ``roles``, or one of ``users``
    (console account names, or ``cli:NAME`` for a person without one)."""

    roles: frozenset[str] = frozenset({"approver"})
    users: frozenset[str] = frozenset()

    def admits(self, name: str, role: str | None) -> bool:
        return name in self.users or (role is not None and role in self.roles)


@dataclass(frozen=True)
class GovernanceSettings:
    enabled: bool = False
    approvers: Mapping[str, Who] = field(default_factory=lambda: {c: Who() for c in CATEGORIES})
    audience_over: int = 10_000
    sms_per_day_over: int | None = None
    # urgent playbooks (by id) take one approver whatever the estimate, if their category is
    # one of fast_categories
    fast_playbooks: frozenset[str] = frozenset()
    fast_categories: frozenset[str] = frozenset({"service"})
    # people a pause, resume or rollback takes (the first asks, the others confirm)
    people: Mapping[str, int] = field(
        default_factory=lambda: {"pause": 1, "resume": 1, "rollback": 2}
    )
    source: str | None = None

    def approvals_needed(
        self, playbook_id: str, category: str, audience: int | None, sms_per_day: int | None
    ) -> int:
        """One approver, two above the audience or SMS-volume threshold, one again for an
        urgent playbook on the fast path."""
        if playbook_id in self.fast_playbooks and category in self.fast_categories:
            return 1
        if audience is not None and audience > self.audience_over:
            return 2
        over = self.sms_per_day_over
        if over is not None and sms_per_day is not None and sms_per_day > over:
            return 2
        return 1


def load_governance(path: Path, *, required: bool) -> GovernanceSettings:
    """The settings in ``path``. Without the file governance is off (today's behaviour) unless
    ``required`` (the ``playbook`` commands), which refuse with E0631."""
    if not path.exists():
        if required:
            raise refuse("no_file", str(path))
        return GovernanceSettings()
    cfg = load_config(path, GOVERNANCE_SCHEMA, CODE)
    data = cfg.data
    default = GovernanceSettings()
    approvers = dict(default.approvers)
    for category, raw in (data.get("approvers") or {}).items():
        approvers[category] = Who(
            frozenset(raw.get("roles", ())), frozenset(str(u) for u in raw.get("users", ()))
        )
    second = data.get("second_approver") or {}
    fast = data.get("fast_path") or {}
    return GovernanceSettings(
        enabled=bool(data["enabled"]),
        approvers=approvers,
        audience_over=int(second.get("audience_over", default.audience_over)),
        sms_per_day_over=(
            int(second["sms_per_day_over"]) if "sms_per_day_over" in second else None
        ),
        fast_playbooks=frozenset(str(p) for p in fast.get("playbooks", ())),
        fast_categories=frozenset(fast.get("categories", default.fast_categories)),
        people={**default.people, **(data.get("people") or {})},
        source=cfg.path,
    )
