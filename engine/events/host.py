"""Event playbooks inside the daemon: stored events processed as they arrive, absence
windows closed by the clock, hot reload, and a takeover that survives kill -9.

Events reach the store through ``events ingest``, ``events serve`` or the daemon's own HTTP
endpoint. The daemon holding the lease on the processing cursor (:mod:`engine.events.cursor`)
reads every event stored after the cursor, in arrival order, feeds it to its
:class:`~engine.events.processor.EventProcessor`, acts on the matches, and then moves the
cursor. Every cycle also closes the absence windows due by the daemon's clock, so a
``then_not … within: 7d`` fires when the week ends even if no further event arrives.

After a crash nothing is trusted from memory: the daemon that takes the lease next (the
restarted one, or a standby) rebuilds the windows from stored events (the last two windows,
plus everything after the cursor whatever its age). A match is recorded in ``event_matches``
and the ledger window is ``event:<first event id>``, so a match handled before the crash is
not handled again, and one completed but not yet handled is handled now.

A sequence number is given out before its transaction commits, so a concurrent writer can
leave a gap that it fills a moment later; the host remembers such gaps for a while and reads
them again (``HOLE_WAIT``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine

from engine.core.clock import utc_now
from engine.core.dictionary import DataDictionary
from engine.core.observability import error_text, event
from engine.core.settings import Settings
from engine.events import cursor
from engine.events.processor import EventProcessor, Handled, Report
from engine.events.store import stored_after
from engine.execution.executor import Executor
from engine.playbook.model import Playbook
from engine.rendering.renderer import Renderer
from engine.triggers.event import EventTrigger
from engine.triggers.event_model import Event

HOLE_WAIT = 30.0  # wall seconds a gap in seq is read again before it counts as never filled
MAX_HOLES = 10_000
BATCH = 1000

Loaded = Sequence[tuple[Playbook, Executor]]


class EventHost:
    """The event side of one daemon. :meth:`cycle` is called from one job thread; the HTTP
    endpoint calls :meth:`process`; :meth:`offer` comes from the reload thread."""

    def __init__(
        self,
        store: Engine,
        settings: Settings,
        dictionary: DataDictionary,
        *,
        owner: str,
        clock: Callable[[], dt.datetime],
        lease: dt.timedelta,
        log: logging.Logger,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dictionary = dictionary
        self.owner = owner
        self.clock = clock
        self.lease = lease
        self.log = log
        self.batch = batch
        self.lock = threading.Lock()  # one cycle at a time; guards the processor
        self.stopping = threading.Event()
        self.processor: EventProcessor | None = None  # set while this daemon holds the lease
        self.cursor = 0
        self.holes: dict[int, float] = {}  # seq -> monotonic time to give up on it
        self._offer_lock = threading.Lock()
        self._loaded: list[tuple[Playbook, Executor]] = []
        self._pending = False
        self._offered = False  # no cycle before the daemon's first reload said what to host
        self._intake: EventProcessor | None = None

    # --- called by the daemon ----------------------------------------------------------------

    def offer(self, loaded: Loaded) -> None:
        """The daemon's current good versions (after a reload); event playbooks are kept and
        applied at the start of the next cycle, on the cycle's thread."""
        wanted = [(p, ex) for p, ex in loaded if isinstance(p.trigger, EventTrigger) and p.enabled]
        with self._offer_lock:
            self._loaded = wanted
            self._pending = self._offered = True

    def cycle(self) -> Report:
        """Hold (or take) the lease, process what was stored since the cursor, close due
        windows. Errors are logged; the next cycle rebuilds from the store."""
        report = Report()
        with self.lock:
            self._guarded(report)
        return report

    def _guarded(self, report: Report) -> None:
        if self.stopping.is_set() or not self._offered:
            return
        try:
            self._cycle(report)
        except Exception as exc:  # the database is down, a rule failed: rebuild later
            self.processor = None
            event(self.log, "events.error", logging.ERROR, error=error_text(exc))
        if report.handled:
            matches = report.summary()["matches"]
            event(self.log, "events.handled", events=report.accepted, **matches)

    def process(self, items: Iterable[tuple[str, Any]], now: dt.datetime) -> Report:
        """The daemon's HTTP endpoint: check and store the events, then run a cycle so the
        answer carries the matches they completed (when this daemon holds the lease; a
        standby only stores them, and the holder acts on them within a cycle)."""
        with self.lock:  # stored and processed in one go: the answer has their matches
            if self._intake is None:
                self._intake = self._new_processor()
            report, _new = self._intake.accept(items, now)
            processed = Report()
            self._guarded(processed)
        report.handled += processed.handled
        return report

    def tick(self, now: dt.datetime) -> list[Handled]:
        """For the HTTP server's own timer: a cycle (it closes due windows)."""
        return self.cycle().handled

    def stop(self) -> None:
        """No new cycle; the lease is given up so a standby takes over at once."""
        self.stopping.set()
        with self.lock:
            if self.processor is not None:
                try:
                    with self.store.begin() as conn:
                        cursor.release(conn, self.owner)
                except Exception as exc:
                    event(self.log, "events.error", logging.ERROR, error=error_text(exc))
            self.processor = None

    def state(self) -> dict[str, Any]:
        """For ``status``: whether this daemon hosts the event playbooks, and which."""
        with self._offer_lock:
            ids = sorted(p.id for p, _ex in self._loaded)
        return {
            "hosting": self.processor is not None,
            "playbooks": ids,
            "cursor": self.cursor,
        }

    # --- internals ---------------------------------------------------------------------------

    def _cycle(self, report: Report) -> None:
        with self.store.begin() as conn:
            stored = cursor.acquire(conn, self.owner, utc_now(), self.lease)
        if stored is None:
            if self.processor is not None:
                event(self.log, "events.lease_lost", logging.WARNING, owner=self.owner)
            self.processor = None
            return
        now = self.clock()
        if self.processor is None:
            report.handled += self._take_over(stored, now)
        else:
            self._apply_offer(now)
        processor = self.processor
        assert processor is not None
        while not self.stopping.is_set():
            with self.store.connect() as conn:
                rows = stored_after(conn, self.cursor, self._waiting(), self.batch)
            if not rows:
                break
            events: list[Event] = [e for _seq, e in rows]
            report.handled += processor.act_on(events, now)
            report.accepted += len(events)
            self._advance([seq for seq, _e in rows])
            if not self._save():
                return
            if len(rows) < self.batch:
                break
        report.handled += processor.tick(now)
        self._save()

    def _take_over(self, stored: int, now: dt.datetime) -> list[Handled]:
        with self._offer_lock:
            loaded, self._pending = list(self._loaded), False
        processor = self._new_processor()
        replayed = processor.restore(
            [p for p, _ex in loaded],
            now,
            after_seq=stored,
            executors={p.id: ex for p, ex in loaded},
        )
        self.processor = processor
        self.cursor, self.holes = stored, {}
        if processor.replayed_after:  # read by the replay; gaps among them are read again
            self._advance(processor.replayed_after)
        self._save()
        event(
            self.log,
            "events.hosting",
            owner=self.owner,
            playbooks=sorted(p.id for p, _ex in loaded),
            replayed=replayed,
            cursor=self.cursor,
        )
        return processor.replay_handled

    def _apply_offer(self, now: dt.datetime) -> None:
        with self._offer_lock:
            if not self._pending:
                return
            loaded, self._pending = list(self._loaded), False
        assert self.processor is not None
        fresh = self.processor.reload(
            [p for p, _ex in loaded],
            now,
            executors={p.id: ex for p, ex in loaded},
            until_seq=self.cursor,
        )
        if fresh:
            event(self.log, "events.reloaded", playbooks=sorted(fresh))

    def _new_processor(self) -> EventProcessor:
        renderer = Renderer(self.settings.templates_dir, self.dictionary)
        return EventProcessor(self.store, self.settings, self.dictionary, renderer)

    def _waiting(self) -> list[int]:
        now = time.monotonic()
        self.holes = {s: until for s, until in self.holes.items() if until > now}
        return sorted(self.holes)

    def _advance(self, seqs: list[int]) -> None:
        for s in seqs:
            self.holes.pop(s, None)
        top = max(seqs)
        if top <= self.cursor:
            return
        got = set(seqs)
        until = time.monotonic() + HOLE_WAIT
        start = max(self.cursor + 1, top - MAX_HOLES)
        for s in range(start, top):
            if s not in got:
                self.holes[s] = until
        self.cursor = top

    def _save(self) -> bool:
        with self.store.begin() as conn:
            kept = cursor.advance(conn, self.owner, self.cursor, utc_now(), self.lease)
        if not kept:
            event(self.log, "events.lease_lost", logging.WARNING, owner=self.owner)
            self.processor = None
        return kept
