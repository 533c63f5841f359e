"""Set-based reads behind the contact policy: one query per batch and rule, never one per
customer. Each returns the customers (or counts) a rule needs to decide a whole batch."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, and_, func, or_, select

from engine.actions.base import Queued
from engine.store.models import action_ledger, consents, outbox, tasks

# Suppression reasons (stable identifiers; labels live in the reports)
ALREADY_DONE = "already_done"  # acted on in this window by an earlier run
COOLDOWN = "cooldown"
MAX_PER_RUN = "max_per_run"
HELD_OUT = "held_out"  # in the playbook's holdout group: recorded, nothing sent
OPEN_TASK = "open_task"  # an open task for the same customer, kind and reason exists
# a queued marketing message cancelled for a higher-priority one under a frequency cap
DISPLACED = "displaced_by_priority"
# outbox rows that count toward frequency caps: queued or delivered
COUNTED_STATUSES = ("pending", "sent")
# a WeCom message over the customer's limit (messages.wecom.per_customer)
WECOM_LIMIT = "wecom_limit"
WECOM_KIND = "wecom"  # the tasks.kind of a WeCom message
WECOM_SENT = "sent"  # the outcome a manager closes a sent WeCom message with


def no_consent(channel: str) -> str:
    return f"no_consent_{channel}"


def quiet_hours(channel: str) -> str:
    return f"quiet_hours_{channel}"


def frequency_cap(channel: str) -> str:
    return f"frequency_cap_{channel}"


def already_done(
    conn: Connection, playbook_id: str, window: str, customer_ids: Sequence[str]
) -> set[str]:
    rows = conn.execute(
        select(action_ledger.c.customer_id).where(
            action_ledger.c.playbook_id == playbook_id,
            action_ledger.c.window == window,
            action_ledger.c.customer_id.in_(customer_ids),
        )
    )
    return {r[0] for r in rows}


def done_in_windows(conn: Connection, playbook_id: str, windows: Mapping[str, str]) -> set[str]:
    """:func:`already_done` when every customer has their own window (event matches)."""
    if not windows:
        return set()
    rows = conn.execute(
        select(action_ledger.c.customer_id, action_ledger.c.window).where(
            action_ledger.c.playbook_id == playbook_id,
            action_ledger.c.customer_id.in_(list(windows)),
            action_ledger.c.window.in_(sorted(set(windows.values()))),
        )
    )
    return {cid for cid, window in rows if windows.get(cid) == window}


def in_cooldown(
    conn: Connection,
    playbook_id: str,
    customer_ids: Sequence[str],
    since_utc: dt.datetime,
) -> set[str]:
    rows = conn.execute(
        select(action_ledger.c.customer_id).where(
            action_ledger.c.playbook_id == playbook_id,
            action_ledger.c.customer_id.in_(customer_ids),
            action_ledger.c.created_at >= since_utc,
        )
    )
    return {r[0] for r in rows}


def consenting(
    conn: Connection,
    channel: str,
    purpose: str,
    customer_ids: Sequence[str],
    now_local: dt.datetime,
) -> set[str]:
    """Customers whose consent for ``channel`` and ``purpose`` holds at ``now_local``.

    Consent holds when it was given (not in the future) and not withdrawn after it was given.
    """
    c = consents.c
    rows = conn.execute(
        select(c.customer_id).where(
            c.channel == channel,
            c.purpose == purpose,
            c.customer_id.in_(customer_ids),
            c.given_at.is_not(None),
            c.given_at <= now_local,
            or_(c.withdrawn_at.is_(None), and_(c.withdrawn_at < c.given_at)),
        )
    )
    return {r[0] for r in rows}


def marketing_contacts(
    conn: Connection,
    channel: str,
    customer_ids: Sequence[str],
    since_utc: dt.datetime,
) -> Counter[str]:
    """Marketing messages on ``channel`` queued or sent per customer since ``since_utc``,
    across every playbook: what frequency caps count."""
    o = outbox.c
    rows = conn.execute(
        select(o.customer_id, func.count())
        .where(
            o.channel == channel,
            o.purpose == "marketing",
            o.status.in_(COUNTED_STATUSES),
            o.customer_id.in_(customer_ids),
            o.created_at >= since_utc,
        )
        .group_by(o.customer_id)
    )
    return Counter({str(cid): int(n) for cid, n in rows})


def displaceable(
    conn: Connection,
    channel: str,
    customer_ids: Sequence[str],
    since_utc: dt.datetime,
    below: int,
    now_utc: dt.datetime,
) -> dict[str, list[Queued]]:
    """Per customer, the marketing messages on ``channel`` queued since ``since_utc`` with a
    priority below ``below`` that no dispatcher holds: what a higher priority may displace.
    Lowest priority first, then the newest (the one queued last gives way first)."""
    o, led = outbox.c, action_ledger.c
    rows = conn.execute(
        select(o.id, o.customer_id, o.priority, o.created_at, o.playbook_id, led.run_id, led.window)
        .join(action_ledger, action_ledger.c.id == o.ledger_id)
        .where(
            o.channel == channel,
            o.purpose == "marketing",
            o.status == "pending",
            o.customer_id.in_(customer_ids),
            o.created_at >= since_utc,
            o.priority < below,
            or_(o.claimed_until.is_(None), o.claimed_until < now_utc),
        )
        .order_by(o.customer_id, o.priority, o.created_at.desc(), o.id.desc())
    )
    found: dict[str, list[Queued]] = {}
    for r in rows:
        found.setdefault(str(r.customer_id), []).append(
            Queued(
                outbox_id=int(r.id),
                priority=int(r.priority),
                created_at=r.created_at,
                playbook_id=str(r.playbook_id),
                run_id=int(r.run_id),
                window=str(r.window),
                kind=channel,
            )
        )
    return found


def wecom_messages(
    conn: Connection, customer_ids: Sequence[str], since_utc: dt.datetime
) -> Counter[str]:
    """WeCom messages per customer created since ``since_utc`` that are still waiting for
    their manager or were sent: what the per-customer limits count. One closed as not sent
    never reached the customer and frees its place."""
    t = tasks.c
    rows = conn.execute(
        select(t.customer_id, func.count())
        .where(
            t.kind == WECOM_KIND,
            t.customer_id.in_(customer_ids),
            t.created_at >= since_utc,
            or_(t.status == "open", t.outcome == WECOM_SENT),
        )
        .group_by(t.customer_id)
    )
    return Counter({str(cid): int(n) for cid, n in rows})


def open_tasks(conn: Connection, customer_ids: Sequence[str]) -> set[tuple[str, str, str]]:
    """(customer, kind, reason) of every open task of these customers."""
    t = tasks.c
    rows = conn.execute(
        select(t.customer_id, t.kind, t.reason).where(
            t.status == "open", t.customer_id.in_(customer_ids)
        )
    )
    return {(str(c), str(k), str(r)) for c, k, r in rows}
