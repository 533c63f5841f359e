"""The engine's tables as release 2026-11 created them: the baseline.

A store made by that release has no ``alembic_version`` table; ``init-db`` recognises it (it
has the engine's ``runs`` table) and stamps it here before upgrading. Nothing to create: the
baseline is what such a store already has.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
