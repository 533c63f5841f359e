"""The entry point for event playbooks: events in, matches out, actions through the same
Executor (audience, contact policy, rendering, sink) as scheduled playbooks.

    processor = EventProcessor(store, settings, dictionary, renderer)
    processor.restore(playbooks, now)   # at start: event playbooks, windows rebuilt from the store
    processor.reload(playbooks, now)    # when playbook files change (hot reload)
    report = processor.process(items, now)   # a batch of decoded JSON events
    processor.tick(now)                 # close absence windows; call every minute or so

Exactly once: an event id is stored once (a duplicate is counted, not processed); every match
is keyed by its first event and recorded in ``event_matches`` after it was handled, and the
ledger window is ``event:<that id>``, so a replay, a retry or a second daemon acts once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from engine.core.clock import as_utc_naive
from engine.core.dictionary import DataDictionary
from engine.core.settings import Settings
from engine.events import store as event_store
from engine.events.acting import (
    ACTED,
    ALREADY_DONE,
    BEFORE_LOAD,
    NOT_IN_AUDIENCE,
    SUPPRESSED,
    UNKNOWN_CUSTOMER,
    Actor,
    Handled,
    ledger_window,
)
from engine.events.rules import SESSION, RulesHost
from engine.events.windows import Match, Window
from engine.execution.executor import Executor
from engine.playbook.model import Playbook
from engine.policy import Policy
from engine.rendering.renderer import Renderer
from engine.store.models import event_matches
from engine.triggers.event import EventTrigger
from engine.triggers.event_model import Event, Rejected, read_event

__all__ = [
    "ACTED",
    "ALREADY_DONE",
    "BEFORE_LOAD",
    "NOT_IN_AUDIENCE",
    "SUPPRESSED",
    "UNKNOWN_CUSTOMER",
    "EventProcessor",
    "Handled",
    "Report",
    "ledger_window",
]

# a restart replays at least a day of occurrences, and every event that *arrived* in the last
# day whatever its own time: an event stored just before a crash (a backfill of last month
# included) and never acted on is acted on after it
MIN_REPLAY = dt.timedelta(days=1)
PRUNE_EVERY = dt.timedelta(minutes=1)


@dataclass
class Report:
    """What one batch did: counts for people, details for dry-run."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)

    def merge(self, other: Report) -> None:
        self.read += other.read
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.handled += other.handled

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for _source, r in self.rejected:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
        results: dict[str, int] = {}
        for h in self.handled:
            results[h.result] = results.get(h.result, 0) + 1
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejected_by_reason": reasons,
            "matches": results,
        }


@dataclass
class _Compiled:
    playbook: Playbook
    trigger: EventTrigger
    window: Window
    first: str  # ruleset names in the host
    second: str | None
    second_types: frozenset[str]
    executor: Executor | None = None  # the loaded version's; None: the processor's own


class EventProcessor:
    """Event playbooks of one process. Not thread-safe: callers serialise (the HTTP server
    holds a lock; the daemon calls from its one loop).

    ``persist=False`` is the dry-run: nothing is written (events, matches, ledger), duplicates
    are found in memory and actions go to a :class:`RecordingSink`.
    """

    def __init__(
        self,
        store: Engine,
        settings: Settings,
        dictionary: DataDictionary,
        renderer: Renderer,
        *,
        persist: bool = True,
        mask: bool = True,
        keep_details: bool = False,
        policy: Policy | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dictionary = dictionary
        self.persist = persist
        self.mask = mask
        self.keep_details = keep_details
        self.executor = Executor(store, settings, dictionary, renderer, policy)
        self.actor = Actor(
            store, settings, dictionary, self.executor, mask=mask, keep_details=keep_details
        )
        self.host = RulesHost()
        self._compiled: dict[str, _Compiled] = {}
        self._by_type: dict[str, list[_Compiled]] = {}
        self._seen: set[str] = set()  # dry-run dedup
        self._pruned_at: dt.datetime | None = None
        self.replayed_to = 0  # the last seq a replay read
        self.replayed_after: list[int] = []  # the seqs it read after ``after_seq``
        self.replay_handled: list[Handled] = []  # what the last replay handled

    # --- playbooks ---------------------------------------------------------------------

    @property
    def playbooks(self) -> list[Playbook]:
        return [c.playbook for c in self._compiled.values()]

    def restore(
        self,
        playbooks: Sequence[Playbook],
        now: dt.datetime,
        *,
        after_seq: int | None = None,
        executors: Mapping[str, Executor] | None = None,
    ) -> int:
        """Start: load the event playbooks and replay stored events within the longest window
        (twice over, for follow-ups that came before their first event), so partial patterns
        and pending absences survive a restart. Matches the previous process completed but
        never recorded (it stopped in between) are acted on now; recorded ones are not.
        ``after_seq``: events stored after this point (the daemon's cursor) are replayed
        whatever their age, so none stored before a crash goes unprocessed. ``executors``:
        per playbook, the executor of its loaded version (the daemon's template snapshot).
        Returns the number of events replayed; :attr:`replayed_to` is the last seq read."""
        fresh = self._load(playbooks, executors)
        return self._replay(fresh, now, act=True, after_seq=after_seq)

    def reload(
        self,
        playbooks: Sequence[Playbook],
        now: dt.datetime,
        *,
        executors: Mapping[str, Executor] | None = None,
        until_seq: int | None = None,
    ) -> list[str]:
        """Hot reload: new or changed playbooks get new versioned rulesets (durable-rules
        cannot replace one in place) and their windows are rebuilt from stored events;
        matches that completed before they were loaded are recorded as ``before_load`` and
        not acted on. Unchanged playbooks keep their state. ``until_seq``: only events stored
        up to there came before the load (the daemon's cursor; later ones are still to be
        processed, and count as new). Returns the ids (re)loaded."""
        fresh = self._load(playbooks, executors)
        self._replay(fresh, now, act=False, until_seq=until_seq)
        return [c.playbook.id for c in fresh]

    def _load(
        self, playbooks: Sequence[Playbook], executors: Mapping[str, Executor] | None = None
    ) -> list[_Compiled]:
        wanted = {p.id: p for p in playbooks if isinstance(p.trigger, EventTrigger) and p.enabled}
        for pid in list(self._compiled):
            old = self._compiled[pid].playbook
            if pid not in wanted or wanted[pid].content_hash != old.content_hash:
                self._unload(pid)
        fresh = [self._compile(p) for pid, p in wanted.items() if pid not in self._compiled]
        for pid, c in self._compiled.items():  # a template edit: same rules, new rendering
            c.executor = (executors or {}).get(pid, self.executor)
        self._route()
        return fresh

    def _compile(self, p: Playbook) -> _Compiled:
        trigger = p.trigger
        assert isinstance(trigger, EventTrigger)
        base = f"{p.id}__{p.content_hash[:8]}"
        first = self.host.register(f"{base}__first", trigger.first)
        second = None
        second_types: frozenset[str] = frozenset()
        if trigger.follow is not None:
            second = self.host.register(f"{base}__second", trigger.follow.step)
            second_types = frozenset(trigger.follow.step.types)
        compiled = _Compiled(p, trigger, Window(p.id, trigger), first, second, second_types)
        self._compiled[p.id] = compiled
        return compiled

    def _unload(self, pid: str) -> None:
        c = self._compiled.pop(pid)
        self.host.drop(c.first)
        if c.second:
            self.host.drop(c.second)

    def _route(self) -> None:
        self._by_type = {}
        for c in self._compiled.values():
            for t in set(c.trigger.first.types) | c.second_types:
                self._by_type.setdefault(t, []).append(c)

    # --- events ------------------------------------------------------------------------

    def process(self, items: Iterable[tuple[str, Any]], now: dt.datetime) -> Report:
        """Check, store and match a batch of ``(source, decoded JSON or Rejected)`` items,
        then close due windows and act on every match. Bad events are rejected with a reason
        and counted; they never stop the batch."""
        report, new = self.accept(items, now)
        report.handled += self.act_on(new, now)
        return report

    def accept(
        self, items: Iterable[tuple[str, Any]], now: dt.datetime
    ) -> tuple[Report, list[Event]]:
        """Check and store a batch; the events that were new (not duplicates), in order."""
        report = Report()
        now_utc = as_utc_naive(now)
        accepted: list[Event] = []
        ids: set[str] = set()
        for source, raw in items:
            report.read += 1
            event = (
                raw
                if isinstance(raw, Rejected)
                else read_event(raw, self.settings.timezone, now_utc)
            )
            if isinstance(event, Rejected):
                report.rejected.append((source, event))
            elif event.id in ids:
                report.duplicates += 1
            else:
                ids.add(event.id)
                accepted.append(event)
        new = self._store(accepted, report, now_utc)
        report.accepted += len(new)
        return report, new

    def act_on(self, new: Sequence[Event], now: dt.datetime) -> list[Handled]:
        """Match stored events (each once: the caller stores or polls them), act on every
        match, then close due windows."""
        matches: list[tuple[_Compiled, Match]] = []
        for event in new:
            matches += self._feed(event)
        return self._handle(matches, now, act=True) + self.tick(now)

    def tick(self, now: dt.datetime) -> list[Handled]:
        """Close absence windows that ended by ``now``, act on them, and forget old state."""
        now_utc = as_utc_naive(now)
        matches = []
        # forgetting walks every customer: once a minute is plenty (memory only, no verdicts)
        prune = self._pruned_at is None or now_utc - self._pruned_at >= PRUNE_EVERY
        for c in self._compiled.values():
            matches += [(c, m) for m in c.window.tick(now_utc)]
            if prune:
                c.window.prune(now_utc)
        if prune:
            self._pruned_at = now_utc
        return self._handle(matches, now, act=True)

    def held(self) -> int:
        """Events held in window state (memory), for status and tests."""
        return sum(len(c.window) for c in self._compiled.values())

    def _store(self, accepted: list[Event], report: Report, now_utc: dt.datetime) -> list[Event]:
        if not self.persist:
            new = [e for e in accepted if e.id not in self._seen]
            self._seen.update(e.id for e in new)
            report.duplicates += len(accepted) - len(new)
            return new
        fresh = event_store.insert_new(self.store, accepted, now_utc)
        if report.rejected:
            with self.store.begin() as conn:
                event_store.record_rejections(conn, report.rejected, now_utc)
        report.duplicates += len(accepted) - len(fresh)
        return [e for e in accepted if e.id in fresh]

    def _feed(
        self, event: Event, only: Sequence[_Compiled] | None = None
    ) -> list[tuple[_Compiled, Match]]:
        targets = self._by_type.get(event.type, ())
        if not targets:
            return []
        # encoded once for every ruleset it goes to
        message = json.dumps(
            {"sid": SESSION, "id": event.id, "type": event.type, **event.fields},
            ensure_ascii=False,
        )
        post = self.host.post_json
        out = []
        for c in targets:
            if only is not None and c not in only:
                continue
            first = event.type in c.trigger.first.types and post(c.first, message, event.id)
            second = (
                c.second is not None
                and event.type in c.second_types
                and post(c.second, message, event.id)
            )
            if first or second:
                out += [(c, m) for m in c.window.add(event, first, second)]
        return out

    def _replay(
        self,
        targets: list[_Compiled],
        now: dt.datetime,
        *,
        act: bool,
        after_seq: int | None = None,
        until_seq: int | None = None,
    ) -> int:
        if not targets or not self.persist:
            return 0
        longest = max([2 * c.trigger.window for c in targets] + [MIN_REPLAY])
        since = as_utc_naive(now) - longest
        done = self._handled_events(targets, since - longest)
        replayed = 0
        matches: list[tuple[_Compiled, Match]] = []
        for seq, event in event_store.stored_events(
            self.store,
            since,
            after_seq=after_seq,
            until_seq=until_seq,
            received_since=as_utc_naive(now) - MIN_REPLAY,
        ):
            replayed += 1
            self.replayed_to = max(self.replayed_to, seq)
            if after_seq is not None and seq > after_seq:
                self.replayed_after.append(seq)
            todo = [c for c in targets if event.id not in done.get(c.playbook.id, ())]
            matches += self._feed(event, todo)
        for c in targets:
            matches += [(c, m) for m in c.window.tick(as_utc_naive(now))]
        self.replay_handled = self._handle(matches, now, act=act)
        return replayed

    def _handled_events(self, targets: list[_Compiled], since: dt.datetime) -> dict[str, set[str]]:
        """Per playbook, the events already used by a handled match: a replay must not use
        them again (they were consumed), whatever the replay range cuts off."""

        ids = [c.playbook.id for c in targets]
        out: dict[str, set[str]] = {}
        with self.store.connect() as conn:
            rows = conn.execute(
                select(event_matches.c.playbook_id, event_matches.c.event_ids).where(
                    event_matches.c.playbook_id.in_(ids), event_matches.c.matched_at >= since
                )
            )
            for pid, events in rows:
                out.setdefault(pid, set()).update(events)
        return out

    # --- matches -----------------------------------------------------------------------

    def _handle(
        self, matches: list[tuple[_Compiled, Match]], now: dt.datetime, *, act: bool
    ) -> list[Handled]:
        if not matches:
            return []
        if not self.persist:
            return [self.actor.act_one(c.playbook, m, now) for c, m in matches]
        keys: dict[str, list[str]] = {}
        for c, m in matches:
            keys.setdefault(c.playbook.id, []).append(m.key)
        with self.store.connect() as conn:
            done = {pid: event_store.handled(conn, pid, ks) for pid, ks in keys.items()}
        todo: list[tuple[_Compiled, Match]] = []
        for c, m in matches:
            if m.key not in done[c.playbook.id]:
                done[c.playbook.id].add(m.key)  # a key twice in one batch is handled once
                todo.append((c, m))
        if act:
            out = self.actor.act_batch([(c.playbook, c.executor, m) for c, m in todo], now)
        else:
            out = [Handled(m, c.playbook, BEFORE_LOAD) for c, m in todo]
        # recorded after acting, in one statement: a crash in between acts again after the
        # restart, and the ledger's unique window turns that into a no-op
        with self.store.begin() as conn:
            event_store.record_matches(conn, out, as_utc_naive(now))
        return out
