"""Annotations are indexed by ``superseded_by``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Deleting an annotation makes the database look for annotations that point at it through
``superseded_by`` (the foreign key). Without an index that is a scan of the whole annotation
table for every row deleted: undoing a bulk batch of 20,000 labels took 45 s on SQLite, and
grows with the square of the log. With the index each check is a probe. The index is partial
(superseded answers only), so the queries for current answers (``IS NULL``) keep using the
item index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_annotation_superseded_by",
        "annotation",
        ["superseded_by"],
        sqlite_where=sa.text("superseded_by IS NOT NULL"),
        postgresql_where=sa.text("superseded_by IS NOT NULL"),
    )
    op.execute("UPDATE schemainfo SET value = '8' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_annotation_superseded_by", table_name="annotation")
    op.execute("UPDATE schemainfo SET value = '7' WHERE key = 'schema_version'")
