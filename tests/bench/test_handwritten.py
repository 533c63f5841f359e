"""The hand-written twins of section 2 (engine/bench/handwritten.py) return exactly the
engine's customers, in its order, for every shipped playbook, on SQLite and PostgreSQL.

A twin that drifted from its playbook would make the benchmark compare two different
audiences; the 300-customer run of the whole bench checks only SQLite and only on the bench's
day. Here each twin runs on the shared demo store on three days: the bench's (2026-10-12,
a workday after National Day), the store's own anchor (recent openings, complaints and
contacts), and 2026-12-31 (the last workday before 元旦, so a festival twin returns rows).
"""

from __future__ import annotations

import datetime as dt

import pytest
from support import AS_OF_DATE, SETTINGS

from engine.bench import handwritten
from engine.bench.audiences import _engine_ids, _hand_ids
from engine.bench.lab import AS_OF as BENCH_DAY
from engine.bench.lab import Lab

DAYS = (BENCH_DAY, AS_OF_DATE, dt.date(2026, 12, 31))


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_every_twin_returns_the_engine_customers(demo_url: str, day: dt.date) -> None:
    lab = Lab.open(demo_url, SETTINGS, day)
    try:
        executor = lab.executor()
        found: dict[str, int] = {}
        for playbook in (*lab.scheduled, *lab.event_driven):
            fields = [f.key for f in executor.reads(playbook)[0]]
            sql = handwritten.query(playbook.id, lab.clock(playbook), fields)
            assert sql is not None, f"{playbook.id} has no hand-written twin"
            engine = _engine_ids(lab, executor, playbook)
            assert _hand_ids(lab, sql) == engine, playbook.id
            found[playbook.id] = len(engine)
    finally:
        lab.store.dispose()
    # the day is worth checking: most twins compare non-empty audiences
    assert sum(1 for n in found.values() if n) >= len(found) // 2, found
    if day == dt.date(2026, 12, 31):
        assert found["festival-new-year-greeting"] > 0
