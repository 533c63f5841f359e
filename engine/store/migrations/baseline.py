"""What a store made by release 2026-11 holds: its engine tables and their columns.

Revision ``0001`` creates nothing (such a store already has these tables), so this is what
``init-db`` compares an unversioned store with before stamping it at the baseline: a table of
the bank's that happens to be called ``runs``, a store of an even older release, or one half
made, must be refused rather than stamped and altered. Frozen like the DDL it was read from
(``tests/fixtures/store-2026-11.*.sql``, which a test keeps equal to it): never edit.
"""

from __future__ import annotations

# every table init-db created: a release 2026-11 store has all of them or none
ENGINE: dict[str, tuple[str, ...]] = {
    "runs": (
        "id", "playbook_id", "window", "as_of", "content_hash", "started_at", "finished_at",
        "status", "matched", "acted", "suppressed", "error",
    ),
    "action_ledger": (
        "id", "playbook_id", "customer_id", "window", "run_id", "content_hash", "created_at",
        "held_out",
    ),
    "outbox": (
        "id", "ledger_id", "action_index", "playbook_id", "customer_id", "channel",
        "recipient", "subject", "body", "status", "attempts", "last_error", "created_at",
        "not_before", "sent_at", "idempotency_key", "purpose", "priority", "expires_at",
        "claimed_until",
    ),
    "tasks": (
        "id", "ledger_id", "action_index", "playbook_id", "customer_id", "assignee_id",
        "assignee_role", "queue", "kind", "reason", "title", "body", "checklist", "priority",
        "due_at", "status", "outcome", "note", "done_at", "created_at", "parent_id",
        "escalation_level",
    ),
    "suppressions": (
        "id", "run_id", "playbook_id", "customer_id", "window", "action", "reason",
        "created_at",
    ),
    "run_data_issues": ("run_id", "field", "empty", "malformed", "implausible"),
    "engine_tags": ("customer_id", "tag", "playbook_id", "set_at"),
    "run_claims": (
        "id", "playbook_id", "slot", "due_at", "status", "owner", "lease_until", "attempts",
        "content_hash", "run_id", "claimed_at", "finished_at", "duration_ms", "lag_ms", "error",
    ),
    "schedule_state": ("playbook_id", "enabled_since", "cron", "updated_at"),
    "daemons": ("id", "host", "pid", "started_at", "heartbeat_at", "stopped_at", "state"),
    "events": (
        "seq", "event_id", "type", "customer_id", "occurred_at", "received_at", "payload",
    ),
    "event_matches": (
        "id", "playbook_id", "match_key", "customer_id", "event_ids", "matched_at",
        "handled_at", "outcome", "run_id",
    ),
    "event_rejections": ("id", "received_at", "source", "event_id", "reason", "message"),
    "event_cursors": ("name", "last_seq", "owner", "lease_until", "updated_at"),
}  # fmt: skip

# created on first use by the console and the audit log: any of them, or none, may be there
ON_FIRST_USE: dict[str, tuple[str, ...]] = {
    "console_accounts": (
        "name", "password_hash", "role", "manager_id", "branch_id", "created_at",
        "password_changed_at", "disabled_at",
    ),
    "audit_log": (
        "id", "at", "actor", "action", "subject", "customer_id", "detail", "prev_hash", "hash",
    ),
    "audit_head": ("id", "entries", "last_hash"),
}  # fmt: skip
