"""Items are indexed by (split, n_labels, rank) instead of (split, n_labels).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Before the first model, a claim serves the seeded rank order of the items still below overlap.
Walking the (split, rank) index for that steps over every item already labelled ``overlap``
times, so each claim got slower with every label (4 ms at 3,000 labels, 22 ms at 12,000 on a
60,000-item pool). With rank as the third column, a claim walks one label count at a time and
starts at its first open item. The new index still serves the progress counts the old one did,
so the old one goes.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_item_split_labels_rank", "item", ["split", "n_labels", "rank"])
    op.drop_index("ix_item_split_labels", table_name="item")
    op.execute("UPDATE schemainfo SET value = '5' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.create_index("ix_item_split_labels", "item", ["split", "n_labels"])
    op.drop_index("ix_item_split_labels_rank", table_name="item")
    op.execute("UPDATE schemainfo SET value = '4' WHERE key = 'schema_version'")
