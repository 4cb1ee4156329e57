"""Indexes for pruning the tabs' operations.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

``clientop`` gains an index on ``created_at`` (the prune walks the rows past their retention,
oldest first) and one on ``(tab, created_at)`` (each tab's newest operations, which it may
still send again, are kept; see labeling.store.housekeeping). The outbox's prune uses the
``(state, due_at)`` index it has.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_clientop_created_at", "clientop", ["created_at"])
    op.create_index("ix_clientop_tab_created_at", "clientop", ["tab", "created_at"])
    op.execute("UPDATE schemainfo SET value = '13' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_clientop_tab_created_at", table_name="clientop")
    op.drop_index("ix_clientop_created_at", table_name="clientop")
    op.execute("UPDATE schemainfo SET value = '12' WHERE key = 'schema_version'")
