"""Acting on event matches: the audience, contact policy, rendering and sink of the shared
:class:`~engine.execution.executor.Executor`, for a whole batch of matches at once.

A batch is acted on with one run per playbook: one audience query, one contact-policy pass
and one ledger transaction for all its matches, each in its own ledger window
(``event:<first event id>``). A customer with several matches in one batch gets one per round,
so the second sees the first one's ledger row (cooldown, open task) exactly as if the events
had come one at a time. The dry-run acts on every match on its own, to report each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from engine.conditions.sql import SqlCompiler
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary
from engine.core.settings import Settings
from engine.events.windows import Match
from engine.execution.executor import Executor, Outcome, by_priority
from engine.execution.sinks import RecordingSink, StoreSink
from engine.playbook.model import Playbook
from engine.policy import ALREADY_DONE as POLICY_ALREADY_DONE

# outcomes recorded per match
ACTED, SUPPRESSED, NOT_IN_AUDIENCE, UNKNOWN_CUSTOMER = (
    "acted",
    "suppressed",
    "not_in_audience",
    "unknown_customer",
)
HELD_OUT = "held_out"  # in the playbook's holdout group: in the ledger, nothing done
ALREADY_DONE = "already_done"  # acted on by an earlier process that stopped before recording
BEFORE_LOAD = "before_load"  # completed before its playbook (version) was loaded: not acted on


def ledger_window(key: str) -> str:
    """The ledger window of a match: ``event:<first event id>`` (hashed when too long for
    the ledger's 40 characters)."""
    window = f"event:{key}"
    if len(window) <= 40:
        return window
    return "event:#" + hashlib.sha256(key.encode()).hexdigest()[:33]


@dataclass
class Handled:
    """One match and what became of it."""

    match: Match
    playbook: Playbook
    # acted / held_out / suppressed / not_in_audience / unknown_customer / already_done /
    # before_load
    result: str
    outcome: Outcome | None = None


class Actor:
    """Acts on matches for one processor; ``mask`` and ``keep_details`` are the dry-run's."""

    def __init__(
        self,
        store: Engine,
        settings: Settings,
        dictionary: DataDictionary,
        executor: Executor,
        *,
        mask: bool = True,
        keep_details: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dictionary = dictionary
        self.executor = executor  # for playbooks loaded without an executor of their own
        self.mask = mask
        self.keep_details = keep_details

    def act_batch(
        self, todo: Sequence[tuple[Playbook, Executor | None, Match]], now: dt.datetime
    ) -> list[Handled]:
        """Act on a batch of matches with one run per playbook (and per round, when one
        customer has several matches): one audience query, one contact-policy pass and one
        ledger transaction for all of them, each match in its own ledger window."""
        clock = Clock.at(_aware(now, self.settings), self.settings.timezone)
        results: dict[int, Handled] = {}
        by_playbook: dict[str, list[tuple[int, Match]]] = {}
        loaded: dict[str, tuple[Playbook, Executor | None]] = {}
        for i, (playbook, executor, m) in enumerate(todo):
            by_playbook.setdefault(playbook.id, []).append((i, m))
            loaded[playbook.id] = (playbook, executor)
        ordered = by_priority([loaded[pid][0] for pid in by_playbook])
        for playbook in ordered:
            for round_ in _rounds(by_playbook[playbook.id]):
                windows = {m.customer_id: ledger_window(m.key) for _i, m in round_}
                outcome = (loaded[playbook.id][1] or self.executor).execute(
                    playbook,
                    clock,
                    StoreSink(self.store),
                    keep_details=True,
                    windows=windows,
                    variables={m.customer_id: self._variables(m) for _i, m in round_},
                )
                decided = {d.customer_id: d for d in outcome.decisions}
                unseen = [m.customer_id for _i, m in round_ if m.customer_id not in decided]
                known = self._known_of(unseen, clock) if unseen else set()
                for i, m in round_:
                    d = decided.get(m.customer_id)
                    if d is None:
                        result = NOT_IN_AUDIENCE if m.customer_id in known else UNKNOWN_CUSTOMER
                    elif d.effects:
                        result = ACTED
                    elif d.held_out:
                        result = HELD_OUT
                    elif d.suppressed == ((None, POLICY_ALREADY_DONE),):
                        # this match's own ledger window is there: a process that stopped
                        # before recording the match had acted on it
                        result = ALREADY_DONE
                    else:
                        result = SUPPRESSED
                    results[i] = Handled(m, playbook, result, outcome)
        return [results[i] for i in range(len(todo))]

    def act_one(self, playbook: Playbook, match: Match, now: dt.datetime) -> Handled:
        """One match on its own: the dry-run, which reports every match separately."""
        clock = Clock.at(_aware(now, self.settings), self.settings.timezone)
        outcome = self.executor.execute(
            playbook,
            clock,
            RecordingSink(mask=self.mask),
            keep_details=self.keep_details,
            customer_ids=[match.customer_id],
            window=ledger_window(match.key),
            variables={match.customer_id: self._variables(match)},
        )
        if outcome.acted:
            result = ACTED
        elif outcome.held_out:
            result = HELD_OUT
        elif outcome.matched_count:
            result = SUPPRESSED
        elif self._known_of([match.customer_id], clock):
            result = NOT_IN_AUDIENCE
        else:
            result = UNKNOWN_CUSTOMER
        return Handled(match, playbook, result, outcome)

    def _variables(self, match: Match) -> dict[str, Any]:
        """Template variables of a match: ``event``, its first event."""
        if match.first is None:
            return {}
        return {"event": match.first.template_values(self.settings.timezone)}

    def _known_of(self, customer_ids: Sequence[str], clock: Clock) -> set[str]:
        """Which of these customers the store knows."""
        compiler = SqlCompiler(self.dictionary, clock)
        with self.store.connect() as conn:
            rows = conn.execute(
                select(compiler.key)
                .select_from(compiler.customers)
                .where(compiler.key_in(customer_ids))
            )
            return {str(r[0]) for r in rows}


def _rounds(matches: list[tuple[int, Match]]) -> list[list[tuple[int, Match]]]:
    """Split matches so no customer appears twice in a round, keeping their order: the
    second match of a customer sees the first one's ledger row (cooldown, open task)."""
    rounds: list[list[tuple[int, Match]]] = []
    seen: list[set[str]] = []
    for item in matches:
        cid = item[1].customer_id
        n = 0
        while n < len(rounds) and cid in seen[n]:
            n += 1
        if n == len(rounds):
            rounds.append([])
            seen.append(set())
        rounds[n].append(item)
        seen[n].add(cid)
    return rounds


def _aware(moment: dt.datetime, settings: Settings) -> dt.datetime:
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC).astimezone(settings.timezone)
