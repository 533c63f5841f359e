"""Compact holds: how the customers a run held back for a reason of the run's own are
listed, and how one customer is found among them.

A capped cadence (``max_per_run``) holds back most of its audience, the same customers every
day; a ``suppressions`` row each was most of what a real run wrote. They are listed instead in
``run_holds`` rows, one per run, window, reason and *bucket* (a stable hash of the customer
id), each naming up to :data:`HOLD_CHUNK` customers. The contact history of one customer then
reads the rows of one bucket in :data:`HOLD_BUCKETS`, and a run's holds are listed on demand
(``runner.py held RUN``). Reasons about the customer (consent, caps, cool-down, open tasks)
stay one ``suppressions`` row each: they are few, and each says something of that person.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from sqlalchemy import ColumnElement

from engine.store.models import run_holds

HOLD_BUCKETS = 64
"""Buckets per run: the history of one customer reads 1/64 of the holds."""

HOLD_CHUNK = 2048
"""Customers per row at most: bounds a run's memory for holds and a row's size."""

SEP = "\n"


def bucket(customer_id: str) -> int:
    """The bucket of a customer id: CRC-32, the same in every process and release (Python's
    ``hash`` of a string is salted per process)."""
    return zlib.crc32(customer_id.encode()) % HOLD_BUCKETS


def compactable(customer_id: str) -> bool:
    """An id the newline-framed list can hold; any other is stored as a suppressions row."""
    return SEP not in customer_id and customer_id != ""


def encode(customer_ids: Iterable[str]) -> str:
    """``"\\na\\nb\\n"``: sorted, framed so ``"\\nID\\n"`` finds exactly one id."""
    return SEP + SEP.join(sorted(customer_ids)) + SEP


def decode(text: str) -> Iterator[str]:
    return (c for c in text.split(SEP) if c)


def lists(customer_id: str) -> ColumnElement[bool]:
    """The ``run_holds`` rows that name ``customer_id`` (its bucket's rows, searched)."""
    return (run_holds.c.bucket == bucket(customer_id)) & run_holds.c.customers.contains(
        SEP + customer_id + SEP, autoescape=True
    )
