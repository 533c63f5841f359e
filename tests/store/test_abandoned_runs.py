"""A run a dead daemon left ``running`` is closed when its claim is taken over or given up:
no run row stays "running" for ever (both backends)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert, select

from engine.store import claims
from engine.store.db import create_all
from engine.store.models import run_claims, runs

NOW = dt.datetime(2026, 11, 23, 1, 30)  # naive UTC, as the engine stores it
SLOT = "2026-11-23T09:00"


def _dead_daemons_slot(store: Engine) -> claims.Claim:
    """A claim RUNNING with a lapsed lease, and the runs row its daemon opened and never closed."""
    create_all(store)
    with store.begin() as conn:
        conn.execute(
            insert(runs).values(
                playbook_id="vip-inactive-60d", window=SLOT, as_of=NOW, content_hash="x",
                started_at=NOW - dt.timedelta(minutes=5), status="running", matched=0, acted=0,
                suppressed={},
            )
        )  # fmt: skip
        conn.execute(
            insert(runs).values(
                playbook_id="vip-inactive-60d", window="2026-11-20T09:00", as_of=NOW,
                content_hash="x", started_at=NOW, status="running", matched=0, acted=0,
                suppressed={},
            )
        )  # another slot's run: not this claim's business  # fmt: skip
        conn.execute(
            insert(run_claims).values(
                playbook_id="vip-inactive-60d", slot=SLOT, due_at=NOW, status=claims.RUNNING,
                owner="dead:1:x", lease_until=NOW - dt.timedelta(seconds=30), attempts=1,
                claimed_at=NOW - dt.timedelta(minutes=5),
            )
        )  # fmt: skip
        (claim,) = claims.resumable(conn, "vip-inactive-60d", NOW, 3, NOW - dt.timedelta(days=1))
    return claim


def _statuses(store: Engine) -> dict[str, tuple[str, str | None]]:
    with store.connect() as conn:
        return {r.window: (r.status, r.error) for r in conn.execute(select(runs))}


def test_taking_over_a_lapsed_claim_closes_the_run_it_left_running(store: Engine) -> None:
    claim = _dead_daemons_slot(store)
    with store.begin() as conn:
        assert claims.take_over(
            conn, claim, owner="alive:2:y", content_hash="x", now=NOW, lease=dt.timedelta(minutes=1)
        )
    found = _statuses(store)
    assert found[SLOT][0] == "failed" and "lease lapsed" in (found[SLOT][1] or "")
    assert found["2026-11-20T09:00"] == ("running", None)


def test_giving_up_a_lapsed_claim_closes_the_run_it_left_running(store: Engine) -> None:
    claim = _dead_daemons_slot(store)
    with store.begin() as conn:
        assert claims.give_up(conn, claim, NOW, "too late")
    assert _statuses(store)[SLOT][0] == "failed"
