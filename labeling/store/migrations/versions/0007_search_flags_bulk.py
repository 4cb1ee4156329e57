"""Full-text search of item texts, each item's label as a column, flags and bulk actions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

The search index (labeling.store.search_index) is built over the items already stored: an
FTS5 table with triggers on SQLite, a generated ``tsvector`` column with a GIN index on
PostgreSQL. ``item.label`` is filled by the first ``Workspace.open`` after the upgrade (it
needs the label order of labelloop.toml to break ties; see labeling.store.answers).
``annotation.batch`` names the bulk action that wrote an answer; ``flag`` and ``bulkbatch``
are new tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from labeling.store import search_index

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("item", sa.Column("label", sa.String(), nullable=True))
    op.create_index("ix_item_split_label", "item", ["split", "label"])
    op.add_column("annotation", sa.Column("batch", sa.String(), nullable=True))
    op.create_index("ix_annotation_batch", "annotation", ["batch"])
    op.create_table(
        "flag",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("item.id"), nullable=False),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
    )
    op.create_index("ix_flag_item_id", "flag", ["item_id"])
    op.create_table(
        "bulkbatch",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("audit", sa.Text(), nullable=False),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(), nullable=True),
    )
    search_index.create(op.get_bind())
    op.execute("UPDATE schemainfo SET value = '7' WHERE key = 'schema_version'")


def downgrade() -> None:
    search_index.drop(op.get_bind())
    op.drop_table("bulkbatch")
    op.drop_index("ix_flag_item_id", "flag")
    op.drop_table("flag")
    op.drop_index("ix_annotation_batch", "annotation")
    op.drop_column("annotation", "batch")
    op.drop_index("ix_item_split_label", "item")
    op.drop_column("item", "label")
    op.execute("UPDATE schemainfo SET value = '6' WHERE key = 'schema_version'")
