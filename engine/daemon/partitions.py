"""Which partitions a daemon claims slots for (``daemon --partition k/K``, docs/scaling.md).

Each daemon owns partition k and claims its slots as an unpartitioned daemon claims a
playbook's. It also serves the partitions *no live daemon owns*: a partition whose daemon was
killed and never came back is not left behind. Who owns what is read from the ``daemons``
rows (their heartbeat, and the partition each announces in its state), so nothing new is
stored: a daemon is live while its heartbeat is younger than a lease and it has not stopped.

Two daemons may both think a partition orphaned (one just started, say): both try its slot,
the claim's unique key lets one through, and the ledger keeps every customer exactly once
whoever runs it. A killed daemon's *running* claim is resumed once its lease lapses, by its
own partition's new daemon or by whichever daemon serves the orphaned partition.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from engine.daemon.context import Context
from engine.store.models import daemons

STATE_KEY = "partition"  # in a daemons row's state: "k/K", or None when unpartitioned


def partition_state(ctx: Context) -> dict[str, Any]:
    """The part of a daemon's ``daemons`` state saying which partition it owns."""
    partition = ctx.config.partition
    return {STATE_KEY: partition.label if partition is not None else None}


def served(conn: Connection, ctx: Context, now: dt.datetime) -> list[int]:
    """The partitions (``run_claims.partition_no``) this daemon claims slots for, its own
    first: ``[0]`` unpartitioned, else k and then every partition no other live daemon owns."""
    partition = ctx.config.partition
    if partition is None:
        return [0]
    rows = conn.execute(
        select(daemons.c.id, daemons.c.state).where(
            daemons.c.stopped_at.is_(None),
            daemons.c.heartbeat_at >= now - ctx.config.lease,
        )
    )
    owned = {partition.k}
    for row in rows:
        label = (row.state or {}).get(STATE_KEY) if isinstance(row.state, dict) else None
        if row.id != ctx.owner and isinstance(label, str):
            k, _, count = label.partition("/")
            if count == str(partition.count) and k.isdigit():
                owned.add(int(k))
    orphans = [k for k in range(1, partition.count + 1) if k not in owned]
    return [partition.k, *orphans]
