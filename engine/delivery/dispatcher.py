"""The outbox dispatcher: delivers what runs queued, through the configured channels.

A round claims due rows with a lease (``WITH claimable AS MATERIALIZED (SELECT … FOR UPDATE
SKIP LOCKED) UPDATE … WHERE id IN claimable RETURNING``, one statement, so several
dispatchers on one PostgreSQL never share a row, and SQLite's single writer does the same),
re-checks consent and quiet hours at send time (one query per channel and purpose for the
whole batch), sends concurrently (a thread pool and a rate limiter per channel), and records
the results a chunk per transaction: sent; retry later with exponential backoff and jitter;
or, after the last attempt or a permanent refusal, a dead letter (status ``failed``) with the
last error. ``drain`` claims the next batch while the current one is still being sent.

Delivery is at least once, and exactly once in effect: every message carries a stable
idempotency key, so a retry after a lost answer is dropped by the gateway. A dispatcher that
dies mid-round loses nothing: its lease lapses and another round sends the rows again.

The scheduler daemon calls :func:`dispatch_once` beside its scheduled runs.
"""

from __future__ import annotations

import datetime as dt
import queue
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, and_, bindparam, or_, select, update

from engine.actions import REGISTRY
from engine.channels import Channel, ChannelConfig, Message, RateLimiter, Result, open_channels
from engine.channels.config import Retry, Sending, load_channels
from engine.core.clock import as_utc_naive, local_to_utc, utc_to_local
from engine.core.settings import Settings
from engine.policy import Policy, consenting, load_policy
from engine.store.models import outbox

RECORD_EVERY = 500  # results written per transaction while a round is sending
RECORD_IDLE_SECONDS = 0.5  # ... or sooner, when no result came back for this long


@dataclass
class DispatchCounts:
    """What rounds did: a message is counted once per round it was claimed in."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0  # failed this time, scheduled again
    failed: int = 0  # dead letters: permanent refusal or out of attempts
    cancelled: int = 0  # consent withdrawn, or expired in quiet hours
    postponed: int = 0  # outside the channel's allowed hours: waits for the next window

    def add(self, other: DispatchCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def backoff(attempts: int, retry: Retry, rng: random.Random) -> float:
    """Seconds before the next attempt: doubling from ``first_delay``, capped, and jittered
    (half fixed, half random) so a gateway that comes back is not hit by every retry at once."""
    delay = min(retry.max_delay, retry.first_delay * 2.0 ** max(0, attempts - 1))
    return float(delay / 2 + rng.uniform(0, delay / 2))


class Dispatcher:
    """Delivers due outbox rows; one object per process, reused round after round."""

    def __init__(
        self,
        store: Engine,
        settings: Settings,
        *,
        config: ChannelConfig | None = None,
        policy: Policy | None = None,
        channels: Mapping[str, Channel] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.config = config if config is not None else load_channels(settings.channels_path)
        self.policy = policy if policy is not None else load_policy(settings.policy_path)
        self.channels = dict(channels) if channels is not None else open_channels(self.config)
        self.rng = rng or random.Random()
        self.consent_channels = {
            ch for t in REGISTRY.values() if (ch := t.consent_channel) is not None
        }
        self.pools: dict[str, ThreadPoolExecutor] = {}
        self.limiters: dict[str, RateLimiter] = {}
        sendings = self._sendings()
        for name in self.channels:
            workers = max(
                (s.concurrency for key, s in sendings.items() if _base(key) == name), default=1
            )
            self.pools[name] = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"send-{name}"
            )
        for key, sending in sendings.items():
            self.limiters[key] = RateLimiter(sending.rate_per_second)

    # --- public --------------------------------------------------------------------------

    def run_once(self, now: dt.datetime) -> DispatchCounts:
        """One round: expire, claim up to a batch of due messages, send them, record results."""
        return self._pump(now, rounds=1)

    def drain(self, now: dt.datetime) -> DispatchCounts:
        """Rounds until nothing is due at ``now`` (retries go to later moments). The next
        batch is claimed while the last half of the current one is still being sent, so
        the senders never wait for the store between batches."""
        return self._pump(now, rounds=None)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=True)
        for channel in self.channels.values():
            channel.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- stages --------------------------------------------------------------------------

    def _expire(self, now_utc: dt.datetime) -> int:
        with self.store.begin() as conn:
            result = conn.execute(
                update(outbox)
                .where(
                    outbox.c.status == "pending",
                    outbox.c.expires_at.is_not(None),
                    outbox.c.expires_at <= now_utc,
                )
                .values(
                    status="cancelled",
                    claimed_until=None,
                    last_error="expired: outside the allowed hours (quiet_hours: expire)",
                )
            )
        return int(result.rowcount or 0)

    def _claim(self, now_utc: dt.datetime) -> list[Mapping[str, Any]]:
        if not self.channels:
            return []
        o = outbox.c
        free = or_(o.claimed_until.is_(None), o.claimed_until < now_utc)
        due = and_(o.status == "pending", o.not_before <= now_utc, free)
        candidates = (
            select(o.id)
            .where(due, o.channel.in_(list(self.channels)))
            .order_by(o.priority.desc(), o.not_before, o.id)
            .limit(self.config.dispatch.batch_size)
            .with_for_update(skip_locked=True)
        )
        # Materialized, and the outer UPDATE matches by primary key only: PostgreSQL may
        # otherwise plan the IN as a semi-join that rescans the locking subquery once per
        # due row, which is quadratic and, as each rescan skips the rows locked by the last,
        # claims more than the batch. Locking re-checks ``due`` on the newest row version,
        # and SQLite runs the one statement alone, so the outer filter is not needed.
        claimable = candidates.cte("claimable").prefix_with("MATERIALIZED", dialect="postgresql")
        lease = now_utc + dt.timedelta(seconds=self.config.dispatch.lease_seconds)
        with self.store.begin() as conn:
            rows = conn.execute(
                update(outbox)
                .where(o.id.in_(select(claimable.c.id)))
                .values(claimed_until=lease, attempts=o.attempts + 1)
                .returning(*outbox.c)
            )
            return [dict(r) for r in rows.mappings()]

    def _gate(
        self, rows: Sequence[Mapping[str, Any]], now_utc: dt.datetime, counts: DispatchCounts
    ) -> list[Mapping[str, Any]]:
        """Consent and quiet hours, again, at send time: a withdrawal since the run cancels
        the message; a message that would arrive at night waits (or expires)."""
        now_local = utc_to_local(now_utc, self.settings.timezone)
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in rows:
            if r["channel"] in self.consent_channels:
                groups[(r["channel"], r["purpose"])].append(r["customer_id"])
        allowed: dict[tuple[str, str], set[str]] = {}
        cancel: list[dict[str, Any]] = []
        postpone: list[dict[str, Any]] = []
        ready = []
        with self.store.connect() as conn:
            for (channel, purpose), ids in groups.items():
                allowed[(channel, purpose)] = consenting(conn, channel, purpose, ids, now_local)
        for r in rows:
            key = (r["channel"], r["purpose"])
            if key in allowed and r["customer_id"] not in allowed[key]:
                cancel.append(
                    {"row_id": r["id"], "error": f"consent withdrawn ({key[0]}, {key[1]})"}
                )
                continue
            hours = self.policy.hours(*key)
            if hours is not None and not hours.allows(now_local):
                opens = local_to_utc(hours.next_open(now_local), self.settings.timezone)
                if r["expires_at"] is not None and opens >= r["expires_at"]:
                    cancel.append({"row_id": r["id"], "error": "expired: outside allowed hours"})
                else:
                    postpone.append({"row_id": r["id"], "not_before_": opens})
                continue
            ready.append(r)
        with self.store.begin() as conn:
            if cancel:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == bindparam("row_id"))
                    .values(status="cancelled", claimed_until=None, last_error=bindparam("error")),
                    cancel,
                )
            if postpone:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == bindparam("row_id"))
                    .values(
                        not_before=bindparam("not_before_"),
                        claimed_until=None,
                        attempts=outbox.c.attempts - 1,
                    ),
                    postpone,
                )
        counts.cancelled += len(cancel)
        counts.postponed += len(postpone)
        return ready

    def _pump(self, now: dt.datetime, rounds: int | None) -> DispatchCounts:
        """Claim rounds (at most ``rounds``; None: until one claims nothing) and record the
        results as they come back, a chunk per transaction: a chunk is written once it is
        full, or when results stop arriving for a moment (a slow message must not hold the
        quick ones unrecorded). A round is claimed when fewer than half a batch is in
        flight; every claimed message is recorded before this returns."""
        now_utc = as_utc_naive(now)
        counts = DispatchCounts()
        finished: queue.SimpleQueue[tuple[Mapping[str, Any], Future[Result]]]
        finished = queue.SimpleQueue()
        low_water = self.config.dispatch.batch_size // 2
        in_flight, claiming = 0, True
        done: list[tuple[Mapping[str, Any], Result]] = []
        while True:
            if claiming and in_flight <= low_water:
                counts.cancelled += self._expire(now_utc)
                claimed = self._claim(now_utc)
                counts.claimed += len(claimed)
                if rounds is not None:
                    rounds -= 1
                claiming = bool(claimed) and rounds != 0
                ready = self._gate(claimed, now_utc, counts) if claimed else []
                self._submit(ready, finished)
                in_flight += len(ready)
            if not in_flight:
                if not claiming:
                    break
                continue
            try:
                row, future = finished.get(timeout=RECORD_IDLE_SECONDS)
            except queue.Empty:
                if done:
                    self._record(done, now_utc, counts)
                    done = []
                continue
            done.append((row, future.result()))
            in_flight -= 1
            if len(done) >= RECORD_EVERY or not in_flight:
                self._record(done, now_utc, counts)
                done = []
        return counts

    def _submit(
        self,
        rows: Sequence[Mapping[str, Any]],
        finished: queue.SimpleQueue[tuple[Mapping[str, Any], Future[Result]]],
    ) -> None:
        """Hand every row to its channel's pool; each result lands in ``finished``."""

        def report(row: Mapping[str, Any]) -> Callable[[Future[Result]], None]:
            return lambda future: finished.put((row, future))

        for r in rows:
            message = Message(
                id=r["id"],
                channel=r["channel"],
                recipient=r["recipient"],
                subject=r["subject"],
                body=r["body"],
                idempotency_key=r["idempotency_key"],
                customer_id=r["customer_id"],
                playbook_id=r["playbook_id"],
            )
            future = self.pools[r["channel"]].submit(self._deliver, message)
            future.add_done_callback(report(r))

    def _deliver(self, message: Message) -> Result:
        key = message.channel
        if key == "webhook":
            key = f"webhook:{message.recipient}"
        limiter = self.limiters.get(key)
        if limiter is not None:
            limiter.acquire()
        try:
            return self.channels[message.channel].send(message)
        except Exception as exc:  # an adapter bug must not lose the message: retry it
            return Result("retry", f"internal: {type(exc).__name__}: {exc}"[:300])

    def _record(
        self,
        results: Iterable[tuple[Mapping[str, Any], Result]],
        now_utc: dt.datetime,
        counts: DispatchCounts,
    ) -> None:
        sent: list[int] = []
        again: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        for row, result in results:
            if result.verdict == "sent":
                sent.append(row["id"])
                continue
            retry = self._retry(row)
            if result.verdict == "failed" or row["attempts"] >= retry.max_attempts:
                reason = "permanent" if result.verdict == "failed" else "out of attempts"
                error = f"{result.error} ({reason}, attempt {row['attempts']})"
                dead.append({"row_id": row["id"], "error": error})
                continue
            delay = backoff(row["attempts"], retry, self.rng)
            if result.retry_after is not None:
                delay = max(delay, result.retry_after)
            again.append(
                {
                    "row_id": row["id"],
                    "error": f"{result.error} (attempt {row['attempts']})",
                    "not_before_": now_utc + dt.timedelta(seconds=delay),
                }
            )
        o = outbox.c
        mine = and_(o.id == bindparam("row_id"), o.status == "pending")
        with self.store.begin() as conn:
            if sent:  # one statement for the whole chunk: they all get the same values
                conn.execute(
                    update(outbox)
                    .where(o.id.in_(sent), o.status == "pending")
                    .values(status="sent", sent_at=now_utc, claimed_until=None)
                )
            if again:
                conn.execute(
                    update(outbox)
                    .where(mine)
                    .values(
                        not_before=bindparam("not_before_"),
                        last_error=bindparam("error"),
                        claimed_until=None,
                    ),
                    again,
                )
            if dead:
                conn.execute(
                    update(outbox)
                    .where(mine)
                    .values(status="failed", last_error=bindparam("error"), claimed_until=None),
                    dead,
                )
        counts.sent += len(sent)
        counts.retrying += len(again)
        counts.failed += len(dead)

    def _retry(self, row: Mapping[str, Any]) -> Retry:
        if row["channel"] == "webhook":
            found = self.config.retries.get(f"webhook:{row['recipient']}")
            if found is not None:
                return found
        return self.config.retry_for(row["channel"])

    def _sendings(self) -> dict[str, Sending]:
        """Concurrency and rate per limiter key: sms, email, webhook:<endpoint>."""
        out: dict[str, Sending] = {}
        if self.config.sms is not None:
            out["sms"] = self.config.sms.sending
        if self.config.email is not None:
            out["email"] = self.config.email.sending
        for name, endpoint in self.config.webhooks.items():
            out[f"webhook:{name}"] = endpoint.sending
        return out


def dispatch_once(store: Engine, settings: Settings, now: dt.datetime) -> DispatchCounts:
    """Deliver every message due at ``now`` and return what happened: the daemon's entry
    point. Channel settings and the policy are read from the deployment's config files."""
    with Dispatcher(store, settings) as dispatcher:
        return dispatcher.drain(now)


def _base(limiter_key: str) -> str:
    return limiter_key.split(":", 1)[0]
