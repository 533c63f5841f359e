"""Explain one customer: for each playbook, why they are (not) in the audience, each gate of
the contact policy, and what they would get.

Nothing here decides anything on its own. The outcome is the executor's decision for this
customer (the same :meth:`Executor.execute` dry-run calls, with a recording sink), and the
audience trace's every verdict is the reference evaluator's (``engine.conditions.explain``).
Should the SQL audience and the reference ever disagree, the explanation says so instead of
hiding it.

Exactness: the executor is asked about this customer alone, which decides everything the
same as a whole preview (consent, cooldown, caps and previewed messages are per customer)
except ``max_per_run``, which depends on the customers before this one. When a playbook's
audience is larger than its cap, every selected playbook runs over its whole audience, as
dry-run does, and this customer's decision is read from that.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, String, cast, func, select

from engine.conditions.ast import EVERYONE
from engine.conditions.explain import Implausible, Malformed, Step, trace
from engine.conditions.facts import load_related
from engine.conditions.sql import CHECKED_TYPES, SqlCompiler
from engine.conditions.validity import why_implausible
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary
from engine.core.errors import EngineError
from engine.core.masking import mask_values
from engine.core.settings import Settings
from engine.execution.executor import Executor, by_priority, slot_on
from engine.execution.sinks import Decision, RecordingSink
from engine.playbook.model import Playbook
from engine.policy import MAX_PER_RUN, Policy
from engine.policy.explain import FAIL, PASS, SKIP, Gate, customer_gates
from engine.rendering.renderer import EventFields, Renderer
from engine.store.replica import ReplicaReads
from engine.triggers.event import EventTrigger
from engine.triggers.event_model import sample_event
from engine.triggers.schedule import Schedule

EVENT_WINDOW = "event:explain"  # event playbooks: as if a matching event arrived now


class UnknownCustomer(EngineError):
    """The customer id is not in the store (exit 1, one line)."""


@dataclass
class PlaybookExplanation:
    playbook: Playbook
    trigger: str
    evaluated_at: dt.datetime | None = None  # None: not scheduled on the day asked about
    window: str | None = None
    audience: Step | None = None
    matched: bool = False  # the executor's (SQL) verdict
    gates: list[Gate] = field(default_factory=list)
    decision: Decision | None = None
    # the run date's workday answer is a guess and policy holds the playbook: nothing decided
    held_for_estimate: bool = False

    @property
    def agrees(self) -> bool:
        """The reference evaluator's trace and the SQL audience say the same."""
        return self.audience is None or self.audience.holds == self.matched


@dataclass
class Explanation:
    customer_id: str
    as_of: dt.datetime
    customer: dict[str, Any]  # the customer's values as shown (masked unless allowed)
    masked: bool
    playbooks: list[PlaybookExplanation]
    whole_run: bool  # decisions read from whole-audience runs (a max_per_run could bind)


class Explainer:
    def __init__(
        self,
        store: Engine,
        settings: Settings,
        dictionary: DataDictionary,
        renderer: Renderer,
        policy: Policy | None = None,
        replica: ReplicaReads | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dictionary = dictionary
        self.executor = Executor(store, settings, dictionary, renderer, policy, replica)

    def explain(
        self,
        customer_id: str,
        playbooks: Sequence[Playbook],
        moment: dt.datetime,
        *,
        whole_day: bool = False,
        mask: bool = True,
    ) -> Explanation:
        """``whole_day``: evaluate each scheduled playbook at its first slot on that date, as
        dry-run does for a date alone."""
        tz = self.settings.timezone
        calendar = self.executor.calendar()
        plans: list[tuple[Playbook, Clock | None]] = []
        for p in by_priority(playbooks):
            at = slot_on(p, moment.date(), tz) if whole_day and _scheduled(p) else moment
            plans.append((p, Clock.at(at, tz, calendar) if at is not None else None))
        # the customer's values and related rows as a run reads them (a replica, if any); the
        # gates from the primary, as the run's policy reads them
        bank = self.executor.bank()
        with bank.connect() as conn:
            read = self._read(conn, customer_id, Clock.at(moment, tz, calendar))
            if read is None:
                raise UnknownCustomer(
                    f"no customer with id {customer_id!r} in the store",
                    code="E0304",
                    hint="customer ids are the store's own, e.g. C0000000043",
                )
            sizes = {
                p.id: self._audience_size(conn, p, c)
                for p, c in plans
                if c is not None and p.limits.max_per_run is not None
            }
        whole = any(sizes[p.id] > (p.limits.max_per_run or 0) for p, _ in plans if p.id in sizes)
        values, damaged = read
        shown = mask_values(values, self.dictionary) if mask else dict(values)
        shown |= damaged
        previewed: Counter[tuple[str, str]] = Counter()
        explained = []
        for p, clock in plans:
            entry = PlaybookExplanation(p, _trigger(p))
            explained.append(entry)
            if clock is None:
                continue
            # scheduled playbooks share one tally of previewed messages, as in dry-run; an
            # event may arrive at any time, so each event playbook starts from the store alone
            tally = previewed if _scheduled(p) else Counter()
            before = Counter(tally)
            self._decide(entry, customer_id, clock, tally, mask=mask, whole=whole)
            with bank.connect() as facts, self.store.connect() as conn:
                related = load_related(facts, self.dictionary, p.audience, [customer_id], clock)
                entry.audience = trace(
                    p.audience, values, self.dictionary, clock, related[customer_id], shown
                )
                assert entry.window is not None
                d = entry.decision
                reached = d is not None and (bool(d.effects) or d.held_out)
                entry.gates = customer_gates(
                    conn, self.executor.policy, clock, p, customer_id, entry.window, before, reached
                )
                # after already_done and cooldown, before the per-action gates, as executed
                entry.gates.insert(2, _cap_gate(p, sizes.get(p.id, 0), d))
        return Explanation(customer_id, moment, shown, mask, explained, whole)

    def customer_values(
        self, conn: Connection, customer_id: str, clock: Clock
    ) -> dict[str, Any] | None:
        """The customer's values as the evaluator takes them (tags as sorted labels), or None."""
        read = self._read(conn, customer_id, clock)
        return None if read is None else read[0]

    def _read(
        self, conn: Connection, customer_id: str, clock: Clock
    ) -> tuple[dict[str, Any], dict[str, Malformed | Implausible]] | None:
        """(values, field → what was stored for each value that reads as empty although it
        is not: malformed, with its stored text, or implausible, with why)."""
        compiler = SqlCompiler(self.dictionary, clock)
        query = compiler.audience(EVERYONE, self.executor.scalar_fields)
        # the stored values too, as text, to tell a malformed value from an empty one, and
        # well formed, to tell an implausible one
        checked = [
            f for f in self.executor.scalar_fields if f.is_stored and f.type in CHECKED_TYPES
        ]
        query = query.add_columns(
            *(cast(compiler.raw_field(f), String()).label(f"_raw_{f.key}") for f in checked),
            *(compiler.stored(f).label(f"_stored_{f.key}") for f in checked if f.valid),
        )
        query = compiler.joined(query.where(compiler.key_in([customer_id])))
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        values = {k: v for k, v in row.items() if not k.startswith("_")}
        damaged: dict[str, Malformed | Implausible] = {}
        for f in checked:
            stored = row.get(f"_stored_{f.key}")
            why = why_implausible(f, stored, clock)
            if why is not None:
                damaged[f.key] = Implausible(stored, why)
            elif row[f"_raw_{f.key}"] is not None and row[f.key] is None:
                damaged[f.key] = Malformed(row[f"_raw_{f.key}"])
        tagged = [{"_key": customer_id}]
        self.executor.attach_tags(conn, tagged)  # the run's own reading of tags
        values.update({k: v for k, v in tagged[0].items() if k != "_key"})
        return values, damaged

    # --- the decision, from the executor ----------------------------------------------------

    def _decide(
        self,
        entry: PlaybookExplanation,
        customer_id: str,
        clock: Clock,
        previewed: Counter[tuple[str, str]],
        *,
        mask: bool,
        whole: bool,
    ) -> None:
        p = entry.playbook
        sink = RecordingSink(mask=mask, contacts=previewed)
        variables = None
        if isinstance(p.trigger, EventTrigger):
            event = sample_event(p.trigger.first.types, self.settings.timezone)
            variables = _SampleEvents(event, clock.as_of)
        outcome = self.executor.execute(
            p,
            clock,
            sink,
            keep_details=True,
            customer_ids=None if whole else [customer_id],
            window=None if _scheduled(p) else EVENT_WINDOW,
            variables=variables,
        )
        entry.evaluated_at = clock.as_of
        entry.window = outcome.window
        entry.held_for_estimate = outcome.held_for_estimate
        mine = [d for d in outcome.decisions if d.customer_id == customer_id]
        entry.decision = mine[0] if mine else None
        entry.matched = bool(mine)

    def _audience_size(self, conn: Connection, playbook: Playbook, clock: Clock) -> int:
        query = self.executor.audience_query(playbook, clock).order_by(None).subquery()
        return int(conn.execute(select(func.count()).select_from(query)).scalar_one())


class _SampleEvents(Mapping[str, Mapping[str, Any]]):
    """``event`` for every customer an explained event playbook acts on (with a cap, the
    whole audience runs): as if a matching event arrived now, the validator's stand-in with
    the customer's id and the explained moment."""

    def __init__(self, event: EventFields, at: dt.datetime) -> None:
        self.event, self.at = event, at

    def __getitem__(self, customer_id: str) -> Mapping[str, Any]:
        event = EventFields(self.event)
        event.update(customer_id=customer_id, occurred_at=self.at)
        return {"event": event}

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _cap_gate(playbook: Playbook, size: int, decision: Decision | None) -> Gate:
    label = "单次上限 max per run"
    cap = playbook.limits.max_per_run
    if cap is None:
        return Gate("max_per_run", label, SKIP, "no max_per_run")
    hit = decision is not None and any(r == MAX_PER_RUN for _, r in decision.suppressed)
    if size <= cap:
        detail = f"audience {size:,} ≤ {cap:,}: the cap cannot be reached"
    else:
        detail = f"audience {size:,} > {cap:,}: " + (
            "the cap was reached before this customer"
            if hit
            else "this customer comes before the cap is reached"
        )
    return Gate("max_per_run", label, FAIL if hit else PASS, detail)


def _scheduled(playbook: Playbook) -> bool:
    return isinstance(playbook.trigger, Schedule)


def _trigger(playbook: Playbook) -> str:
    trigger = playbook.trigger
    if isinstance(trigger, Schedule):
        return f"schedule '{trigger.cron}'"
    types = ", ".join(trigger.first.types)
    return f"event {types} ({trigger.kind}); shown as if a matching event arrived now"
