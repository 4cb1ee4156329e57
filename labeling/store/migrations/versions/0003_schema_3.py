"""Schema 3: drift checks and queue priority of imports; closed items leave the score walk.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The step labelloop ran before it used Alembic (schema_version 2 -> 3): ``importbatch.drift``
and ``priority_left``, ``score.closed`` (true for the scores a round had already pushed to the
bottom, at or below -1e29), and the claim's index ``(round_id, closed, score)`` in place of
``(round_id, score)``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_score = sa.table("score", sa.column("score", sa.Float()), sa.column("closed", sa.Boolean()))


def upgrade() -> None:
    op.add_column("importbatch", sa.Column("drift", sa.Text(), nullable=False, server_default="{}"))
    op.add_column(
        "importbatch",
        sa.Column("priority_left", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "score", sa.Column("closed", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(_score.update().where(_score.c.score <= -1.0e29).values(closed=True))
    op.drop_index("ix_score_round_score", table_name="score", if_exists=True)
    op.create_index(
        "ix_score_round_open_score", "score", ["round_id", "closed", "score"], unique=False
    )
    op.execute("UPDATE schemainfo SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_score_round_open_score", table_name="score")
    op.create_index("ix_score_round_score", "score", ["round_id", "score"], unique=False)
    op.drop_column("score", "closed")
    op.drop_column("importbatch", "priority_left")
    op.drop_column("importbatch", "drift")
    op.execute("UPDATE schemainfo SET value = '2' WHERE key = 'schema_version'")
