"""Items can be removed and restored (soft delete).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

A removed item's split becomes ``removed`` (so the queue, rounds, metrics and export, which
all ask for ``pool`` or ``gold``, leave it out) and three new columns say which split it came
from, when and by whom. Its answers, votes and weak labels stay; restoring puts the split back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("item", sa.Column("removed_from", sa.String(), nullable=True))
    op.add_column("item", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("item", sa.Column("removed_by", sa.String(), nullable=True))
    op.execute("UPDATE schemainfo SET value = '6' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.execute(
        "UPDATE item SET split = removed_from WHERE split = 'removed' AND removed_from IS NOT NULL"
    )
    op.drop_column("item", "removed_by")
    op.drop_column("item", "removed_at")
    op.drop_column("item", "removed_from")
    op.execute("UPDATE schemainfo SET value = '5' WHERE key = 'schema_version'")
