"""What an operator does with the outbox by hand: list the dead letters, queue messages again,
cancel them. One place for it, so ``runner.py outbox`` and the console's operations page change
the same rows the same way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, case, func, literal, select, update

from engine.core.masking import mask_email, mask_phone
from engine.core.observability import DEAD_LETTER_STATUSES
from engine.store.models import outbox

CANCELLED_BY_OPERATOR = "cancelled by an operator"


def retry(
    store: Engine, ids: Sequence[int], now_utc: dt.datetime, *, all_failed: bool = False
) -> int:
    """Queue dead-letter (or cancelled) messages again, due at ``now_utc`` (naive UTC), with
    their attempts starting over; ``all_failed``: every dead letter. Returns how many."""
    o = outbox.c
    where = (
        o.status.in_(DEAD_LETTER_STATUSES)
        if all_failed
        else o.id.in_(list(ids)) & o.status.in_([*DEAD_LETTER_STATUSES, "cancelled"])
    )
    with store.begin() as conn:
        return int(
            conn.execute(
                update(outbox)
                .where(where)
                .values(
                    status="pending",
                    attempts=0,
                    not_before=now_utc,
                    claimed_until=None,
                    expires_at=None,
                )
            ).rowcount
        )


def cancel(store: Engine, ids: Sequence[int]) -> int:
    """Cancel queued messages and dead letters: they are never sent. A dead letter keeps its
    last error, with the cancellation added. Returns how many."""
    o = outbox.c
    with store.begin() as conn:
        return int(
            conn.execute(
                update(outbox)
                .where(o.id.in_(list(ids)), o.status.in_(["pending", *DEAD_LETTER_STATUSES]))
                .values(
                    status="cancelled",
                    last_error=case(
                        (o.status == "pending", literal(CANCELLED_BY_OPERATOR)),
                        else_=func.coalesce(o.last_error, "") + f"; {CANCELLED_BY_OPERATOR}",
                    ),
                    claimed_until=None,
                )
            ).rowcount
        )


def mask_recipient(channel: str, recipient: str) -> str:
    if channel == "sms":
        return mask_phone(recipient)
    if channel == "email":
        return mask_email(recipient)
    return recipient  # webhook endpoint names are not personal data


def dead_letters(store: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The latest dead letters, newest first, recipients masked."""
    o = outbox.c
    query = (
        select(*_shown_columns())
        .where(o.status.in_(DEAD_LETTER_STATUSES))
        .order_by(o.id.desc())
        .limit(limit)
    )
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for r in rows:
        r["recipient"] = mask_recipient(r["channel"], r["recipient"])
    return rows


def message(store: Engine, message_id: int) -> dict[str, Any] | None:
    """One outbox row as :func:`dead_letters` shows it (recipient masked), or None."""
    o = outbox.c
    query = select(*_shown_columns()).where(o.id == message_id)
    with store.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    found = dict(row)
    found["recipient"] = mask_recipient(found["channel"], found["recipient"])
    return found


def backlog(store: Engine) -> dict[str, dict[str, int]]:
    """Messages by status, then by channel: ``{"pending": {"sms": 12, "email": 3}, …}``."""
    o = outbox.c
    query = select(o.status, o.channel, func.count()).group_by(o.status, o.channel)
    found: dict[str, dict[str, int]] = {}
    with store.connect() as conn:
        for status, channel, n in conn.execute(query):
            found.setdefault(str(status), {})[str(channel)] = int(n)
    return found


def _shown_columns() -> tuple[Any, ...]:
    """What a person sees of one outbox row: never its body, the recipient masked later."""
    o = outbox.c
    return (
        o.id,
        o.channel,
        o.playbook_id,
        o.recipient,
        o.status,
        o.attempts,
        o.last_error,
        o.created_at,
    )
