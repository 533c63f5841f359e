"""The typed, frozen playbook the rest of the engine works with.

Raw YAML never travels past validation: :mod:`engine.playbook.validation` turns it into these
objects
or into diagnostics, and everything downstream trusts them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from engine.actions.base import Action
from engine.conditions.ast import Condition
from engine.conditions.context import Selection
from engine.conditions.goals import Goal
from engine.triggers.event import EventTrigger
from engine.triggers.schedule import Schedule

Category = Literal["marketing", "service"]
QuietHours = Literal["wait", "expire"]


@dataclass(frozen=True)
class Limits:
    once_per_customer: dt.timedelta | None = None  # cooldown across runs
    max_per_run: int | None = None
    # a message outside its channel's allowed hours waits for the next window, or expires
    quiet_hours: QuietHours = "wait"


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    owner: str
    enabled: bool
    category: Category
    priority: int
    trigger: Schedule | EventTrigger  # a cron schedule, or events (engine/events/)
    audience: Condition
    actions: tuple[Action, ...]
    limits: Limits
    description: str
    source: str  # file it was loaded from
    content_hash: str  # sha256 of the file's text, recorded with every run
    holdout_percent: float = 0  # stable share of the audience held out for measurement
    goal: Goal | None = None  # what success means per customer, for the effect report
    # related rows the templates may name (``context:``), read per batch
    context: tuple[Selection, ...] = ()
    # with governance on: the hash of the live approved version this file was found to be
    # (engine/governance/gate.py), recorded with every run; None with governance off
    version_hash: str | None = None


def cron_of(playbook: Playbook) -> str | None:
    """The cron of a scheduled playbook; None for a playbook started some other way."""
    return playbook.trigger.cron if isinstance(playbook.trigger, Schedule) else None
