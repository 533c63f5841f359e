"""Evaluate → gate → render → sink: one code path for dry-run and run.

The audience runs inside the database as one parameterised query and is streamed in
batches; each batch gets the contact policy from a few set-based queries (window, cooldown,
run cap, then per action: consent, address, open tasks, frequency caps, quiet hours, and last
the holdout bucket for a customer with something left to do), its actions are rendered and
handed to the sink. Held-out customers take a slot of the run cap, like the acted on.

Two databases may serve a run (docs/scaling.md): the *bank's data* (the audience, tags,
related rows, context selections, data-issue counts) is read through ``facts`` connections
to a streaming replica when one is configured, and everything the policy must see current
(ledger, cooldowns, frequency caps, open tasks, consent before a message is queued) through
the ``gate`` connection to the primary, where the sink writes too. A preview's sink queues
nothing, so its consent is read with the bank's data. Without a replica both are the primary,
as before.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, column, select, table
from sqlalchemy.sql import Select

from engine.actions import REGISTRY
from engine.actions.base import Effect, RunContext, Skipped, Subject
from engine.actions.reads import actions_read
from engine.conditions.ast import EVERYONE
from engine.conditions.bounds import estimated_days_in
from engine.conditions.context import fetch as fetch_context
from engine.conditions.facts import filter_batch
from engine.conditions.quality import SharedIssues, data_issues
from engine.conditions.sql import SqlCompiler
from engine.core.addresses import valid_email, valid_phone
from engine.core.calendarfile import work_calendar
from engine.core.clock import Clock
from engine.core.dictionary import DataDictionary, Field
from engine.core.errors import TemplateError, describe_failure
from engine.core.masking import mask_values
from engine.core.settings import Settings
from engine.core.workcalendar import WorkCalendar
from engine.execution.batch import Batch
from engine.execution.sinks import Decision, RunInfo, RunTotals, Sink
from engine.playbook.model import Playbook
from engine.policy import (
    ALREADY_DONE,
    COOLDOWN,
    HELD_OUT,
    MAX_PER_RUN,
    Policy,
    already_done,
    done_in_windows,
    held_out,
    in_cooldown,
    load_policy,
)
from engine.policy.batch import BatchGate
from engine.policy.consent import consent_channels
from engine.policy.gate import WECOM_KIND
from engine.rendering.renderer import Renderer, template_context
from engine.store.partitions import Partition
from engine.store.replica import ReplicaReads
from engine.triggers.schedule import Schedule, first_slot_on, window_at

BATCH_SIZE = 1000
NO_ACTION_LEFT = "no_action_left"  # a customer every one of whose actions was held back
RENDER_ERROR = "render_error"  # this customer's text failed to render: that action is held back


@dataclass
class Outcome:
    """What one playbook did (or would do) in one run."""

    playbook: Playbook
    window: str
    as_of: dt.datetime
    sql: str
    matched: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    matched_count: int = 0
    acted: int = 0
    held_out: int = 0  # in the holdout group: recorded, nothing done
    customers_suppressed: int = 0  # matched, not held out, and nothing done
    suppressed: Counter[str] = field(default_factory=Counter)
    # customers with nothing done, by the first whole-customer reason, else the one reason
    # all their actions were held back for, else "no_action_left": held_out + these + acted
    # = matched
    held_back_by: Counter[str] = field(default_factory=Counter)
    # (action kind, reason) for actions held back one by one, acted customers included
    actions_held_back: Counter[tuple[str, str]] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)
    run_id: int | None = None
    # field -> {"empty": n, "malformed": m, "implausible": k}: customers decided without a
    # usable value
    data_issues: dict[str, dict[str, int]] = field(default_factory=dict)
    # "sms birthday.sms.j2: PB0124 TypeError" -> customers whose text failed that way; never
    # the failing value itself (it may be personal data)
    render_errors: Counter[str] = field(default_factory=Counter)
    # field -> customers whose phone / e-mail could not be sent to (held back as no_phone …)
    bad_addresses: Counter[str] = field(default_factory=Counter)
    # why the run failed (located, one line): nothing of it was decided
    error: str | None = None
    # days its calendar conditions rested on that the holiday calendar only estimates
    estimated_days: tuple[dt.date, ...] = ()
    # policy held it for those days (calendar.on_estimated_day: hold): nothing was decided
    held_for_estimate: bool = False
    # where the bank's data was read: "primary", or "replica" (see ReplicaReads)
    read_from: str = "primary"
    # --partition k/K: this run saw only that share of the customers (engine/store/partitions)
    partition: Partition | None = None
    # limits.max_per_run for this run: the playbook's, or the partition's share of it
    cap: int | None = None

    @classmethod
    def failed(cls, playbook: Playbook, clock: Clock, error: str) -> Outcome:
        """The outcome of a playbook whose run failed: no decisions, and why."""
        try:
            window = window_of(playbook, clock)
        except TypeError:
            window = ""
        return cls(playbook=playbook, window=window, as_of=clock.as_of, sql="", error=error)


def render_error_key(kind: str, exc: TemplateError) -> str:
    """How a failed text is counted and shown: action, template and error code, and the kind of
    failure, never the message (it may quote the customer's value)."""
    cause = exc.__cause__
    what = f" {type(cause).__name__}" if cause is not None and exc.code == "PB0124" else ""
    return f"{kind} {exc.where or 'text'}: {exc.code}{what}"


def window_of(playbook: Playbook, clock: Clock) -> str:
    """The schedule slot ``as_of`` falls in: the latest cron fire at or before it."""
    return window_at(_cron(playbook), clock.now)


def by_priority(playbooks: Sequence[Playbook]) -> list[Playbook]:
    """Highest priority first (stable): when frequency caps leave room for only one message,
    the more important playbook, run first, takes it."""
    return sorted(playbooks, key=lambda p: -p.priority)


def slot_on(playbook: Playbook, day: dt.date, tz: ZoneInfo) -> dt.datetime | None:
    """The playbook's first scheduled moment on ``day`` (aware), or None if it does not run."""
    fire = first_slot_on(_cron(playbook), day)
    return None if fire is None else fire.replace(tzinfo=tz)


def _cron(playbook: Playbook) -> str:
    if not isinstance(playbook.trigger, Schedule):  # event playbooks have no slots
        raise TypeError(f"playbook {playbook.id} is triggered by events, not a schedule")
    return playbook.trigger.cron


class Executor:
    def __init__(
        self,
        store: Engine,
        settings: Settings,
        dictionary: DataDictionary,
        renderer: Renderer,
        policy: Policy | None = None,
        replica: ReplicaReads | None = None,
    ) -> None:
        self.store = store
        # bank-data reads go where this says, run by run; the gate and the sink stay on store
        self.replica = replica
        self.settings = settings
        self.dictionary = dictionary
        self.renderer = renderer
        # the deployment's contact policy unless a caller (a test) passes its own
        self.policy = policy if policy is not None else load_policy(settings.policy_path)
        self.scalar_fields = [f for f in dictionary if f.type != "tags"]
        self.tag_fields = [f for f in dictionary if f.type == "tags"]
        self._reads: dict[int, tuple[Playbook, list[Field], list[Field]]] = {}

    def calendar(self) -> WorkCalendar:
        """The deployment's holiday calendar (its files re-read when they change)."""
        return work_calendar(self.settings.calendar_dir)

    def bank(self) -> Engine:
        """Where the bank's data is read for the next run: the replica while it is fit (see
        :class:`ReplicaReads`), else the primary; the policy gate always reads the primary."""
        return self.replica.source() if self.replica is not None else self.store

    @contextmanager
    def connections(self, bank: Engine) -> Iterator[tuple[Connection, Connection, Connection]]:
        """(reader, facts, gate): the audience's streaming connection and one for the rest of
        the bank's data, both on ``bank``; the policy's on the primary. Without a replica
        facts is the gate, one connection fewer, as before replicas."""
        with ExitStack() as stack:
            reader = stack.enter_context(bank.connect())
            gate = stack.enter_context(self.store.connect())
            facts = gate if bank is self.store else stack.enter_context(bank.connect())
            yield reader, facts, gate

    def reads(self, playbook: Playbook) -> tuple[list[Field], list[Field]]:
        """(scalar fields, tag fields) a run of ``playbook`` reads: what its actions and their
        templates name, every field when a template may read any. An audience row carries
        these alone; most playbooks use five or six of the dictionary's fields, and the rest
        include lookups into other tables, paid per row."""
        known = self._reads.get(id(playbook))
        if known is None:
            named = actions_read(playbook.actions, self.dictionary, self.renderer)
            scalar, tags = self.scalar_fields, self.tag_fields
            if named is not None:
                scalar = [f for f in scalar if f.key in named]
                tags = [f for f in tags if f.key in named]
            known = self._reads[id(playbook)] = (playbook, scalar, tags)
        return known[1], known[2]

    def audience_query(
        self,
        playbook: Playbook,
        clock: Clock,
        customer_ids: Sequence[str] | None = None,
        partition: Partition | None = None,
    ) -> Select[*tuple[Any, ...]]:
        """The audience with the fields a run reads (see :meth:`reads`); with a partition,
        only its customers: one more WHERE term, so nothing downstream knows."""
        compiler = SqlCompiler(self.dictionary, clock)
        query = compiler.audience(playbook.audience, self.reads(playbook)[0])
        if customer_ids is not None:  # an event matched these customers: only they qualify
            query = query.where(compiler.key_in(customer_ids))
        if partition is not None:
            query = query.where(partition.where(self.dictionary))
        return query

    def execute(
        self,
        playbook: Playbook,
        clock: Clock,
        sink: Sink,
        *,
        keep_details: bool = False,
        batch_size: int = BATCH_SIZE,
        evaluator: str = "sql",
        customer_ids: Sequence[str] | None = None,
        window: str | None = None,
        windows: Mapping[str, str] | None = None,
        variables: Mapping[str, Mapping[str, Any]] | None = None,
        shared: SharedIssues | None = None,
        partition: Partition | None = None,
    ) -> Outcome:
        """``evaluator="python"`` scans every customer in batches and decides the audience
        with the reference evaluator instead of SQL, to compare the two (slow; reports the
        SQL all the same). ``customer_ids`` restricts the audience to those customers and
        ``window`` replaces the schedule slot as the ledger's window (event playbooks).
        ``windows`` gives each customer their own ledger window and restricts the audience to
        them: one run acts on a whole batch of event matches, each exactly once.
        ``variables``: per customer, more template variables (``event`` of a match).
        ``shared``: the data-issue counts of a pass over several playbooks (:meth:`one_pass`).
        ``partition``: decide only that share of the customers, with its share of
        ``max_per_run`` (:meth:`Partition.share`), so K partitions add up to one run."""
        if windows is not None:
            customer_ids = list(windows)
            window = window or next(iter(windows.values()), None)
        bank = self.bank()  # before the run is recorded: a replica refused is no run
        clock = clock.using(self.calendar())  # the deployment's calendar decides workdays
        query = self.audience_query(playbook, clock, customer_ids, partition)
        scan = query
        if evaluator == "python":
            scan = SqlCompiler(self.dictionary, clock).audience(EVERYONE, self.scalar_fields)
            if partition is not None:
                scan = scan.where(partition.where(self.dictionary))
        outcome = Outcome(
            playbook=playbook,
            window=window if window is not None else window_of(playbook, clock),
            as_of=clock.as_of,
            sql=str(query.compile(self.store, compile_kwargs={"literal_binds": False})),
            read_from="primary" if bank is self.store else "replica",
            partition=partition,
        )
        cap = playbook.limits.max_per_run
        outcome.cap = partition.share(cap) if partition is not None else cap
        now_utc = clock.utc_naive()
        info = RunInfo(
            playbook_id=playbook.id,
            window=outcome.window,
            content_hash=playbook.content_hash,
            run_id=None,
            # the run's moment, not the wall clock: cooldowns and caps count in as_of time
            now_utc=now_utc,
            not_before_utc=now_utc,
            priority=playbook.priority,
            category=playbook.category,
            version_hash=playbook.version_hash,
        )
        outcome.estimated_days = estimated_days_in(playbook.audience, clock)
        sink.start(info)
        outcome.run_id = info.run_id
        if outcome.estimated_days and self.policy.on_estimated_day == "hold":
            outcome.held_for_estimate = True  # recorded as a run that decided no one
            sink.finish(info, self._totals(outcome), error=None)
            return outcome
        try:
            # the reader may hold a server-side cursor: close it even when a batch fails
            with (
                self.connections(bank) as (reader, facts, gate),
                closing(self.batches(reader, scan, batch_size)) as batches,
            ):
                outcome.data_issues = data_issues(
                    facts, self.dictionary, clock, playbook.audience, customer_ids, shared
                )
                for batch in batches:
                    if evaluator == "python":  # the reference evaluator tests every field
                        rows = batch.dicts()
                        self.attach_tags(facts, rows)
                        kept = filter_batch(facts, self.dictionary, playbook.audience, clock, rows)
                        every = [*batch.keys, *(f.key for f in self.tag_fields)]
                        batch = Batch.of(kept, every)
                    elif not _cap_full(outcome):
                        batch.tags = self.tags(facts, batch.ids, self.reads(playbook)[1])
                    planned = sink.planned
                    decisions = self._decide(
                        playbook,
                        clock,
                        gate,
                        facts,
                        batch,
                        outcome,
                        sink.mask,
                        planned,
                        windows,
                        variables,
                        # consent before a message is queued: on the primary, always
                        consent_conn=gate if sink.queues else facts,
                    )
                    gate.rollback()  # end the read snapshot; the next batch sees new writes
                    if facts is not gate:
                        # a standby cancels queries whose snapshot holds back replay for long
                        facts.rollback()
                    lost = sink.write(info, decisions)
                    self._count(outcome, decisions, lost, keep_details)
        except Exception as exc:
            sink.finish(info, self._totals(outcome), error=describe_failure(exc))
            raise
        sink.finish(info, self._totals(outcome), error=None)
        return outcome

    def one_pass(self, playbooks: Sequence[Playbook]) -> SharedIssues:
        """What the playbooks of one pass (a dry-run or run of the pack) share: the customer
        table's data issues, counted once for every field they test instead of once each."""
        return SharedIssues.of(self.dictionary, (p.audience for p in playbooks))

    # --- stages ----------------------------------------------------------------------------

    def batches(
        self, conn: Connection, query: Select[*tuple[Any, ...]], size: int = BATCH_SIZE
    ) -> Generator[Batch, None, None]:
        """The audience in batches of rows as the database returns them (see :class:`Batch`)."""
        result = conn.execution_options(yield_per=size).execute(query)
        keys = tuple(result.keys())[1:]  # after _key
        try:
            for partition in result.partitions(size):
                yield Batch(keys, partition)
        finally:
            result.close()

    def tags(
        self, conn: Connection, ids: Sequence[str], fields: Sequence[Field]
    ) -> dict[str, dict[str, list[str]]]:
        """tag field -> customer -> labels, one query per tag field for the batch."""
        out: dict[str, dict[str, list[str]]] = {}
        for f in fields:
            assert f.tags is not None
            t = table(f.tags.table, column(f.tags.key), column(f.tags.column))
            found = out[f.key] = {}
            query = select(t.c[f.tags.key], t.c[f.tags.column]).where(
                t.c[f.tags.key].in_(list(ids))
            )
            for key, tag in conn.execute(query):
                found.setdefault(str(key), []).append(tag)
        return out

    def attach_tags(
        self, conn: Connection, rows: list[dict[str, Any]], fields: Sequence[Field] | None = None
    ) -> None:
        """Each row's tag fields (``fields``, default all) as sorted labels (explain reads one
        customer the way a run reads a batch)."""
        every = self.tag_fields if fields is None else fields
        found = self.tags(conn, [str(r["_key"]) for r in rows], every)
        for key, by_customer in found.items():
            for r in rows:
                r[key] = sorted(by_customer.get(str(r["_key"]), []))

    def _decide(
        self,
        playbook: Playbook,
        clock: Clock,
        conn: Connection,
        facts: Connection,
        batch: Batch,
        outcome: Outcome,
        mask: bool,
        planned: Counter[tuple[str, str]] | None = None,
        windows: Mapping[str, str] | None = None,
        variables: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        consent_conn: Connection | None = None,
    ) -> list[Decision]:
        ids = batch.ids
        if windows is None:
            done = already_done(conn, playbook.id, outcome.window, ids)
        else:
            done = done_in_windows(conn, playbook.id, {c: windows[c] for c in ids})
        cooling: set[str] = set()
        if playbook.limits.once_per_customer:
            since = clock.utc_naive() - playbook.limits.once_per_customer
            cooling = in_cooldown(conn, playbook.id, ids, since)
        if _cap_full(outcome):
            # nobody in this batch can be acted on: the reasons need no policy, no texts
            decisions = [
                Decision(cid, (), ((None, ALREADY_DONE if cid in done else COOLDOWN),))
                if cid in done or cid in cooling
                else Decision(cid, (), ((None, MAX_PER_RUN),))
                for cid in ids
            ]
            if windows is not None:
                decisions = [replace(d, window=windows[d.customer_id]) for d in decisions]
            return decisions
        kinds = [REGISTRY[a.kind] for a in playbook.actions]
        gate = BatchGate.load(
            conn,
            self.policy,
            clock,
            category=playbook.category,
            quiet_mode=playbook.limits.quiet_hours,
            customer_ids=ids,
            consent_channels=consent_channels(playbook.actions, playbook.category),
            message_channels={ch for k in kinds if (ch := k.channel) is not None},
            wants_tasks=any(a.kind == "task" for a in playbook.actions),
            wants_wecom=any(a.kind == WECOM_KIND for a in playbook.actions),
            planned=planned,
            priority=playbook.priority,
            consent_conn=consent_conn,
        )
        run = RunContext(
            settings=self.settings,
            dictionary=self.dictionary,
            renderer=self.renderer,
            clock=clock,
            playbook_id=playbook.id,
            category=playbook.category,
            texts=self.policy.texts,
            priority=playbook.priority,
            workday_ends=self.policy.tasks.working_hours.end,
        )
        cap = outcome.cap
        related = fetch_context(facts, playbook.context, self.dictionary, clock, ids)
        decisions = []
        # slots of the run cap taken: by earlier batches, and by this one as it goes
        taken = outcome.acted + outcome.held_out
        for index, cid in enumerate(ids):
            if cid in done:
                decisions.append(Decision(cid, (), ((None, ALREADY_DONE),)))
            elif cid in cooling:
                decisions.append(Decision(cid, (), ((None, COOLDOWN),)))
            elif cap is not None and taken >= cap:
                decisions.append(Decision(cid, (), ((None, MAX_PER_RUN),)))
            else:
                found = {name: by_customer.get(cid, []) for name, by_customer in related.items()}
                extra = variables.get(cid) if variables is not None else None
                values = batch.values(index)
                decision = self._act(
                    playbook,
                    run,
                    values,
                    cid,
                    gate,
                    mask,
                    found,
                    extra,
                    outcome.render_errors,
                    outcome.bad_addresses,
                )
                # the holdout is drawn last, among the customers who would be acted on, so it
                # is a random share of the would-be treated. What the gate reserved for this
                # customer is theirs alone and read for no one else; dropping the effects is
                # enough: no outbox row, no task, no cap room, nothing displaced
                if decision.effects and held_out(playbook.id, cid, playbook.holdout_percent):
                    decision = Decision(cid, (), (), held_out=True)
                taken += bool(decision.effects or decision.held_out)
                decisions.append(decision)
        if windows is not None:
            decisions = [replace(d, window=windows[d.customer_id]) for d in decisions]
        return decisions

    def _act(
        self,
        playbook: Playbook,
        run: RunContext,
        values: dict[str, Any],
        cid: str,
        gate: BatchGate,
        mask: bool,
        rows: Mapping[str, list[dict[str, Any]]],
        extra: Mapping[str, Any] | None = None,
        render_errors: Counter[str] | None = None,
        bad_addresses: Counter[str] | None = None,
    ) -> Decision:
        values = self._usable_addresses(playbook, values, bad_addresses)
        if mask:
            values = mask_values(values, self.dictionary)
            rows = {
                s.name: [
                    mask_values(r, self.dictionary.related[s.source].scope) for r in rows[s.name]
                ]
                for s in playbook.context
            }
        context = template_context(
            values,
            playbook_id=playbook.id,
            playbook_title=playbook.title,
            bank_name=self.settings.bank_name,
            now=run.clock.now,
            rows=rows,
        )
        if extra:
            context.update(extra)
        subject = Subject(customer_id=cid, values=values, context=context)
        effects: list[Effect] = []
        suppressed: list[tuple[str | None, str]] = []
        for index, action in enumerate(playbook.actions):
            try:
                result = REGISTRY[action.kind].effect(action, index, subject, run)
            except TemplateError as exc:
                # one customer's value a template cannot take is this customer's problem
                if render_errors is not None:
                    render_errors[render_error_key(action.kind, exc)] += 1
                suppressed.append((action.kind, RENDER_ERROR))
                continue
            if isinstance(result, Skipped):
                suppressed.append((action.kind, result.reason))
                continue
            admitted = gate.admit(result)
            if isinstance(admitted, str):
                suppressed.append((action.kind, admitted))
            else:
                effects.append(admitted)
        return Decision(cid, tuple(effects), tuple(suppressed))

    def _usable_addresses(
        self, playbook: Playbook, values: dict[str, Any], bad: Counter[str] | None
    ) -> dict[str, Any]:
        """The customer's values with a phone or e-mail this playbook would send to, but cannot,
        read as none (the action is then held back as no_phone / no_email), counted by field.
        Checked before masking: a masked value would never look like a number."""
        sends = {REGISTRY[a.kind].channel for a in playbook.actions}
        for channel, check in (("sms", valid_phone), ("email", valid_email)):
            key = self.dictionary.channels.get(channel)
            if channel not in sends:
                continue
            if key is None or values.get(key) in (None, ""):
                continue
            if not check(values[key]):
                values = {**values, key: None}
                if bad is not None:
                    bad[key] += 1
        return values

    def _count(
        self,
        outcome: Outcome,
        decisions: Sequence[Decision],
        lost: set[str],
        keep_details: bool,
    ) -> None:
        for d in decisions:
            outcome.matched_count += 1
            if d.customer_id in lost:
                d = Decision(d.customer_id, (), ((None, ALREADY_DONE),))
            whole = None
            for kind, reason in d.suppressed:
                outcome.suppressed[reason] += 1
                if kind is None:
                    whole = whole or reason
                else:
                    outcome.actions_held_back[(kind, reason)] += 1
            if d.held_out:
                outcome.held_out += 1
            elif d.effects:
                outcome.acted += 1
                for e in d.effects:
                    outcome.effects[e.kind] += 1
            else:
                outcome.customers_suppressed += 1
                # one reason for every action (an SMS-only playbook without consent) says
                # more than "nothing left"; mixed reasons are listed under the actions
                single = {reason for kind, reason in d.suppressed if kind is not None}
                reason = whole or (single.pop() if len(single) == 1 else NO_ACTION_LEFT)
                outcome.held_back_by[reason] += 1
            if keep_details:
                outcome.matched.append(d.customer_id)
                outcome.decisions.append(d)

    # --- run records -----------------------------------------------------------------------

    @staticmethod
    def _totals(outcome: Outcome) -> RunTotals:
        return RunTotals(
            matched=outcome.matched_count,
            acted=outcome.acted,
            # held-out customers are part of the funnel: recorded beside the reasons
            suppressed={
                **outcome.suppressed,
                **({HELD_OUT: outcome.held_out} if outcome.held_out else {}),
            },
            data_issues=dict(sorted(outcome.data_issues.items())),
        )


def _cap_full(outcome: Outcome) -> bool:
    """Whether earlier batches took every slot of ``max_per_run`` (this run's: a partition's
    share): the rest of the audience is only counted (already done, cooling down, or over the
    cap), never gated or rendered."""
    cap = outcome.cap
    return cap is not None and outcome.acted + outcome.held_out >= cap
