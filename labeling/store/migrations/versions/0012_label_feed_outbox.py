"""The feed of label changes and the webhooks' outbox.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

``item`` gains ``label_seq`` and ``label_changed_at``: where the item's last change of label
stands in the feed that ``GET /labels`` walks (labeling.store.label_feed). ``counter`` holds
the feed's last number. Items that have a label today enter the feed in id order, stamped with
the time of the upgrade. ``outbox`` holds webhook deliveries (labeling.store.outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("item", sa.Column("label_seq", sa.BigInteger(), nullable=True))
    op.add_column("item", sa.Column("label_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_item_label_seq", "item", ["label_seq"])
    op.create_table(
        "counter",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    now = datetime.now(UTC)
    item = sa.table(
        "item",
        sa.column("id", sa.Integer()),
        sa.column("label", sa.String()),
        sa.column("label_seq", sa.BigInteger()),
        sa.column("label_changed_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        item.update()
        .where(item.c.label.is_not(None))
        .values(label_seq=item.c.id, label_changed_at=now)
    )
    op.execute(
        "INSERT INTO counter (name, value) SELECT 'label', COALESCE(MAX(label_seq), 0) FROM item"
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("hook", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
    )
    op.create_index("ix_outbox_state_due", "outbox", ["state", "due_at"])
    op.execute("UPDATE schemainfo SET value = '12' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_outbox_state_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("counter")
    op.drop_index("ix_item_label_seq", table_name="item")
    with op.batch_alter_table("item") as batch:
        batch.drop_column("label_changed_at")
        batch.drop_column("label_seq")
    op.execute("UPDATE schemainfo SET value = '11' WHERE key = 'schema_version'")
