"""The contact policy applied to one batch of matched customers, one effect at a time.

:meth:`BatchGate.load` reads everything a batch needs in a few set-based queries (consent per
channel, phone for a marketing call or visit (see ``consent``), marketing contacts per cap
period, open tasks); :meth:`BatchGate.admit` then decides each rendered effect in memory:
kept as is, kept with a delivery window (quiet hours), or suppressed with a stable reason.
Dry-run and run call the same code.

When a frequency cap is full but a message of a lower-priority playbook is still waiting in the
outbox (queued in the cap period, not yet claimed by a dispatcher), the higher-priority message
displaces it: the effect carries the queued row, and the sink cancels that row
(``displaced_by_priority``) in the same transaction that queues the new one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from engine.actions.base import Effect, Queued
from engine.core.clock import Clock, local_to_utc
from engine.policy.consent import effect_consent
from engine.policy.gate import (
    OPEN_TASK,
    WECOM_KIND,
    WECOM_LIMIT,
    consenting,
    displaceable,
    frequency_cap,
    marketing_contacts,
    no_consent,
    open_tasks,
    quiet_hours,
    wecom_messages,
)
from engine.policy.rules import Cap, Policy

# (customer, channel) -> marketing messages planned but not in the outbox (dry-run previews)
Planned = Counter[tuple[str, str]]


@dataclass
class BatchGate:
    policy: Policy
    clock: Clock
    category: str
    quiet_mode: str  # wait / expire
    consent: Mapping[str, set[str]]
    contacts: Mapping[Cap, Counter[str]]
    open: set[tuple[str, str, str]]
    planned: Planned = field(default_factory=Counter)
    # (customer, channel) -> queued lower-priority marketing messages, first to give way first
    queued: dict[tuple[str, str], list[Queued]] = field(default_factory=dict)
    # per WeCom limit, the customer's messages waiting or sent in its period
    wecom: Mapping[Cap, Counter[str]] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        conn: Connection,
        policy: Policy,
        clock: Clock,
        *,
        category: str,
        quiet_mode: str,
        customer_ids: Sequence[str],
        consent_channels: Iterable[str],
        message_channels: Iterable[str],
        wants_tasks: bool,
        planned: Planned | None = None,
        priority: int = 50,
        wants_wecom: bool = False,
        consent_conn: Connection | None = None,
    ) -> BatchGate:
        """``consent_conn``: where consent is read, when not on ``conn`` (a preview reads it
        from a replica; a run that queues messages always from the primary, ``conn``)."""
        now_utc = clock.utc_naive()
        asked = consent_conn if consent_conn is not None else conn
        consent = {
            ch: consenting(asked, ch, category, customer_ids, clock.now) for ch in consent_channels
        }
        contacts = {
            cap: marketing_contacts(conn, cap.channel, customer_ids, now_utc - cap.per)
            for ch in message_channels
            for cap in policy.caps_for(ch, category)
        }
        queued: dict[tuple[str, str], list[Queued]] = {}
        for ch in message_channels:
            caps = policy.caps_for(ch, category)
            if category != "marketing" or not caps:
                continue
            since = now_utc - max(cap.per for cap in caps)
            rows = displaceable(conn, ch, customer_ids, since, priority, now_utc)
            queued.update({(cid, ch): found for cid, found in rows.items()})
        found = open_tasks(conn, customer_ids) if wants_tasks or wants_wecom else set()
        wecom = {
            cap: wecom_messages(conn, customer_ids, now_utc - cap.per)
            for cap in (policy.wecom_limits if wants_wecom else ())
        }
        return cls(
            policy=policy,
            clock=clock,
            category=category,
            quiet_mode=quiet_mode,
            consent=consent,
            contacts=contacts,
            open=found,
            planned=Counter(planned or {}),
            queued=queued,
            wecom=wecom,
        )

    def admit(self, effect: Effect) -> Effect | str:
        """The effect as it may go (perhaps with a delivery window), or why it may not."""
        cid = effect.customer_id
        needed = effect_consent(effect, self.category)
        if needed and cid not in self.consent[needed]:
            return no_consent(needed)
        if effect.target == "tasks":
            key = (cid, str(effect.row["kind"]), str(effect.row["reason"]))
            if key in self.open:
                return OPEN_TASK
            if effect.kind == WECOM_KIND:
                # WeCom limits every mass message, marketing or service alike
                used = self.planned[(cid, WECOM_KIND)]
                if any(self.wecom[cap][cid] + used >= cap.max for cap in self.wecom):
                    return WECOM_LIMIT
                self.planned[(cid, WECOM_KIND)] += 1
            self.open.add(key)
            return effect
        channel = effect.channel
        if channel is None:
            return effect
        caps = self.policy.caps_for(channel, self.category)
        full = [cap for cap in caps if self._used(cap, cid, channel) >= cap.max]
        victim = self._victim(cid, channel, full) if full else None
        if full and victim is None:
            return frequency_cap(channel)
        timed = self._timed(effect, channel)
        if isinstance(timed, str):
            return timed
        if victim is not None:
            self.queued[(cid, channel)].remove(victim)
            for cap in caps:
                if victim.created_at >= self._since(cap):
                    self.contacts[cap][cid] -= 1
            timed = dataclasses.replace(timed, displaces=victim)
        if self.category == "marketing":
            self.planned[(cid, channel)] += 1
        return timed

    def _used(self, cap: Cap, cid: str, channel: str) -> int:
        return self.contacts[cap][cid] + self.planned[(cid, channel)]

    def _since(self, cap: Cap) -> dt.datetime:
        return self.clock.utc_naive() - cap.per

    def _victim(self, cid: str, channel: str, full: Sequence[Cap]) -> Queued | None:
        """The queued message whose cancellation leaves room under every full cap: counted
        by each of them, and each over by no more than that one message."""
        if any(self._used(cap, cid, channel) > cap.max for cap in full):
            return None
        for queued in self.queued.get((cid, channel), ()):
            if all(queued.created_at >= self._since(cap) for cap in full):
                return queued
        return None

    def _timed(self, effect: Effect, channel: str) -> Effect | str:
        hours = self.policy.hours(channel, self.category)
        if hours is None:
            return effect
        now = self.clock.now
        if hours.allows(now):
            if self.quiet_mode == "expire":
                return dataclasses.replace(effect, expires_at=self._utc(hours.closes(now)))
            return effect
        if self.quiet_mode == "expire":
            return quiet_hours(channel)
        return dataclasses.replace(effect, not_before=self._utc(hours.next_open(now)))

    def _utc(self, local: dt.datetime) -> dt.datetime:
        tz = self.clock.as_of.tzinfo
        assert tz is not None  # a Clock's as_of is aware
        return local_to_utc(local, tz)
