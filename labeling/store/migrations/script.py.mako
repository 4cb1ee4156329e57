"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
    # labelloop releases from before Alembic read only schema_version: a larger one makes
    # them refuse the store instead of misreading it.
    op.execute("UPDATE schemainfo SET value = '${up_revision.lstrip("0")}' WHERE key = 'schema_version'")


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
    op.execute("UPDATE schemainfo SET value = '${down_revision.lstrip("0")}' WHERE key = 'schema_version'")
