"""The contact policy applied to each batch of matched customers.

Decisions read the store in one query per batch (never one per customer): who was already
acted on in this window, who is inside the playbook's cooldown, and who has consent for which
channel and purpose. Every "no" carries a reason so dry-run and reports can show the funnel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, and_, or_, select

from engine.store.models import action_ledger, consents

# Suppression reasons (stable identifiers; labels live in the reports)
ALREADY_DONE = "already_done"  # acted on in this window by an earlier run
COOLDOWN = "cooldown"
MAX_PER_RUN = "max_per_run"


def no_consent(channel: str) -> str:
    return f"no_consent_{channel}"


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
