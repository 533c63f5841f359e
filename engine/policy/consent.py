"""Which consent an action needs before it may reach a customer.

Messages name their channel (an SMS needs SMS consent, an e-mail e-mail consent), checked for
the playbook's purpose. A task names no channel, yet a manager's call is contact by phone: a
customer who withdrew phone marketing consent must not get a marketing call. So a task of kind
``call`` or ``visit`` in a marketing playbook needs phone consent for marketing (a visit is
booked by phone, and an unasked sales visit intrudes more than a call). ``follow_up`` is work
inside the bank and needs none. A service playbook's tasks are not checked: a complaint past
its deadline, a suspicious withdrawal or a maturing product is the customer's own matter, which
the bank must take up, and a person on the phone can hear a "no" (a service SMS, sent by a
machine, is checked against service consent). Dry-run and run both decide through here.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.actions import REGISTRY
from engine.actions.base import Action, Effect
from engine.actions.task import TaskAction

PHONE = "phone"
# task kinds that reach the customer by phone (a visit is arranged by a call)
PHONE_TASK_KINDS = frozenset({"call", "visit"})


def task_consent(task_kind: str, category: str) -> str | None:
    """The consent channel a task of ``task_kind`` needs in a playbook of ``category``."""
    return PHONE if category == "marketing" and task_kind in PHONE_TASK_KINDS else None


def effect_consent(effect: Effect, category: str) -> str | None:
    """The consent channel ``effect`` needs, or None."""
    if effect.target == "tasks":
        return task_consent(str(effect.row["kind"]), category)
    return effect.consent_channel


def consent_channels(actions: Iterable[Action], category: str) -> set[str]:
    """Every consent channel a playbook's actions may need: what a batch reads up front."""
    found: set[str] = set()
    for action in actions:
        if isinstance(action, TaskAction):
            channel = task_consent(action.task_kind, category)
        else:
            channel = REGISTRY[action.kind].consent_channel
        if channel is not None:
            found.add(channel)
    return found
