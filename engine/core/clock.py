"""The run's notion of "now", in the bank's time zone.

Customer timestamps are naive local times, so every relative condition is computed against
the naive local ``now`` and ``today`` of the run's ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Clock:
    as_of: dt.datetime  # aware

    @classmethod
    def at(cls, as_of: dt.datetime, tz: ZoneInfo) -> Clock:
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=tz)
        return cls(as_of.astimezone(tz))

    @property
    def now(self) -> dt.datetime:
        """Naive local time, comparable with the store's timestamps."""
        return self.as_of.replace(tzinfo=None)

    @property
    def today(self) -> dt.date:
        return self.as_of.date()

    def utc_naive(self) -> dt.datetime:
        return self.as_of.astimezone(dt.UTC).replace(tzinfo=None)
