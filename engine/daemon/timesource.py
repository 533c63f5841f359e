"""The daemon's clock for slots, and the APScheduler trigger that fires on it.

:class:`TimeSource` is the wall clock, or a rehearsal clock that starts at a chosen moment and
runs faster: rehearsing a month of schedules on a copy of the store in minutes is an
operator's tool, and it is what lets the crash tests drive dozens of slots in seconds through
the real daemon.

Why not APScheduler's ``CronTrigger.from_crontab``: in the 3.x series it reads day-of-week 0 as
Monday (crontab: Sunday), so ``"0 9 * * 1-5"`` would fire Tuesday to Saturday while the ledger
windows, computed with croniter, say Monday to Friday. :class:`SlotTrigger` hands APScheduler
the very slots :mod:`engine.triggers.schedule` computes, so the two can never disagree.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from engine.core.clock import local_naive
from engine.triggers.schedule import next_slot


@dataclass(frozen=True)
class TimeSource:
    """The schedule clock: the wall clock, or a rehearsal clock running ``speed`` times faster.

    A rehearsal clock reads ``origin`` at wall time ``epoch`` (seconds since 1970). Restarted
    daemons given the same three values agree on the time, so a rehearsal survives restarts.
    Leases, heartbeats and log timestamps stay on the wall clock: they measure real processes.
    """

    origin: dt.datetime | None = None  # aware; None means the wall clock
    epoch: float = 0.0
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.origin is not None and self.origin.tzinfo is None:
            raise ValueError("a rehearsal clock's origin needs a time zone")
        if self.speed <= 0:
            raise ValueError("a rehearsal clock's speed must be positive")

    @property
    def is_wall(self) -> bool:
        return self.origin is None

    @property
    def label(self) -> str:
        """How logs and ``status`` name this clock: ``wall`` or ``rehearsal x<speed>``."""
        return "wall" if self.is_wall else f"rehearsal x{self.speed:g}"

    def now(self) -> dt.datetime:
        """The schedule's current moment (aware, UTC)."""
        return self.from_wall(dt.datetime.now(dt.UTC))

    def from_wall(self, wall: dt.datetime) -> dt.datetime:
        if self.origin is None:
            return wall.astimezone(dt.UTC)
        seconds = (wall.timestamp() - self.epoch) * self.speed
        return (self.origin + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)

    def to_wall(self, moment: dt.datetime) -> dt.datetime:
        if self.origin is None:
            return moment.astimezone(dt.UTC)
        seconds = (moment - self.origin).total_seconds() / self.speed
        return dt.datetime.fromtimestamp(self.epoch + seconds, dt.UTC)

    def wall_seconds(self, schedule_seconds: float) -> float:
        """How long a span of schedule time lasts on the wall clock."""
        return schedule_seconds / (1.0 if self.origin is None else self.speed)

    @classmethod
    def rehearsal(cls, origin: dt.datetime, speed: float, epoch: float | None = None) -> TimeSource:
        return cls(origin=origin, epoch=time.time() if epoch is None else epoch, speed=speed)


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger that fires at a playbook's croniter slots on a :class:`TimeSource`.

    APScheduler asks for the next fire time after the previous one and compares it with the
    wall clock, so slots are mapped to wall time and back. On a rehearsal clock the mapping is
    rounded to whole seconds (slots are whole minutes) so float error can never make a slot
    come back twice.
    """

    __slots__ = ("cron", "time", "tz")

    def __init__(self, cron: str, tz: ZoneInfo, time_source: TimeSource) -> None:
        self.cron = cron
        self.tz = tz
        self.time = time_source

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        base = self.time.from_wall(previous_fire_time or now)
        if previous_fire_time is not None and not self.time.is_wall:
            base = base.replace(microsecond=0) + dt.timedelta(
                seconds=round(base.microsecond / 1_000_000)
            )
        slot = next_slot(self.cron, local_naive(base, self.tz)).replace(tzinfo=self.tz)
        return self.time.to_wall(slot)

    def __str__(self) -> str:
        return f"slots[{self.cron}]"
