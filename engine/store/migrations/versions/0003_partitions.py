"""Partitioned daemons: a slot is claimed once per partition (``run_claims.partition_no``, 0
for an unpartitioned daemon, in the unique key), and the database records the one partition
scheme its daemons use (``partition_scheme``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    tables = set(found.get_table_names())
    if "run_claims" in tables and "partition_no" not in {
        c["name"] for c in found.get_columns("run_claims")
    }:
        # every existing claim was an unpartitioned daemon's: partition 0
        with op.batch_alter_table("run_claims") as batch:
            batch.add_column(
                sa.Column("partition_no", sa.Integer, nullable=False, server_default=sa.text("0"))
            )
            batch.drop_constraint("uq_run_claims_slot", type_="unique")
            batch.create_unique_constraint(
                "uq_run_claims_slot", ["playbook_id", "slot", "partition_no"]
            )
    if "partition_scheme" not in tables:
        op.create_table(
            "partition_scheme",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("partitions", sa.Integer, nullable=False),
            sa.Column("set_by", sa.String(120), nullable=False),
            sa.Column("set_at", sa.DateTime, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("partition_scheme")
    with op.batch_alter_table("run_claims") as batch:
        batch.drop_constraint("uq_run_claims_slot", type_="unique")
        batch.create_unique_constraint("uq_run_claims_slot", ["playbook_id", "slot"])
        batch.drop_column("partition_no")
