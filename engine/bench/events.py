"""Section 6: event playbooks, events/s with persistence (validation, dedup, storage,
windows, the action path for every match) against posting the same events into the same
durable-rules rulesets with nothing around them; measured by
:func:`engine.bench.events_measure.measure`, called as it is."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from sqlalchemy import select

from engine.bench.events_measure import measure as measure_events
from engine.bench.events_measure import synthetic_events
from engine.bench.lab import Lab
from engine.bench.stores import wipe_engine_rows
from engine.events.processor import EventProcessor
from engine.store.models import customers

EVENTS = 5000


def measure(lab: Lab, repeats: int, count: int = EVENTS) -> dict[str, Any]:
    if not lab.event_driven:
        return {"note": "the pack has no event playbooks"}
    with lab.store.connect() as conn:
        ids = [str(r[0]) for r in conn.execute(select(customers.c.id).limit(20_000))]
    tz = lab.settings.timezone
    start = dt.datetime.combine(lab.day, dt.time(0), tz)
    now = start + dt.timedelta(days=1)
    figures = []
    for rep in range(max(1, repeats)):
        wipe_engine_rows(lab.store)
        events = synthetic_events(ids, count, start, seed=7 + rep)
        processor = EventProcessor(
            lab.store, lab.settings, lab.dictionary, lab.renderer, persist=True
        )
        figures.append(measure_events(processor, lab.event_driven, events, now))
    wipe_engine_rows(lab.store)
    raw = [f.raw_rate for f in figures]
    engine = [f.engine_rate for f in figures]
    return {
        "events": count,
        "playbooks": [p.id for p in lab.event_driven],
        "engine_events_per_s": round(statistics.median(engine)),
        "engine_min_max": [round(min(engine)), round(max(engine))],
        "raw_events_per_s": round(statistics.median(raw)),
        "raw_min_max": [round(min(raw)), round(max(raw))],
        "share_of_raw": round(statistics.median(engine) / statistics.median(raw), 3),
        "matches": [f.engine_matches for f in figures],
        "raw_matches": [f.raw_matches for f in figures],
    }
