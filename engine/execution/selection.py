"""One pass over chosen playbooks at one moment: what ``dry-run``, ``run`` and the console's
audience estimate share, so the console's numbers are the CLI's by construction.

A fault boundary per playbook: one playbook's failure is its own ``Outcome.error``, and the
others are decided as if it were not there.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from engine.core.clock import Clock
from engine.core.errors import EngineError, describe_failure
from engine.execution.executor import Executor, Outcome, by_priority, slot_on
from engine.execution.sinks import RecordingSink, Sink, StoreSink
from engine.playbook.model import Playbook, cron_of
from engine.store.partitions import Partition
from engine.triggers.schedule import Schedule, latest_slot


@dataclass(frozen=True)
class Held:
    """A playbook a gate kept from running (governance: not approved, paused, or changed
    outside the workflow); ``problem`` when it is a fault to report, not a normal state."""

    playbook_id: str
    words: str
    problem: bool


@dataclass
class Selected:
    """What one dry-run or run did: the moment, each playbook's outcome (a failed one carries
    its ``error``), the playbooks not scheduled that day, and the files left out as invalid."""

    moment: dt.datetime
    outcomes: list[Outcome]
    skipped: list[Playbook]
    left_out: list[str] = field(default_factory=list)
    # scheduled playbooks whose latest slot was older than the grace: (playbook, that slot)
    too_old: list[tuple[Playbook, dt.datetime]] = field(default_factory=list)
    # kept from running by governance (engine/governance/gate.py), each with its reason
    held: list[Held] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    def check(self) -> None:
        """Exit 1 (after the report was shown) when any playbook was left out or failed."""
        problems = []
        if self.left_out:
            problems.append(f"{len(self.left_out)} invalid file(s) left out")
        changed = [h.playbook_id for h in self.held if h.problem]
        if changed:
            problems.append(
                f"{len(changed)} playbook(s) changed outside the workflow and not run: "
                + ", ".join(changed)
            )
        if self.failed:
            problems.append(
                f"{len(self.failed)} playbook(s) failed: "
                + ", ".join(o.playbook.id for o in self.failed)
            )
        if problems:
            raise EngineError(
                "; ".join(problems) + "; every other playbook ran",
                code="E0305",
                hint="the report above says where; fix those and run again",
            )


def decide(
    store: Engine,
    executor: Executor,
    playbooks: Sequence[Playbook],
    moment: dt.datetime,
    *,
    whole_day: bool,
    dry_run: bool,
    mask: bool,
    evaluator: str = "sql",
    left_out: Sequence[str] = (),
    grace: dt.timedelta | None = None,
    partition: Partition | None = None,
) -> Selected:
    """Decide the scheduled ``playbooks`` at ``moment`` (each at its own slot that day when
    ``whole_day``), previewing (``dry_run``) or writing ledger, outbox and tasks.

    ``grace``: a playbook whose latest slot is older than this at ``moment`` is not run but
    listed in ``too_old`` (the daemon's misfire rule: a one-off run must not act on a
    quarterly slot weeks late).

    ``partition``: decide only that share of the customers (``run --partition k/K``)."""
    tz = executor.settings.timezone
    # event playbooks act when events arrive: `events dry-run FILE` previews them
    scheduled = [p for p in playbooks if isinstance(p.trigger, Schedule)]
    selected = Selected(moment, [], [], sorted(left_out))
    previewed: Counter[tuple[str, str]] = Counter()  # caps see earlier playbooks' messages

    shared = executor.one_pass(scheduled)
    for playbook in by_priority(scheduled):
        at = slot_on(playbook, moment.date(), tz) if whole_day else moment
        if at is None:
            selected.skipped.append(playbook)
            continue
        if grace is not None:
            slot = latest_slot(cron_of(playbook) or "", at.astimezone(tz).replace(tzinfo=None))
            if at.astimezone(tz).replace(tzinfo=None) - slot > grace:
                selected.too_old.append((playbook, slot.replace(tzinfo=tz)))
                continue
        clock = Clock.at(at, tz)
        sink: Sink = RecordingSink(mask=mask, contacts=previewed) if dry_run else StoreSink(store)
        try:
            outcome = executor.execute(
                playbook,
                clock,
                sink,
                keep_details=dry_run,
                evaluator=evaluator,
                shared=shared,
                partition=partition,
            )
        except Exception as exc:  # a fault boundary: one playbook's failure is its own
            # recorded `failed` in runs by the sink; the other playbooks are decided as if
            # this one were not there
            outcome = Outcome.failed(playbook, clock, describe_failure(exc))
        selected.outcomes.append(outcome)
    return selected
