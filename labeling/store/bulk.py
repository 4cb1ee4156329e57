"""Bulk writes: many rows in the session's transaction, at the speed the driver allows.

Import, LF votes, weak labels and queue scores all write through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def bulk_insert(session: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows (dicts with the same keys) in the session's transaction, fast."""
    if rows:
        bulk_insert_tuples(session, table, list(rows[0]), [tuple(r.values()) for r in rows])


def bulk_insert_tuples(
    session: Any, table: Any, names: list[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT many rows, given as tuples in the order of ``names``, in the session's
    transaction.

    PostgreSQL: ``COPY ... FROM STDIN`` through psycopg (several times faster than batched
    INSERTs). Others: the driver's executemany, skipping SQLAlchemy's per-row parameter
    processing (the ORM and Core paths cost 2-10x more at this volume).
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        raw = connection.connection.driver_connection
        target = dialect.identifier_preparer.quote(table.name)
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    style = dialect.paramstyle
    if style == "named":
        marks = ", ".join(f":{name}" for name in names)
    elif style == "pyformat":
        marks = ", ".join(f"%({name})s" for name in names)
    else:
        marks = ", ".join("?" if style == "qmark" else "%s" for _ in names)
    sql = f"INSERT INTO {dialect.identifier_preparer.quote(table.name)} ({quoted}) VALUES ({marks})"
    params: Any = (
        [dict(zip(names, row, strict=True)) for row in rows]
        if style in {"named", "pyformat"}
        else rows
    )
    connection.exec_driver_sql(sql, params)
