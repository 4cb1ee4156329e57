"""Assisted labelling: guideline versions, kept LLM answers, and what each answer was shown.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

``guidelineversion`` holds every version of the workspace's guidelines; ``llmanswer`` the
LLM labelling function's replies by (prompt version, model, text); ``annotation`` gains the
suggestion shown with the answer, its source, whether one was withheld for the anchoring check,
and the guidelines version on screen. Existing answers had no suggestion and no guidelines.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("annotation", sa.Column("suggestion", sa.String(), nullable=True))
    op.add_column("annotation", sa.Column("suggestion_source", sa.String(), nullable=True))
    op.add_column(
        "annotation",
        sa.Column("suggestion_withheld", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("annotation", sa.Column("guidelines_version", sa.Integer(), nullable=True))
    op.create_table(
        "guidelineversion",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_guidelineversion_version", "guidelineversion", ["version"], unique=True)
    op.create_table(
        "llmanswer",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("prompt_version", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("text_hash", sa.String(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("vote", sa.String(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("UPDATE schemainfo SET value = '10' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_table("llmanswer")
    op.drop_index("ix_guidelineversion_version", "guidelineversion")
    op.drop_table("guidelineversion")
    with op.batch_alter_table("annotation") as batch:
        batch.drop_column("guidelines_version")
        batch.drop_column("suggestion_withheld")
        batch.drop_column("suggestion_source")
        batch.drop_column("suggestion")
    op.execute("UPDATE schemainfo SET value = '9' WHERE key = 'schema_version'")
