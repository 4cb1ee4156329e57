"""round.promoted_at keeps its time zone on PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Schema 2 added ``round.promoted_at`` as TIMESTAMP, which PostgreSQL takes as TIMESTAMP WITHOUT
TIME ZONE: an aware UTC time written there is first turned into the server's local time, and
read back as if it were UTC, so on a server not set to UTC promotion times were off by the
server's offset. Every other timestamp, and ``promoted_at`` in stores created at schema 2 or
later, is TIMESTAMP WITH TIME ZONE. The conversion reads the stored values in the session's
time zone, the one they were written in. SQLite keeps no column types (TIMESTAMP and DATETIME
hold the same text), so there only ``schema_version`` changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "round",
            "promoted_at",
            type_=sa.DateTime(timezone=True),
            existing_nullable=True,
            postgresql_using="promoted_at::timestamptz",
        )
    # labelloop releases from before Alembic read only schema_version: a larger one makes
    # them refuse the store instead of misreading it.
    op.execute("UPDATE schemainfo SET value = '4' WHERE key = 'schema_version'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "round",
            "promoted_at",
            type_=sa.TIMESTAMP(),
            existing_nullable=True,
            postgresql_using="promoted_at::timestamp",
        )
    op.execute("UPDATE schemainfo SET value = '3' WHERE key = 'schema_version'")
