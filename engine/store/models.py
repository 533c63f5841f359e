"""Tables of the customer store and of the engine.

The customer tables (branches … consents) are the bank's data: the engine only reads them,
through the data dictionary. The demo generator and the importers fill them. The engine-owned
tables (runs, action_ledger, outbox, tasks) are the only ones the engine writes.

Conventions:
- Customer-side timestamps are naive local times in the bank's time zone (config.timezone),
  the way core banking systems keep them; dates are calendar dates.
- Engine-side timestamps are naive UTC.
- Money is stored as NUMERIC(18, 2) and read as float: SQLite has no decimal type and a
  Decimal round trip through it would only pretend to be exact.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
    Column("status", String(12), nullable=False),  # pending / sent / failed / cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("not_before", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("ledger_id", "action_index", name="uq_outbox_action"),
    Index("ix_outbox_status", "status", "not_before"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_id", Integer, ForeignKey("action_ledger.id"), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("playbook_id", String(64), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("assignee_id", String(16)),
    Column("assignee_role", String(20), nullable=False),
    Column("kind", String(12), nullable=False),  # call / visit / follow_up
    Column("title", String(200), nullable=False),
    Column("body", Text),
    Column("priority", String(8), nullable=False),  # low / normal / high / urgent
    Column("due_at", DateTime, nullable=False),
    Column("status", String(12), nullable=False),  # open / done / cancelled
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("ledger_id", "action_index", name="uq_task_action"),
    Index("ix_tasks_assignee", "assignee_id", "status"),
)

ENGINE_TABLES = (runs, action_ledger, outbox, tasks)
