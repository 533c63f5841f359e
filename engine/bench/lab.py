"""What every section needs: the store, the shipped pack validated, and the run's moment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine

from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary, load_dictionary
from engine.core.settings import Settings
from engine.execution.executor import Executor, by_priority, slot_on
from engine.playbook.model import Playbook
from engine.playbook.validation import Validator
from engine.rendering.renderer import Renderer
from engine.store.db import open_store
from engine.triggers.schedule import Schedule

AS_OF = dt.date(2026, 10, 12)
"""A Monday and a workday in the first month of a quarter: every shipped scheduled playbook
runs that day (2026-10-05, the Monday before, is inside the National Day holiday, where the
workday-only playbooks would have nothing to do)."""


@dataclass
class Lab:
    store: Engine
    settings: Settings
    dictionary: DataDictionary
    renderer: Renderer
    scheduled: list[Playbook]  # enabled, by priority: the order a run takes them in
    event_driven: list[Playbook]
    day: dt.date

    @classmethod
    def open(cls, url: str, settings: Settings, day: dt.date = AS_OF) -> Lab:
        dictionary = load_dictionary(settings.dictionary_path)
        validator = Validator(settings, dictionary)
        catalog = validator.validate_paths([settings.playbooks_dir])
        enabled = [p for p in catalog.playbooks if p.enabled]
        return cls(
            store=open_store(url),
            settings=settings,
            dictionary=dictionary,
            renderer=validator.renderer,
            scheduled=by_priority([p for p in enabled if isinstance(p.trigger, Schedule)]),
            event_driven=[p for p in enabled if not isinstance(p.trigger, Schedule)],
            day=day,
        )

    def executor(self) -> Executor:
        return Executor(self.store, self.settings, self.dictionary, self.renderer)

    def clock(self, playbook: Playbook) -> Clock:
        """The playbook's own slot on the day (as a whole-day dry-run takes it); 10:00 for a
        playbook not scheduled that day or driven by events, so it is measured all the same."""
        tz = self.settings.timezone
        at = None
        if isinstance(playbook.trigger, Schedule):
            at = slot_on(playbook, self.day, tz)
        return Clock.at(at or dt.datetime.combine(self.day, dt.time(10), tz), tz)
