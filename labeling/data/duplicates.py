"""Repeated rows in an import: an id, or a text under another id, that the workspace or an
earlier row of the file already has. Texts are told apart by their content hash, which also
gives the id of a row imported without an id field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from sqlalchemy import select
from sqlmodel import col

from labeling.store.models import Item

# Values per look-up query (one IN list, or one array on PostgreSQL).
LOOKUP_BATCH = 5_000


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def content_id(text: str) -> str:
    """The stable id of an item imported without an id field."""
    return "h-" + content_hash(text)[:16]


class Repeats(NamedTuple):
    """The positions of a chunk's rows to keep, and how many were skipped as repeats of rows
    in the workspace before this import (``in_store``) or earlier in the file (``in_file``)."""

    keep: Sequence[int]
    in_store: int = 0
    in_file: int = 0


def _stored_batches(
    session: Any, column: Literal["external_id", "content_hash"], values: list[str]
) -> list[tuple[str, int | None]]:
    """(value, batch id) of every item whose ``column`` is one of ``values`` (this import's
    earlier chunks included: they are in the same transaction).

    On SQLite and PostgreSQL a driver-level query on the column's index: compiling
    SQLAlchemy's IN list of 5,000 parameters and building its result rows cost more than the
    look-up itself.
    """
    connection = session.connection()
    backend = connection.dialect.name
    found: list[tuple[str, int | None]] = []
    for start in range(0, len(values), LOOKUP_BATCH):
        part = values[start : start + LOOKUP_BATCH]
        if backend == "postgresql":
            rows: Any = connection.exec_driver_sql(
                f"SELECT {column}, batch_id FROM item WHERE {column} = ANY(%s)", (part,)
            ).all()
        elif backend == "sqlite":
            marks = ", ".join("?" * len(part))
            rows = connection.exec_driver_sql(
                f"SELECT {column}, batch_id FROM item WHERE {column} IN ({marks})",
                tuple(part),
            ).all()
        else:
            key = col(getattr(Item, column))
            rows = session.execute(select(key, col(Item.batch_id)).where(key.in_(part))).all()
        found.extend((value, batch) for value, batch in rows)
    return found


def skip_repeated_ids(
    session: Any, batch_id: int, ids: list[str], text_skipped: set[str]
) -> Repeats:
    """The positions of ``ids`` not seen before, and the counts of the others.

    Row by row: an id an earlier import holds is a repeat in the store; one an earlier row of
    this file had (in this chunk, in an earlier chunk, which is in the store already in the
    same transaction, or on a row skipped for its text) is a repeat in the file. So memory
    does not grow with the file, and the counts do not depend on where chunks end.
    """
    in_store = dict(_stored_batches(session, "external_id", list(set(ids))))
    if not in_store and not text_skipped and len(set(ids)) == len(ids):
        return Repeats(range(len(ids)))
    keep: list[int] = []
    seen: set[str] = set()
    repeats_in_store = repeats_in_file = 0
    for k, external_id in enumerate(ids):
        stored = external_id in in_store
        if stored and in_store[external_id] != batch_id:
            repeats_in_store += 1
        elif stored or external_id in seen or external_id in text_skipped:
            repeats_in_file += 1
        else:
            seen.add(external_id)
            keep.append(k)
    return Repeats(keep, repeats_in_store, repeats_in_file)


def skip_repeated_texts(
    session: Any, batch_id: int, keep: Sequence[int], texts: list[str], *, allow: bool
) -> tuple[Repeats, list[str]]:
    """The rows of ``keep`` to write and their content hashes, less the rows whose text is
    already in the store or earlier in this file (counted either way), unless ``allow``.

    Earlier chunks of the file are in the store already (same transaction), so a repeat of
    an earlier chunk's text is told from one of another import by the batch that holds it.
    """
    hashes = [content_hash(texts[k]) for k in keep]
    if not hashes:
        return Repeats(keep), hashes
    distinct = set(hashes)
    # Each hash with whether an item outside this batch holds it (True: in the workspace
    # before this import; False: only earlier in this file).
    known: dict[str, bool] = {}
    for digest, batch in _stored_batches(session, "content_hash", list(distinct)):
        known[digest] = known.get(digest, False) or batch != batch_id
    if not known and len(distinct) == len(hashes):
        return Repeats(keep), hashes  # the usual chunk: every text new
    seen: set[str] = set()
    repeated: list[bool] = []
    repeats_in_store = repeats_in_file = 0
    for digest in hashes:
        before = known.get(digest)
        if before is None and digest in seen:
            before = False
        if before is True:
            repeats_in_store += 1
        elif before is False:
            repeats_in_file += 1
        repeated.append(before is not None)
        seen.add(digest)
    if allow or not any(repeated):
        return Repeats(keep, repeats_in_store, repeats_in_file), hashes
    kept = [(k, digest) for k, digest, r in zip(keep, hashes, repeated, strict=True) if not r]
    return (
        Repeats([k for k, _ in kept], repeats_in_store, repeats_in_file),
        [digest for _, digest in kept],
    )
