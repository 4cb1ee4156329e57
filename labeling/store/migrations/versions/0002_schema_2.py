"""Schema 2: round workers and promotion times, incremental LF application, weak labels.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The step labelloop ran before it used Alembic (schema_version 1 -> 2), statement for
statement: ``round.promoted_at``/``worker``/``stage``, ``labelingfunction.applied_version``/
``applied_through``/``stats``, the ``item (split, n_labels)`` index, and the ``weaklabel``
table. ``promoted_at`` is TIMESTAMP as that step made it; revision 0004 gives it a time zone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("round", sa.Column("promoted_at", sa.TIMESTAMP(), nullable=True))
    op.add_column("round", sa.Column("worker", sa.String(), nullable=True))
    op.add_column("round", sa.Column("stage", sa.String(), nullable=True))
    op.add_column("labelingfunction", sa.Column("applied_version", sa.String(), nullable=True))
    op.add_column(
        "labelingfunction",
        sa.Column("applied_through", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "labelingfunction", sa.Column("stats", sa.Text(), nullable=False, server_default="{}")
    )
    op.create_index("ix_item_split_labels", "item", ["split", "n_labels"], unique=False)
    op.create_table(
        "weaklabel",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.execute("UPDATE schemainfo SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_table("weaklabel")
    op.drop_index("ix_item_split_labels", table_name="item")
    for column in ("stats", "applied_through", "applied_version"):
        op.drop_column("labelingfunction", column)
    for column in ("stage", "worker", "promoted_at"):
        op.drop_column("round", column)
    op.execute("UPDATE schemainfo SET value = '1' WHERE key = 'schema_version'")
