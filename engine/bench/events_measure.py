"""Throughput of event processing, measured side by side with a raw durable-rules baseline.

``measure`` posts the same events (1) straight into the same durable-rules rulesets the
playbooks compile to, with nothing around them, and (2) through :class:`EventProcessor`:
validation, dedup and storage of every event, windows, and the full action path (audience,
policy, ledger, outbox, tasks) for every match. The benchmark (issue 9) calls it; the target
is at least 30% of the raw rate and at least 10,000 events/s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from durable.engine import MessageNotHandledException, Ruleset

from engine.events.processor import EventProcessor
from engine.events.rules import SESSION, step_condition
from engine.playbook.model import Playbook
from engine.triggers.event import EventTrigger

BATCH = 1000


@dataclass(frozen=True)
class Throughput:
    events: int
    raw_seconds: float
    engine_seconds: float
    raw_matches: int
    engine_matches: int

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def engine_rate(self) -> float:
        return self.events / self.engine_seconds

    @property
    def ratio(self) -> float:
        return self.engine_rate / self.raw_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "raw_events_per_s": round(self.raw_rate),
            "engine_events_per_s": round(self.engine_rate),
            "ratio": round(self.ratio, 3),
            "raw_matches": self.raw_matches,
            "engine_matches": self.engine_matches,
        }


def synthetic_events(
    customer_ids: Sequence[str], count: int, start: dt.datetime, seed: int = 7
) -> list[dict[str, Any]]:
    """A day of plausible traffic: mostly small transactions and logins, some redemptions and
    purchases, a few large withdrawals. ``start`` is aware; events are one per few seconds."""
    rnd = random.Random(seed)
    out = []
    step = dt.timedelta(seconds=max(1, 86400 // max(count, 1)))
    for i in range(count):
        cid = rnd.choice(customer_ids)
        at = (start + step * i).isoformat()
        r = rnd.random()
        base: dict[str, Any] = {"id": f"B{seed}-{i}", "customer_id": cid, "occurred_at": at}
        if r < 0.30:
            out.append({**base, "type": "login", "channel": rnd.choice(["mobile", "online"])})
        elif r < 0.60:
            out.append({**base, "type": "deposit", "amount": rnd.randint(100, 50000)})
        elif r < 0.88:
            amount = 600000 if rnd.random() < 0.01 else rnd.randint(100, 50000)
            out.append({**base, "type": "withdrawal", "amount": amount, "channel": "mobile"})
        elif r < 0.95:
            out.append(
                {
                    **base,
                    "type": "purchase",
                    "amount": rnd.randint(1000, 300000),
                    "product_type": rnd.choice(["wealth", "fund", "time_deposit"]),
                }
            )
        else:
            out.append(
                {
                    **base,
                    "type": "redemption",
                    "amount": rnd.randint(10000, 300000),
                    "product_type": rnd.choice(["wealth", "fund"]),
                }
            )
    return out


def measure_raw(
    playbooks: Sequence[Playbook], events: Sequence[dict[str, Any]]
) -> tuple[float, int]:
    """Seconds to post every event into each compiled ruleset with durable-rules alone."""
    fired = [0]

    def action(_c: Any) -> None:
        fired[0] += 1

    class _Host:
        def get_action(self, name: str) -> Any:
            raise KeyError(name)

    rulesets = []
    for n, p in enumerate(playbooks):
        trigger = p.trigger
        assert isinstance(trigger, EventTrigger)
        steps = [trigger.first] + ([trigger.follow.step] if trigger.follow else [])
        for k, step in enumerate(steps):
            definition = {"r": {"all": [{"m": step_condition(step)}], "run": action}}
            rulesets.append(Ruleset(f"raw{n}_{k}_{id(events)}", _Host(), definition))
    messages = [
        {"sid": SESSION, **{k: v for k, v in e.items() if k not in ("customer_id", "occurred_at")}}
        for e in events
    ]
    started = time.perf_counter()
    for message in messages:
        for ruleset in rulesets:
            with contextlib.suppress(MessageNotHandledException):
                ruleset.do_actions(ruleset.assert_event(message), _ignore)
    return time.perf_counter() - started, fired[0]


def _ignore(_error: Any, _state: Any) -> None:
    pass


def measure(
    processor: EventProcessor,
    playbooks: Sequence[Playbook],
    events: Sequence[dict[str, Any]],
    now: dt.datetime,
) -> Throughput:
    """Raw durable-rules vs the engine with persistence, on the same events, same run."""
    raw_seconds, raw_matches = measure_raw(playbooks, events)
    processor.restore(playbooks, now)
    items = [(f"bench#{i}", e) for i, e in enumerate(events)]
    started = time.perf_counter()
    matches = 0
    for i in range(0, len(items), BATCH):
        report = processor.process(items[i : i + BATCH], now)
        matches += len(report.handled)
    engine_seconds = time.perf_counter() - started
    return Throughput(len(events), raw_seconds, engine_seconds, raw_matches, matches)
