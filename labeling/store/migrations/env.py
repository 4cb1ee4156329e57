"""Alembic's environment for the labelloop store.

Alembic runs this file for every command. labelloop (:mod:`labeling.store.migrations`, and
``python -m labeling.store.migrations`` for developers) always hands it a connection that is already
inside a transaction, in ``config.attributes["connection"]``; the caller commits or rolls back.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from labeling.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from labeling.store.migrations import compare_type

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "labelloop's migrations run on a connection given by labeling.store.migrations "
        "(python -m labeling.store.migrations --db URL upgrade head), not from an alembic.ini"
    )
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    compare_type=compare_type,
    # SQLite alters most things only by copying the table: autogenerate writes
    # batch_alter_table blocks, which do that on SQLite and plain ALTERs elsewhere.
    render_as_batch=True,
)
with context.begin_transaction():  # a no-op inside the caller's transaction
    context.run_migrations()
