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
PG_INDEX = f"ix_item_{PG_COLUMN}"

_INSERT_TRIGGER = f"{FTS_TABLE}_insert"
_SQLITE_INSERT_TRIGGER = (
    f"CREATE TRIGGER {_INSERT_TRIGGER} AFTER INSERT ON item BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END"
)
_SQLITE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, content='item', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    _SQLITE_INSERT_TRIGGER,
    f"CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON item BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text) VALUES ('delete', old.id, old.text); END",
    f"CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF text ON item BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, text) VALUES ('delete', old.id, old.text); "
    f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (new.id, new.text); END",
    # Index the rows already there (a store upgraded by the migration).
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
)
_SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {_INSERT_TRIGGER}",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_delete",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_update",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
)
_POSTGRES = (
    f"ALTER TABLE item ADD COLUMN {PG_COLUMN} tsvector "
    f"GENERATED ALWAYS AS (to_tsvector('{PG_CONFIG}', text)) STORED",
    f"CREATE INDEX {PG_INDEX} ON item USING gin ({PG_COLUMN})",
)
_POSTGRES_DROP = (
    f"DROP INDEX IF EXISTS {PG_INDEX}",
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


# FTS5 keeps the terms of the rows it indexes in memory and writes them out as a new segment of
# the index (later merged with the others) when a statement ends or when they pass ``hashsize``
# bytes: 1 MiB unless set (FTS5's config key, read by fts5_config.c; not in FTS5's docs). At 1M
# rows, 200k-row passes under 64 MiB took 4.1 s of CPU against 7.3 s for 20k-row passes under
# 1 MiB (fewer, larger segments to merge); the import's peak memory stayed at 490 MB.
BULK_HASH_BYTES = 64 * 2**20
FTS5_DEFAULT_HASH_BYTES = 2**20
# Text (characters) the import adds between two indexing passes: enough for few segments, and
# little enough that the pass reads rows still in the import's page cache (db.bulk_cache).
BULK_PASS_CHARS = 24 * 2**20
# PostgreSQL: the memory the import's GIN pending-list entries are sorted in.
PG_BULK_MEMORY = "64MB"


class BulkIndexer:
    """Index the items a bulk import adds in large passes, instead of row by row.

    On SQLite the insert trigger writes every row to FTS5 as its own statement, and FTS5
    writes out its pending terms at each one: a 100k-row import took 4x as long as with one
    ``INSERT ... SELECT`` per 20,000-row chunk. So, inside the import's transaction, the
    trigger is dropped and FTS5's ``hashsize`` raised; :meth:`added` is told of each chunk's
    new rows and indexes them once they hold ``BULK_PASS_CHARS`` of text, and :meth:`finish`
    indexes the rest, puts ``hashsize`` back and creates the trigger again before the commit.
    SQLite's DDL is transactional and the import holds the only write lock: no other insert
    can miss the index, and a rollback brings the trigger and the setting back.

    On PostgreSQL the generated column is computed as rows are copied in, and GIN puts each
    row's words on its pending list, which the inserting session moves into the index once it
    passes ``gin_pending_list_limit`` (4 MB by default), sorting its entries in ``work_mem``.
    For the import's transaction only, ``work_mem`` is raised to 64 MB, and :meth:`finish`
    empties the list, so that searches do not read through it. The list's limit stays at
    4 MB: an annotator's answer (it rewrites the item's row, GIN entries included) that finds
    the list over its limit moves the whole list itself, the import's entries included, so a
    64 MB list during an import (fewer, larger moves for the import: server CPU 70 to 56 s at
    1M rows in probes, with both raised) could make one answer take seconds.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.suspended = False
        self.pending_list = False
        # The rows added and not indexed yet: ids above ``pending_after``, their text's length.
        self.pending_after: int | None = None
        self.pending_chars = 0
        self.hash_bytes: int | None = None
        if conn.dialect.name == "sqlite":
            found = conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
                {"name": _INSERT_TRIGGER},
            ).first()
            if found is not None:
                conn.execute(text(f"DROP TRIGGER {_INSERT_TRIGGER}"))
                self.suspended = True
                self.hash_bytes = _fts_setting(conn, "hashsize")
                _set_fts_setting(conn, "hashsize", BULK_HASH_BYTES)
        elif conn.dialect.name == "postgresql" and _owns_gin_index(conn):
            conn.execute(text(f"SET LOCAL work_mem = '{PG_BULK_MEMORY}'"))
            self.pending_list = True

    def added(self, after_id: int, chars: int) -> None:
        """Note that the last chunk added the items whose id is above ``after_id`` (the largest
        id before it), with ``chars`` characters of text; index what is noted once it is
        ``BULK_PASS_CHARS`` or more."""
        if not self.suspended:
            return
        if self.pending_after is None:
            self.pending_after = after_id
        self.pending_chars += chars
        if self.pending_chars >= BULK_PASS_CHARS:
            self._index_pending()

    def _index_pending(self) -> None:
        if self.pending_after is not None:
            self.conn.execute(
                text(
                    f"INSERT INTO {FTS_TABLE}(rowid, text) SELECT id, text FROM item WHERE id > :a"
                ),
                {"a": self.pending_after},
            )
        self.pending_after = None
        self.pending_chars = 0

    def finish(self) -> None:
        """Index the rows not indexed yet and put the insert trigger and ``hashsize`` back
        (SQLite), or empty the GIN's pending list (PostgreSQL), before the import commits."""
        if self.suspended:
            self._index_pending()
            _set_fts_setting(self.conn, "hashsize", self.hash_bytes or FTS5_DEFAULT_HASH_BYTES)
            if self.hash_bytes is None:  # as it was: no setting stored
                self.conn.execute(text(f"DELETE FROM {FTS_TABLE}_config WHERE k = 'hashsize'"))
            self.conn.execute(text(_SQLITE_INSERT_TRIGGER))
            self.suspended = False
        if self.pending_list:
            self.conn.execute(text(f"SET LOCAL maintenance_work_mem = '{PG_BULK_MEMORY}'"))
            clean_pending_list(self.conn)
            self.pending_list = False


def _fts_setting(conn: Connection, key: str) -> int | None:
    """An FTS5 setting the store has stored (None: FTS5's default)."""
    found = conn.execute(
        text(f"SELECT v FROM {FTS_TABLE}_config WHERE k = :k"), {"k": key}
    ).scalar()
    return None if found is None else int(found)


def _set_fts_setting(conn: Connection, key: str, value: int) -> None:
    """Set an FTS5 setting (stored in the index's config table: part of the transaction)."""
    conn.execute(
        text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES (:k, :v)"), {"k": key, "v": value}
    )


def clean_pending_list(conn: Connection) -> int:
    """Move the GIN index's pending list into the index (PostgreSQL); the pages it held."""
    found = conn.execute(
        text("SELECT gin_clean_pending_list(CAST(:index AS regclass))"), {"index": PG_INDEX}
    )
    return int(found.scalar_one() or 0)


def _owns_gin_index(conn: Connection) -> bool:
    """Whether the GIN index exists and this role may empty its pending list (its owner)."""
    found = conn.execute(
        text(
            "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class "
            "WHERE oid = to_regclass(:index) AND relkind = 'i'"
        ),
        {"index": PG_INDEX},
    ).scalar()
    return bool(found)
