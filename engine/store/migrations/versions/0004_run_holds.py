"""Compact holds: the customers a run held back for a reason of the run's own (its
``max_per_run``) are listed per run and bucket in ``run_holds`` instead of a ``suppressions``
row each. Existing suppressions rows stay where they are; the contact history reads both.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "run_holds" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "run_holds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("window", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("held", sa.Integer, nullable=False),
        sa.Column("customers", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_run_holds_run", "run_holds", ["run_id"])
    op.create_index("ix_run_holds_bucket", "run_holds", ["bucket"])


def downgrade() -> None:
    op.drop_table("run_holds")
