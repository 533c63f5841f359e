"""Tables of the customer store and of the engine.

The customer tables (branches … consents) are the bank's data: the engine only reads them,
through the data dictionary. The demo generator and the importers fill them. The engine-owned
tables (runs, action_ledger, outbox, tasks, suppressions, engine_tags, and the scheduler's
run_claims, schedule_state, daemons and partition_scheme) are the only ones the engine writes.

Conventions:
- Customer-side timestamps are naive local times in the bank's time zone (config.timezone),
  the way core banking systems keep them; dates are calendar dates.
- Engine-side timestamps are naive UTC.
- Money is stored as NUMERIC(18, 2) and read as float: SQLite has no decimal type and a
  Decimal round trip through it would only pretend to be exact.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

MONEY = Numeric(18, 2, asdecimal=False)

# --- the bank's customer store -------------------------------------------------------------

branches = Table(
    "branches",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("city", String(32), nullable=False),
)

managers = Table(
    "managers",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(32), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("email", String(100)),
    # manager / senior_manager / branch_leader
    Column("role", String(20), nullable=False),
    Column("branch_id", String(16), ForeignKey("branches.id"), nullable=False),
    # the dictionary's senior_manager_id / branch_leader_id pick MIN(id) per branch among the
    # managers of one role (grouped lookups, one join per query); the index holds every
    # column that grouping reads, in the order it groups them
    Index("ix_managers_branch_role", "branch_id", "role", "id"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("name", String(50), nullable=False),
    Column("gender", String(1)),  # M / F
    Column("birth_date", Date),
    # solar / lunar: which calendar the customer keeps their birthday by
    Column("birthday_calendar", String(8), nullable=False, default="solar"),
    Column("phone", String(20)),
    Column("email", String(100)),
    Column("branch_id", String(16), ForeignKey("branches.id"), nullable=False),
    Column("manager_id", String(16), ForeignKey("managers.id")),
    # mass / gold / vip / private, by AUM thresholds
    Column("tier", String(12), nullable=False),
    Column("aum", MONEY, nullable=False, default=0),
    Column("avg_daily_deposit", MONEY, nullable=False, default=0),
    Column("risk_level", String(4)),  # C1 … C5
    Column("occupation", String(32)),
    Column("opened_on", Date, nullable=False),
    Column("last_active_at", DateTime),
    # new / growth / mature / dormant / churned
    Column("lifecycle_stage", String(12), nullable=False),
    Column("relationship_level", Integer),  # 1 … 5
    Column("preferred_channel", String(12)),  # sms / email / phone / visit
    Index("ix_customers_tier", "tier"),
    Index("ix_customers_manager", "manager_id"),
)

customer_tags = Table(
    "customer_tags",
    metadata,
    Column("customer_id", String(20), ForeignKey("customers.id"), primary_key=True),
    Column("tag", String(32), primary_key=True),
)

holdings = Table(
    "holdings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(20), ForeignKey("customers.id"), nullable=False),
    # demand_deposit / time_deposit / wealth / fund / insurance / bond
    Column("product_type", String(20), nullable=False),
    Column("product_name", String(64), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("maturity_date", Date),
    Index("ix_holdings_customer", "customer_id"),
    Index("ix_holdings_maturity", "maturity_date"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(20), ForeignKey("customers.id"), nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    # deposit / withdrawal / transfer_in / transfer_out / purchase / redemption
    Column("kind", String(16), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("channel", String(12), nullable=False),  # counter / mobile / atm / online
    Index("ix_transactions_customer_time", "customer_id", "occurred_at"),
)

aum_snapshots = Table(
    "aum_snapshots",
    metadata,
    Column("customer_id", String(20), ForeignKey("customers.id"), primary_key=True),
    Column("month", Date, primary_key=True),  # first day of the month
    Column("aum", MONEY, nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(20), ForeignKey("customers.id"), nullable=False),
    Column("manager_id", String(16), ForeignKey("managers.id")),
    Column("contacted_at", DateTime, nullable=False),
    Column("channel", String(12), nullable=False),  # phone / visit / sms / email / wechat
    Column("outcome", String(16), nullable=False),  # reached / no_answer / refused / scheduled
    Index("ix_contacts_customer_time", "customer_id", "contacted_at"),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(20), ForeignKey("customers.id"), nullable=False),
    Column("category", String(20), nullable=False),  # service / fee / product / fraud / other
    Column("severity", String(10), nullable=False),  # low / medium / high / critical
    Column("opened_at", DateTime, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Index("ix_complaints_customer", "customer_id"),
)

consents = Table(
    "consents",
    metadata,
    Column("customer_id", String(20), ForeignKey("customers.id"), primary_key=True),
    Column("channel", String(12), primary_key=True),  # sms / email / phone
    Column("purpose", String(12), primary_key=True),  # marketing / service
    Column("given_at", DateTime),
    # set when withdrawn; consent holds when given_at is set and withdrawn_at is not later
    Column("withdrawn_at", DateTime),
)

CUSTOMER_TABLES = (
    branches,
    managers,
    customers,
    customer_tags,
    holdings,
    transactions,
    aum_snapshots,
    contacts,
    complaints,
    consents,
)

# --- engine-owned tables -------------------------------------------------------------------


def _fallback_key() -> str:
    """Idempotency key for outbox rows written by other tools than the engine's sink."""
    return f"x-{uuid.uuid4().hex}"


runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", String(64), nullable=False),
    Column("window", String(40), nullable=False),
    Column("as_of", DateTime, nullable=False),  # UTC
    Column("content_hash", String(64), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(12), nullable=False),  # running / done / failed
    Column("matched", Integer, nullable=False, default=0),
    Column("acted", Integer, nullable=False, default=0),
    Column("suppressed", JSON, nullable=False, default=dict),  # reason -> count
    Column("error", Text),
    # governance (issue 18): the playbook version (playbook_versions.hash) that produced the
    # run; empty with governance off. Ledger rows, outbox messages and tasks name it through
    # their run. Nullable so a store without governance works as before.
    Column("version_hash", String(64)),
    Index("ix_runs_playbook", "playbook_id", "started_at"),
)

action_ledger = Table(
    "action_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", String(64), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("window", String(40), nullable=False),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    # held out for effect measurement: recorded, exactly once, but nothing was done
    Column("held_out", Boolean, nullable=False, default=False),
    UniqueConstraint("playbook_id", "customer_id", "window", name="uq_ledger_once"),
    Index("ix_ledger_customer", "customer_id", "playbook_id", "created_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_id", Integer, ForeignKey("action_ledger.id"), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("playbook_id", String(64), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("channel", String(12), nullable=False),  # sms / email / webhook
    Column("recipient", String(120), nullable=False),
    Column("subject", String(200)),
    Column("body", Text, nullable=False),
    # pending / sent / failed (dead letter after the last attempt) / cancelled
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("not_before", DateTime, nullable=False),
    Column("sent_at", DateTime),
    # sent with every delivery so a gateway can drop duplicates of a retried message; the
    # engine derives it from playbook, customer, window and action (sinks.idempotency_key)
    Column("idempotency_key", String(64), nullable=False, unique=True, default=_fallback_key),
    Column("purpose", String(12), nullable=False, default="marketing"),  # marketing / service
    Column("priority", Integer, nullable=False, default=50),  # the playbook's priority
    # not sent after this moment (quiet hours, 'expire'): cancelled instead
    Column("expires_at", DateTime),
    # a dispatcher's lease on the row while it sends; lapses if that dispatcher dies
    Column("claimed_until", DateTime),
    UniqueConstraint("ledger_id", "action_index", name="uq_outbox_action"),
    Index("ix_outbox_status", "status", "not_before"),
    Index("ix_outbox_customer", "customer_id", "channel", "created_at"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_id", Integer, ForeignKey("action_ledger.id"), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("playbook_id", String(64), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("assignee_id", String(16)),  # empty for a team queue
    # manager / senior_manager / branch_leader / queue
    Column("assignee_role", String(20), nullable=False),
    Column("queue", String(40)),  # the team queue's name when assignee_role is queue
    Column("kind", String(12), nullable=False),  # call / visit / follow_up / escalation
    # why the task exists (default: the playbook id); one open task per customer, kind, reason
    Column("reason", String(80), nullable=False, default=""),
    Column("title", String(200), nullable=False),
    Column("body", Text),
    Column("checklist", JSON),  # list of steps
    Column("priority", String(8), nullable=False),  # low / normal / high / urgent
    Column("due_at", DateTime, nullable=False),
    Column("status", String(12), nullable=False),  # open / done / cancelled
    Column("outcome", String(20)),  # reached / no_answer / declined / … when done
    Column("note", Text),
    Column("done_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    # escalation: the overdue task this one escalates, and how many levels up it sits
    Column("parent_id", Integer, ForeignKey("tasks.id")),
    Column("escalation_level", Integer, nullable=False, default=0),
    UniqueConstraint("ledger_id", "action_index", name="uq_task_action"),
    Index("ix_tasks_assignee", "assignee_id", "status"),
    Index(
        "uq_tasks_open_reason",
        "customer_id",
        "kind",
        "reason",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
)

suppressions = Table(
    "suppressions",
    metadata,
    # Every action or customer a real run held back, with its reason, so reports can show
    # the funnel. 'already_done' is only counted in runs.suppressed: it repeats every rerun.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("playbook_id", String(64), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("window", String(40), nullable=False),
    Column("action", String(12)),  # the action kind, or empty when the whole customer
    Column("reason", String(40), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_suppressions_run", "run_id"),
    Index("ix_suppressions_playbook", "playbook_id", "window"),
    Index("ix_suppressions_customer", "customer_id"),  # the contact history reads by customer
)

run_holds = Table(
    "run_holds",
    metadata,
    # Customers a run held back for a reason of the run's own, not the customer's (today
    # max_per_run: everyone matched beyond the run's limit). A capped cadence holds back most
    # of its audience, the same people every day, so a row per customer was most of what a
    # real run wrote; here one row lists up to HOLD_CHUNK customers of one bucket (a stable
    # hash of the id), so the contact history of one customer reads one bucket's rows.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("playbook_id", String(64), nullable=False),
    Column("window", String(40), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("held", Integer, nullable=False),  # customers listed in this row
    Column("customers", Text, nullable=False),  # "\nid\nid\n", sorted, newline-framed
    Column("created_at", DateTime, nullable=False),
    Index("ix_run_holds_run", "run_id"),
    Index("ix_run_holds_bucket", "bucket"),
)

engine_tags = Table(
    "engine_tags",
    metadata,
    # Tags set by playbooks (the 'tag' action); the bank's customer_tags are never written.
    Column("customer_id", String(20), primary_key=True),
    Column("tag", String(32), primary_key=True),
    Column("playbook_id", String(64), nullable=False),
    Column("set_at", DateTime, nullable=False),
)

# Demo stores only: created by `demo-data` (never by init-db), so its presence is what marks
# a store as a demo one, the only kind `demo-outcomes` may write simulated data into.
demo_metadata = MetaData()

simulations = Table(
    "simulations",
    demo_metadata,
    # One row per simulated period written into a demo store (runner.py demo-outcomes): the
    # effect report names it, so simulated outcomes are never read as real behaviour.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),  # UTC
    Column("start_day", Date, nullable=False),
    Column("days", Integer, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("rates", JSON, nullable=False),  # arm -> chance of meeting the goal
    Column("summary", JSON, nullable=False),  # what was run and written
)

# --- the scheduler daemon's own bookkeeping (engine/daemon/scheduler.py) -------------------------

run_claims = Table(
    "run_claims",
    metadata,
    # One row per playbook and schedule slot, inserted with ON CONFLICT DO NOTHING before the
    # slot runs: the daemon whose insert lands executes it, so any number of daemons on one
    # database run each slot once. A slot nobody ran is a 'missed' row, never a gap.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", String(64), nullable=False),
    Column("slot", String(40), nullable=False),  # the window: local cron time, to the minute
    Column("due_at", DateTime, nullable=False),  # the slot in UTC
    # running / done / failed / interrupted (stopped by a signal; resumed next) / missed
    Column("status", String(12), nullable=False),
    Column("owner", String(120)),  # host:pid:nonce of the daemon holding or last holding it
    Column("lease_until", DateTime),  # UTC; a running claim past it belongs to a dead daemon
    Column("attempts", Integer, nullable=False, default=0),
    Column("content_hash", String(64)),  # the playbook version that ran (or would have)
    Column("run_id", Integer, ForeignKey("runs.id")),
    Column("claimed_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("duration_ms", Integer),
    Column("lag_ms", Integer),  # how late after the slot the execution started
    Column("error", Text),
    # Partitioned daemons (`--partition k/K`, engine/store/partitions.py) claim each slot once
    # per partition: k of K, or 0 for an unpartitioned daemon (every row before partitions).
    # The unique key gained this column; nothing else about claims changed.
    Column("partition_no", Integer, nullable=False, default=0, server_default=text("0")),
    UniqueConstraint("playbook_id", "slot", "partition_no", name="uq_run_claims_slot"),
    Index("ix_run_claims_status", "status", "lease_until"),
)

schedule_state = Table(
    "schedule_state",
    metadata,
    # Since when each playbook has been enabled, as the daemons saw it: slots before that are
    # neither run nor reported missed, so re-enabling a playbook never replays a backlog.
    Column("playbook_id", String(64), primary_key=True),
    Column("enabled_since", DateTime),  # UTC; empty while disabled or deleted
    Column("cron", String(120)),
    Column("updated_at", DateTime, nullable=False),
)

daemons = Table(
    "daemons",
    metadata,
    # Each daemon's heartbeat and what it has loaded, for `status` on any machine.
    Column("id", String(120), primary_key=True),  # host:pid:nonce
    Column("host", String(100), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    Column("stopped_at", DateTime),
    Column("state", JSON, nullable=False, default=dict),  # loaded versions, reload errors
)

partition_scheme = Table(
    "partition_scheme",
    metadata,
    # At most one row (id 1): the K partitioned daemons split customers by, set by the first
    # `daemon --partition k/K`; a daemon with another K, or none, is refused on this database.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("partitions", Integer, nullable=False),
    Column("set_by", String(120), nullable=False),  # the daemon that recorded it
    Column("set_at", DateTime, nullable=False),  # UTC
)

SCHEDULER_TABLES = (run_claims, schedule_state, daemons, partition_scheme)

events = Table(
    "events",
    metadata,
    # Every accepted event (engine/events/): the dedup key is the producer's id; replaying
    # these in arrival order (seq) rebuilds pattern state after a restart.
    Column("seq", Integer, primary_key=True, autoincrement=True),  # arrival order
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("occurred_at", DateTime, nullable=False),  # UTC
    Column("received_at", DateTime, nullable=False),  # UTC
    Column("payload", JSON, nullable=False),  # the type's own fields
    Index("ix_events_occurred", "occurred_at"),
    Index("ix_events_received", "received_at"),  # restarts replay recent arrivals
    Index("ix_events_customer", "customer_id", "occurred_at"),
)

event_matches = Table(
    "event_matches",
    metadata,
    # Every completed event pattern the engine handled, keyed by its first event: a replay
    # after a restart finds the row and does not act again.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", String(64), nullable=False),
    Column("match_key", String(64), nullable=False),  # the first event's id
    Column("customer_id", String(20), nullable=False),
    Column("event_ids", JSON, nullable=False),
    Column("matched_at", DateTime, nullable=False),  # UTC: last event, or window close
    Column("handled_at", DateTime, nullable=False),  # UTC
    # acted / held_out / suppressed / not_in_audience / unknown_customer / already_done
    Column("outcome", String(20), nullable=False),
    Column("run_id", Integer, ForeignKey("runs.id")),
    UniqueConstraint("playbook_id", "match_key", name="uq_event_match"),
)

event_rejections = Table(
    "event_rejections",
    metadata,
    # Events refused at the door, with the reason (counted by `stats`); never their content,
    # which may hold personal data.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False),  # UTC
    Column("source", String(200), nullable=False),  # file:line or http
    Column("event_id", String(64)),
    Column("reason", String(40), nullable=False),
    Column("message", String(300), nullable=False),
    Index("ix_event_rejections_time", "received_at"),
)

event_cursors = Table(
    "event_cursors",
    metadata,
    # How far the daemons have processed the events table (by seq), and which daemon holds
    # the lease to do so: one daemon at a time hosts the event playbooks, the others stand by
    # and take over (rebuilding the windows from stored events) when its lease lapses.
    Column("name", String(40), primary_key=True),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("owner", String(120)),
    Column("lease_until", DateTime),  # UTC (wall clock)
    Column("updated_at", DateTime, nullable=False),  # UTC (wall clock)
)

EVENT_TABLES = (events, event_matches, event_rejections, event_cursors)

run_data_issues = Table(
    "run_data_issues",
    metadata,
    # Per run and field the audience tests: customers with no value, a value that is not
    # one of the field's type, or one outside the field's valid: bounds (implausible). Their
    # conditions were false; the run counts them, never fails.
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("empty", Integer, nullable=False),
    Column("malformed", Integer, nullable=False),
    Column("implausible", Integer, nullable=False, server_default="0"),
)

ENGINE_TABLES = (
    runs,
    action_ledger,
    outbox,
    tasks,
    suppressions,
    run_holds,
    run_data_issues,
    engine_tags,
    *SCHEDULER_TABLES,
    *EVENT_TABLES,
)

# --- the console's accounts and the audit log ---------------------------------------------------
# Not in ENGINE_TABLES: a store the console never served needs none of them, and the daemon
# must not refuse to start for their absence. `users`, `audit` and `console` create them.

console_accounts = Table(
    "console_accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, never the password
    Column("role", String(16), nullable=False),
    Column("manager_id", String(16)),  # the managers row a `manager` account works as
    Column("branch_id", String(16)),  # the branch a `leader` account sees
    Column("created_at", DateTime, nullable=False),
    Column("password_changed_at", DateTime, nullable=False),
    Column("disabled_at", DateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Append-only and tamper-evident: entry n carries the hash of entry n-1 (engine/store/
    # audit.py); ids are 1, 2, 3 … with no gap. Who did what to which subject, and when:
    # logins, saves, role changes, every unmasking of personal data, tasks closed.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime, nullable=False),  # UTC
    Column("actor", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(200), nullable=False, default=""),
    Column("customer_id", String(20)),  # whose personal data, when it is about a customer
    Column("detail", Text, nullable=False, default="{}"),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_customer", "customer_id", "id"),
    Index("ix_audit_actor", "actor", "id"),
)

audit_head = Table(
    "audit_head",
    metadata,
    # One row: how many entries the log has and the last one's hash. Writers update it first,
    # which serialises appends on both backends, and a truncated log no longer matches it.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("entries", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

CONSOLE_TABLES = (console_accounts, audit_log, audit_head)


# --- governance: playbook versions, their life cycle and the live pointer ------------------------
# (issue 18, docs/governance.md) One block, so a migration can be written for exactly these
# tables (and runs.version_hash above). Not in ENGINE_TABLES: a store that never used
# governance needs none of them; `init-db` and the `playbook` commands create them.

playbook_versions = Table(
    "playbook_versions",
    metadata,
    # Every version ever proposed, immutable in its content: the playbook file, every template
    # it uses and every segment it names, as {relative path: text}, hashed together. Only
    # `state` and the review fields below change, each change an event and an audit entry.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", String(64), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, 3 … per playbook
    Column("hash", String(64), nullable=False),  # sha256 over the files (governance/files.py)
    Column("files", JSON, nullable=False),  # {"playbooks/x.yaml": text, "templates/…": text}
    Column("category", String(12), nullable=False),  # marketing / service, at submission
    Column("author", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),  # UTC
    # draft / submitted / approved / live / paused / retired / rejected
    Column("state", String(12), nullable=False),
    Column("submitted_at", DateTime),  # UTC
    Column("estimate", JSON),  # the audience estimate at submission
    Column("base_version_id", Integer),  # the live version when submitted (the diff's left)
    Column("diff", Text),  # unified diff against that version, at submission
    Column("approvals_needed", Integer, nullable=False, default=1),
    Column("comment", Text),  # the reason of a rejection
    UniqueConstraint("playbook_id", "number", name="uq_playbook_versions_number"),
    Index("ix_playbook_versions_hash", "playbook_id", "hash"),
)

version_events = Table(
    "version_events",
    metadata,
    # Every step of every version: submitted, approved (one row per approver), rejected,
    # published, paused, resumed, rolled back, and the first half of a two-person action
    # (pause/rollback requested). Approvals are counted from here.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("playbook_versions.id"), nullable=False),
    Column("playbook_id", String(64), nullable=False),
    Column("action", String(24), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", DateTime, nullable=False),  # UTC
    Column("comment", Text),
    # the live generation a two-person request was made against: a later change voids it
    Column("generation", Integer),
    Index("ix_version_events_version", "version_id", "action"),
)

playbook_live = Table(
    "playbook_live",
    metadata,
    # One row per governed playbook: which version runs, whether it is paused, and a
    # generation bumped by every change. Publish, rollback and pause are compare-and-set
    # updates on this row (WHERE generation = what the actor saw), so two racing approvers
    # end with exactly one live version.
    Column("playbook_id", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("playbook_versions.id")),
    Column("paused", Boolean, nullable=False, default=False),
    Column("generation", Integer, nullable=False, default=0),
    Column("updated_at", DateTime, nullable=False),  # UTC
    Column("updated_by", String(64), nullable=False),
)

GOVERNANCE_TABLES = (playbook_versions, version_events, playbook_live)
