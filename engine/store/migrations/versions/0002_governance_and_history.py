"""Governance (playbook versions, their events, the live pointer; ``runs.version_hash``) and
the index the contact history reads suppressions by.

Written so it also completes a store on which the governance commands already created some
of these tables (they create what they need on first use), checking before each step.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    tables = set(found.get_table_names())
    if "runs" in tables and "version_hash" not in {c["name"] for c in found.get_columns("runs")}:
        op.add_column("runs", sa.Column("version_hash", sa.String(64)))
    if "suppressions" in tables and "ix_suppressions_customer" not in {
        i["name"] for i in found.get_indexes("suppressions")
    }:
        op.create_index("ix_suppressions_customer", "suppressions", ["customer_id"])
    if "playbook_versions" not in tables:
        op.create_table(
            "playbook_versions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("playbook_id", sa.String(64), nullable=False),
            sa.Column("number", sa.Integer, nullable=False),
            sa.Column("hash", sa.String(64), nullable=False),
            sa.Column("files", sa.JSON, nullable=False),
            sa.Column("category", sa.String(12), nullable=False),
            sa.Column("author", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("state", sa.String(12), nullable=False),
            sa.Column("submitted_at", sa.DateTime),
            sa.Column("estimate", sa.JSON),
            sa.Column("base_version_id", sa.Integer),
            sa.Column("diff", sa.Text),
            sa.Column("approvals_needed", sa.Integer, nullable=False),
            sa.Column("comment", sa.Text),
            sa.UniqueConstraint("playbook_id", "number", name="uq_playbook_versions_number"),
        )
        op.create_index("ix_playbook_versions_hash", "playbook_versions", ["playbook_id", "hash"])
    if "version_events" not in tables:
        op.create_table(
            "version_events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "version_id", sa.Integer, sa.ForeignKey("playbook_versions.id"), nullable=False
            ),
            sa.Column("playbook_id", sa.String(64), nullable=False),
            sa.Column("action", sa.String(24), nullable=False),
            sa.Column("actor", sa.String(64), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("comment", sa.Text),
            sa.Column("generation", sa.Integer),
        )
        op.create_index("ix_version_events_version", "version_events", ["version_id", "action"])
    if "playbook_live" not in tables:
        op.create_table(
            "playbook_live",
            sa.Column("playbook_id", sa.String(64), primary_key=True),
            sa.Column("version_id", sa.Integer, sa.ForeignKey("playbook_versions.id")),
            sa.Column("paused", sa.Boolean, nullable=False),
            sa.Column("generation", sa.Integer, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
            sa.Column("updated_by", sa.String(64), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("playbook_live")
    op.drop_table("version_events")
    op.drop_table("playbook_versions")
    op.drop_index("ix_suppressions_customer", "suppressions")
    op.drop_column("runs", "version_hash")
