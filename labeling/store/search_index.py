"""The full-text index of item texts, in the database's own engine.

SQLite: an FTS5 table over ``item.text`` (external content: the index holds no second copy of
the texts), kept in step by triggers on ``item``, so the import path, a restore and any delete
update it in the same transaction as the rows. PostgreSQL: a stored ``tsvector`` column
generated from the text, with a GIN index. Both tokenise the same way by default: words of
letters and digits, case-insensitive, no stemming and no accent folding (FTS5 ``unicode61``
with ``remove_diacritics 0``; PostgreSQL's ``simple`` configuration). Queries are built in
:mod:`labeling.data.search`.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

FTS_TABLE = "item_fts"
PG_COLUMN = "text_search"
PG_CONFIG = "simple"

_SQLITE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, content='item', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    f"CREATE TRIGGER {FTS_TABLE}_insert AFTER INSERT ON item BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END",
    f"CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON item BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text) VALUES ('delete', old.id, old.text); END",
    f"CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF text ON item BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text) VALUES ('delete', old.id, old.text); "
    f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END",
    # Index the rows already there (a store upgraded by the migration).
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
)
_SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_insert",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_delete",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_update",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
)
_POSTGRES = (
    f"ALTER TABLE item ADD COLUMN {PG_COLUMN} tsvector "
    f"GENERATED ALWAYS AS (to_tsvector('{PG_CONFIG}', text)) STORED",
    f"CREATE INDEX ix_item_{PG_COLUMN} ON item USING gin ({PG_COLUMN})",
)
_POSTGRES_DROP = (
    f"DROP INDEX IF EXISTS ix_item_{PG_COLUMN}",
    f"ALTER TABLE item DROP COLUMN IF EXISTS {PG_COLUMN}",
)


def create(conn: Connection) -> None:
    """Create the index (and, on SQLite, its triggers) and index every item already stored."""
    for statement in _SQLITE if conn.dialect.name == "sqlite" else _POSTGRES:
        conn.execute(text(statement))


def drop(conn: Connection) -> None:
    """Drop the index: the migration's downgrade."""
    for statement in _SQLITE_DROP if conn.dialect.name == "sqlite" else _POSTGRES_DROP:
        conn.execute(text(statement))


def integrity_problems(conn: Connection) -> int:
    """How many items the index disagrees with: 0 when it is in step (``doctor``)."""
    if conn.dialect.name == "sqlite":
        try:
            conn.execute(
                text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
            )
        except Exception:  # noqa: BLE001 - SQLite reports a corrupt index as an error
            return 1
        return 0
    found = conn.execute(
        text(
            f"SELECT count(*) FROM item WHERE {PG_COLUMN} IS DISTINCT FROM "
            f"to_tsvector('{PG_CONFIG}', text)"
        )
    )
    return int(found.scalar_one())


def rebuild(conn: Connection) -> None:
    """Re-index every item (``doctor --fix``)."""
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
    else:
        stale = f"{PG_COLUMN} IS DISTINCT FROM to_tsvector('{PG_CONFIG}', text)"
        conn.execute(text(f"UPDATE item SET text = text WHERE {stale}"))
