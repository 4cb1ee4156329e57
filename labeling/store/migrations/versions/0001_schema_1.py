"""Schema 1: the store as the first labelloop release created it.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Items, import batches, annotators and their sign-in links, the append-only annotation log,
leases, labelling functions and their votes, rounds and their scores, and ``schemainfo`` with
``schema_version`` 1 (what labelloop read before it used Alembic). Rebuilt from that release's
models: the same tables, columns, types, keys and index names.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# What the models' ``datetime`` fields and ``str`` fields become in the database.
TIMESTAMP = sa.DateTime(timezone=True)
VARCHAR = sa.String()


def upgrade() -> None:
    schemainfo = op.create_table(
        "schemainfo",
        sa.Column("key", VARCHAR, nullable=False),
        sa.Column("value", VARCHAR, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "annotator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", VARCHAR, nullable=False),
        sa.Column("role", VARCHAR, nullable=False),
        sa.Column("token_id", VARCHAR, nullable=True),
        sa.Column("token_hash", VARCHAR, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_annotator_name", "annotator", ["name"], unique=True)
    op.create_index("ix_annotator_token_id", "annotator", ["token_id"], unique=True)
    op.create_table(
        "importbatch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_name", VARCHAR, nullable=False),
        sa.Column("format", VARCHAR, nullable=False),
        sa.Column("split", VARCHAR, nullable=False),
        sa.Column("text_field", VARCHAR, nullable=False),
        sa.Column("id_field", VARCHAR, nullable=True),
        sa.Column("label_field", VARCHAR, nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "labelingfunction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", VARCHAR, nullable=False),
        sa.Column("kind", VARCHAR, nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("label", VARCHAR, nullable=True),
        sa.Column("version", VARCHAR, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_labelingfunction_name", "labelingfunction", ["name"], unique=True)
    op.create_table(
        "round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", VARCHAR, nullable=False),
        sa.Column("trigger", VARCHAR, nullable=False),
        sa.Column("strategy", VARCHAR, nullable=True),
        sa.Column("n_human", sa.Integer(), nullable=False),
        sa.Column("n_weak", sa.Integer(), nullable=False),
        sa.Column("model_path", VARCHAR, nullable=True),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("error", VARCHAR, nullable=True),
        sa.Column("heartbeat", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", VARCHAR, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content_hash", VARCHAR, nullable=False),
        sa.Column("split", VARCHAR, nullable=False),
        sa.Column("gold_label", VARCHAR, nullable=True),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("rank", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["importbatch.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_item_content_hash", "item", ["content_hash"], unique=False)
    op.create_index("ix_item_external_id", "item", ["external_id"], unique=True)
    op.create_index("ix_item_split_rank", "item", ["split", "rank"], unique=False)
    op.create_table(
        "signinlink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", VARCHAR, nullable=False),
        sa.Column("token_hash", VARCHAR, nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["annotator_id"], ["annotator.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signinlink_token_id", "signinlink", ["token_id"], unique=True)
    op.create_table(
        "annotation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("label", VARCHAR, nullable=True),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("origin", VARCHAR, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["annotator_id"], ["annotator.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["round_id"], ["round.id"]),
        sa.ForeignKeyConstraint(["superseded_by"], ["annotation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_annotation_annotator_item", "annotation", ["annotator_id", "item_id"], unique=False
    )
    op.create_index("ix_annotation_item", "annotation", ["item_id"], unique=False)
    op.create_table(
        "lfvote",
        sa.Column("lf_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("lf_version", VARCHAR, nullable=False),
        sa.Column("label", VARCHAR, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["lf_id"], ["labelingfunction.id"]),
        sa.PrimaryKeyConstraint("lf_id", "item_id"),
    )
    op.create_index("ix_lfvote_item_id", "lfvote", ["item_id"], unique=False)
    op.create_table(
        "score",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("prediction", VARCHAR, nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["round_id"], ["round.id"]),
        sa.PrimaryKeyConstraint("round_id", "item_id"),
    )
    op.create_index("ix_score_round_score", "score", ["round_id", "score"], unique=False)
    op.create_table(
        "lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("served_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("undo_of", sa.Integer(), nullable=True),
        sa.Column("holds", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["annotator_id"], ["annotator.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["round_id"], ["round.id"]),
        sa.ForeignKeyConstraint(["undo_of"], ["annotation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "annotator_id", name="uq_lease_item_annotator"),
    )
    op.create_index("ix_lease_annotator_id", "lease", ["annotator_id"], unique=False)
    op.create_index("ix_lease_item_expires", "lease", ["item_id", "expires_at"], unique=False)
    op.bulk_insert(schemainfo, [{"key": "schema_version", "value": "1"}])


def downgrade() -> None:
    for table in (
        "lease",
        "score",
        "lfvote",
        "annotation",
        "signinlink",
        "item",
        "round",
        "labelingfunction",
        "importbatch",
        "annotator",
        "schemainfo",
    ):
        op.drop_table(table)
