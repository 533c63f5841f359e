"""Counts, sequences and absence within a time window, per customer.

durable-rules tells us which single events match a step (see :mod:`engine.events.rules`);
this module remembers them per customer and decides when a pattern completes:

- ``single``: the first step's event is the match.
- ``count``: N matching events whose times span at most the window; they are used up by the
  match, like durable-rules consumes events, so a burst of 4 fires once, a burst of 6 twice.
- ``then``: a first event and a follow-up at or after it, within the window; both are used up.
- ``then_not``: a first event, and when the window has closed (``tick``) no follow-up at or
  after it within the window. Follow-ups are kept even when they arrive before their first
  event, so arrival order does not matter, only the events' own times.

Matches are keyed by the first event's id: the same events never make two matches, and the
processor records the key so a replay after a restart does not act twice.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

from engine.triggers.event import EventTrigger
from engine.triggers.event_model import Event


@dataclass(frozen=True)
class Match:
    playbook_id: str
    customer_id: str
    key: str  # the first event's id
    events: tuple[str, ...]  # ids of the events that made it
    at: dt.datetime  # when it completed (naive UTC): the last event's time, or the deadline
    completed_by: str | None  # the event that completed it; None when a window closed
    first: Event | None = field(default=None, compare=False)  # for templates: ``event``


@dataclass
class _Customer:
    firsts: list[tuple[float, str, Event]] = field(default_factory=list)  # sorted by (t, id)
    seconds: list[tuple[float, str, Event]] = field(default_factory=list)


class Window:
    """The pattern state of one event playbook, for every customer it has seen."""

    def __init__(self, playbook_id: str, trigger: EventTrigger) -> None:
        self.playbook_id = playbook_id
        self.trigger = trigger
        self.span = trigger.window.total_seconds()
        self._customers: dict[str, _Customer] = {}

    def __len__(self) -> int:
        """Events held in memory (bounded by the window; see :meth:`prune`)."""
        return sum(len(c.firsts) + len(c.seconds) for c in self._customers.values())

    def add(self, event: Event, first: bool, second: bool) -> list[Match]:
        """``event`` matched the first step, the follow-up step, or both."""
        kind = self.trigger.kind
        if kind == "single":
            return [self._match(event, (event,), event.occurred_at, event.id)] if first else []
        state = self._customers.setdefault(event.customer_id, _Customer())
        if kind == "count":
            return self._count(state, event) if first else []
        if kind == "then":
            if second:
                found = self._pair_for_second(state, event)
                if found:
                    return found
            if first:
                return self._pair_for_first(state, event)
            return []
        # then_not: both kinds are remembered; tick() decides
        if first:
            bisect.insort(state.firsts, (event.t, event.id, event))
        if second:
            bisect.insort(state.seconds, (event.t, event.id, event))
        return []

    def tick(self, now: dt.datetime) -> list[Match]:
        """Absence windows that have closed by ``now`` (naive UTC) and saw no follow-up."""
        if self.trigger.kind != "then_not":
            return []
        assert self.trigger.follow is not None
        follow = self.trigger.follow
        limit = _t(now) - self.span
        matches = []
        for cid, state in self._customers.items():
            while state.firsts and state.firsts[0][0] <= limit:
                t, _id, first = state.firsts.pop(0)
                lo = bisect.bisect_left(state.seconds, (t,))
                blocked = any(
                    s.id != first.id and follow.step.holds(s.values(), first.values())
                    for st, _sid, s in state.seconds[lo:]
                    if st <= t + self.span
                )
                if not blocked:
                    deadline = first.occurred_at + follow.within
                    matches.append(
                        Match(self.playbook_id, cid, first.id, (first.id,), deadline, None, first)
                    )
        return matches

    def prune(self, now: dt.datetime) -> None:
        """Forget what can no longer take part in a match (events older than two windows:
        one for the pattern, one for follow-ups that arrive before their first event)."""
        oldest = _t(now) - 2 * self.span
        empty = []
        for cid, state in self._customers.items():
            if self.trigger.kind != "then_not":
                state.firsts = [e for e in state.firsts if e[0] >= oldest]
            state.seconds = [e for e in state.seconds if e[0] >= oldest]
            if not state.firsts and not state.seconds:
                empty.append(cid)
        for cid in empty:
            del self._customers[cid]

    # --- patterns ----------------------------------------------------------------------

    def _match(
        self, first: Event, events: tuple[Event, ...], at: dt.datetime, by: str | None
    ) -> Match:
        ids = tuple(e.id for e in events)
        return Match(self.playbook_id, first.customer_id, first.id, ids, at, by, first)

    def _count(self, state: _Customer, event: Event) -> list[Match]:
        assert self.trigger.count is not None
        need = self.trigger.count.at_least
        if any(e[1] == event.id for e in state.firsts):
            return []
        bisect.insort(state.firsts, (event.t, event.id, event))
        items = state.firsts
        for i in range(len(items) - need + 1):
            if items[i + need - 1][0] - items[i][0] <= self.span:
                group = items[i : i + need]
                del items[i : i + need]
                events = tuple(e[2] for e in group)
                return [self._match(events[0], events, events[-1].occurred_at, event.id)]
        return []

    def _pair_for_second(self, state: _Customer, second: Event) -> list[Match]:
        assert self.trigger.follow is not None
        step = self.trigger.follow.step
        for i, (t, _id, first) in enumerate(state.firsts):
            if (
                t <= second.t <= t + self.span
                and first.id != second.id
                and step.holds(second.values(), first.values())
            ):
                del state.firsts[i]
                return [self._match(first, (first, second), second.occurred_at, second.id)]
        bisect.insort(state.seconds, (second.t, second.id, second))
        return []

    def _pair_for_first(self, state: _Customer, first: Event) -> list[Match]:
        assert self.trigger.follow is not None
        step = self.trigger.follow.step
        for i, (t, _id, second) in enumerate(state.seconds):
            if (
                first.t <= t <= first.t + self.span
                and first.id != second.id
                and step.holds(second.values(), first.values())
            ):
                del state.seconds[i]
                at = max(first.occurred_at, second.occurred_at)
                return [self._match(first, (first, second), at, second.id)]
        bisect.insort(state.firsts, (first.t, first.id, first))
        return []


def _t(moment: dt.datetime) -> float:
    return (moment - dt.datetime(1970, 1, 1)).total_seconds()
