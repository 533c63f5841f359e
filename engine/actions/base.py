"""What every action type provides, and the registry they join.

An action type knows three things: its part of the JSON Schema, how to turn a validated
mapping into a frozen action (checking its templates), and how to turn one customer into an
:class:`Effect`: a row for the outbox or the task list, plus its preview.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from engine.actions.compliance import MessageTexts
from engine.core.clock import Clock
from engine.core.deadlines import DEFAULT_WORKDAY_END
from engine.core.diagnostics import PathPart
from engine.core.dictionary import DataDictionary
from engine.core.settings import Settings
from engine.rendering.renderer import Renderer

Path = tuple[PathPart, ...]
Report = Callable[[str, str, Path, str | None, bool], None]


class Action(Protocol):
    kind: ClassVar[str]


@dataclass(frozen=True)
class Subject:
    """One customer being acted on: values (masked in a masked preview) and the context."""

    customer_id: str
    values: Mapping[str, Any]
    context: Mapping[str, Any]


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    dictionary: DataDictionary
    renderer: Renderer
    clock: Clock
    playbook_id: str
    category: str
    # the configured signature and opt-out texts (the contact policy's, reloaded with it)
    texts: MessageTexts
    priority: int = 50
    # when the working day ends (tasks.working_hours): a "3 workdays" deadline falls then
    workday_ends: dt.time = DEFAULT_WORKDAY_END


@dataclass(frozen=True)
class Effect:
    """A rendered action for one customer, ready for a sink."""

    kind: str
    action_index: int
    customer_id: str
    target: str  # "outbox", "tasks" or "tags"
    row: Mapping[str, Any]
    consent_channel: str | None  # checked against consents before it is kept
    # set by the contact policy for messages: when it may go, and when it expires
    not_before: dt.datetime | None = None  # naive UTC; None = at the run's moment
    expires_at: dt.datetime | None = None
    # a queued lower-priority marketing message this one replaces under a frequency cap
    displaces: Queued | None = None

    @property
    def channel(self) -> str | None:
        """The delivery channel of a message (sms, email, webhook); None for tasks and tags."""
        return str(self.row["channel"]) if self.target == "outbox" else None


@dataclass(frozen=True)
class Queued:
    """A marketing message waiting in the outbox (not yet claimed by a dispatcher) that a
    higher-priority message may displace; where it came from, to record why it went."""

    outbox_id: int
    priority: int
    created_at: dt.datetime  # naive UTC: which cap periods count it
    playbook_id: str
    run_id: int
    window: str
    kind: str


@dataclass(frozen=True)
class Skipped:
    """An action that cannot be done for this customer, with the reason."""

    reason: str


@dataclass(frozen=True)
class ParseContext:
    report: Report
    dictionary: DataDictionary
    renderer: Renderer
    settings: Settings
    category: str
    sample: Mapping[str, Any]  # template context with a typed sample customer
    # the configured texts: SMS parts are counted with them, as they will be sent
    texts: MessageTexts
    # the same with every ``context:`` selection empty (a customer without such rows)
    empty_sample: Mapping[str, Any] | None = None


class ActionType(Protocol):
    key: ClassVar[str]
    label: ClassVar[tuple[str, str]]
    # the consent an effect of this type needs (checked per purpose), or None
    consent_channel: ClassVar[str | None]
    # the outbox channel its messages go through (caps, quiet hours), or None
    channel: ClassVar[str | None]

    def schema(self) -> dict[str, Any]: ...

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> Action | None: ...

    def effect(
        self, action: Any, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped: ...

    def reads(self, action: Any, dictionary: DataDictionary) -> set[str]:
        """The customer fields ``effect`` reads besides its templates' (an address, an
        assignee), so the audience selects them."""
        ...


REGISTRY: dict[str, ActionType] = {}


def register(cls: type[ActionType]) -> type[ActionType]:
    """Class decorator: make an action type known under its ``key``."""
    REGISTRY[cls.key] = cls()
    return cls
