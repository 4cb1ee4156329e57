"""The buffered Label page: leases held by a browser tab, and the operations tabs sent.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

``lease`` gains ``tab``: the browser tab whose buffer holds the item (None for the one-item
Label page, the CLI and the Python API). ``clientop`` records every operation a tab sent, by
the client id the tab gave it, so that a resend is acknowledged and never applied twice.
Existing leases belong to no tab.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lease", sa.Column("tab", sa.String(), nullable=True))
    op.create_table(
        "clientop",
        sa.Column("cid", sa.String(), primary_key=True),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("tab", sa.String(), nullable=False),
        sa.Column("op", sa.String(), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("item.id"), nullable=True),
        sa.Column("annotation_id", sa.Integer(), sa.ForeignKey("annotation.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("UPDATE schemainfo SET value = '11' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_table("clientop")
    with op.batch_alter_table("lease") as batch:
        batch.drop_column("tab")
    op.execute("UPDATE schemainfo SET value = '10' WHERE key = 'schema_version'")
