"""The writes of a bulk batch (see :mod:`labeling.annotation.bulk`): its answers in chunks of
short transactions, and their removal when it is undone or fails half-way.

Each chunk keeps the queue's bookkeeping as one answer does (:mod:`labeling.annotation.answers`),
set-wise: the items' label counts, their scores' ``closed`` mark when a count reaches (or falls
below) the overlap, and ``Item.label``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    update,
)
from sqlmodel import Session, col, select

from labeling.annotation.bulk import Selection, among, sort_items
from labeling.annotation.bulk_rows import insert_answers, update_items
from labeling.annotation.bulk_sets import SetAction
from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db, outbox
from labeling.store.answers import current, final_labels, lock_items
from labeling.store.models import (
    BULK,
    Annotation,
    Annotator,
    BulkBatch,
    utcnow,
)

# Items per write transaction. SQLite has one writer, and a claim waits for the chunk being
# written: chunks are sized as they go so that each holds the write lock about
# SQLITE_LOCK_SECONDS (from SQLITE_BULK_CHUNK, between the bounds; 500 items took 20-100 ms on
# a busy 2-core machine, so a fixed size would be wrong on some machine). PostgreSQL writes do
# not block claims (claims skip locked rows), so its chunks are large and fixed.
SQLITE_BULK_CHUNK = 500
SQLITE_CHUNK_BOUNDS = (50, 5_000)
SQLITE_LOCK_SECONDS = 0.010
POSTGRES_BULK_CHUNK = 10_000
# Page cache of a batch's SQLite connection (MiB): a batch touches item rows and index pages
# all over a large store, which the default 2 MiB cache read again from the file chunk after
# chunk.
SQLITE_BATCH_CACHE_MIB = 256
_ANSWERS = Annotation.__table__  # type: ignore[attr-defined]
_SUPERSEDE = (
    update(_ANSWERS).where(_ANSWERS.c.id == bindparam("old")).values(superseded_by=bindparam("new"))
)


class ChunkPacer:
    """The write transactions of one bulk action, on one connection kept for it: how many
    items the next takes (on SQLite adjusted after each to hold the write lock about
    :data:`SQLITE_LOCK_SECONDS`), and, on SQLite, the WAL checkpoints between them.

    SQLite checkpoints the WAL (copies its pages into the database file and syncs both, tens
    of ms once a batch has filled it) inside the commit that finds it over 1,000 pages, while
    that writer still has its turn: a claim waited for it. The batch's connection does not
    checkpoint in its commits; it checkpoints after each chunk, without the turn (a PASSIVE
    checkpoint lets writers go on), so the WAL stays short for everyone's commits.
    """

    def __init__(self, ctx: Context, connection: Connection) -> None:
        self.engine = ctx.engine
        self.connection = connection
        self.sqlite = db.is_sqlite(ctx.engine)
        self.size = SQLITE_BULK_CHUNK if self.sqlite else POSTGRES_BULK_CHUNK
        self.checkpointer: Checkpointer | None = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One chunk's write transaction (committed on leaving); then size the next and, on
        SQLite, checkpoint and give waiting writers (annotators' claims) their turn: the
        per-process writer lock is not fair, and this thread would otherwise take it back at
        once."""
        with db.write_session(self.engine, connection=self.connection) as session:
            started = time.perf_counter()  # the writer's turn is ours from here
            yield session
        if self.sqlite:
            took = max(time.perf_counter() - started, 1e-4)
            low, high = SQLITE_CHUNK_BOUNDS
            grown = self.size * min(2.0, SQLITE_LOCK_SECONDS / took)
            self.size = int(min(high, max(low, grown)))
            if self.checkpointer is not None:
                self.checkpointer.wanted.set()
            time.sleep(0.002)

    def chunks(self, ids: list[int]) -> Iterator[list[int]]:
        start = 0
        while start < len(ids):
            part = ids[start : start + self.size]
            start += len(part)
            yield part

    def _raw(self, pragma: str) -> Any:
        """Run a pragma on the driver connection: it starts no transaction."""
        raw = self.connection.connection.driver_connection
        assert raw is not None
        return raw.execute(pragma).fetchone()


class Checkpointer(threading.Thread):
    """Checkpoints the WAL whenever a chunk asks, on a connection of its own, while the batch
    goes on (SQLite lets a PASSIVE checkpoint run beside a writer): the syncs of a checkpoint
    took as long as a chunk's own writes."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="bulk-checkpoint", daemon=True)
        self.connection = engine.raw_connection()
        self.wanted = threading.Event()
        self.done = False

    def run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.done:
                return
            self.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchall()

    def finish(self) -> None:
        self.done = True
        self.wanted.set()
        self.join()
        self.connection.close()


@contextmanager
def paced(ctx: Context) -> Iterator[ChunkPacer]:
    """A :class:`ChunkPacer` on a connection of its own, for one bulk action. On SQLite the
    connection gets a large page cache and checkpoints between chunks (see there); both are
    set back when the action ends, so the pooled connection keeps neither."""
    with ctx.engine.connect() as connection:
        pacer = ChunkPacer(ctx, connection)
        if not pacer.sqlite:
            yield pacer
            return
        cache = int(pacer._raw("PRAGMA cache_size")[0])
        checkpoint = int(pacer._raw("PRAGMA wal_autocheckpoint")[0])
        pacer._raw(f"PRAGMA cache_size = {-SQLITE_BATCH_CACHE_MIB * 1024}")
        pacer._raw("PRAGMA wal_autocheckpoint = 0")
        pacer.checkpointer = Checkpointer(ctx.engine)
        pacer.checkpointer.start()
        try:
            yield pacer
        finally:
            pacer.checkpointer.finish()
            pacer._raw(f"PRAGMA wal_autocheckpoint = {checkpoint}")
            pacer._raw(f"PRAGMA cache_size = {cache}")
            pacer._raw("PRAGMA shrink_memory")


class BatchUndone(Exception):
    """The batch being applied was undone meanwhile (by ``by``): stop writing it."""

    def __init__(self, by: str | None) -> None:
        super().__init__(by)
        self.by = by


def _still_applying(session: Session, batch: str) -> None:
    """Raise :class:`BatchUndone` unless the batch is still being applied. On PostgreSQL the
    batch's row is share-locked for the chunk's transaction, so an undo's status change waits
    for the chunk to commit (and then removes it too); SQLite runs one writer at a time."""
    query = select(BulkBatch.status, BulkBatch.undone_by).where(col(BulkBatch.id) == batch)
    if session.connection().dialect.name != "sqlite":
        query = query.with_for_update(read=True)
    status, by = session.exec(query).one()
    if status != "applying":
        raise BatchUndone(by)


def new_batch_id() -> str:
    """A batch id a person can read and type: when it was made, and four random hex digits."""
    return f"bulk-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def apply_batch(
    ctx: Context,
    selection: Selection,
    *,
    label: str,
    annotator: Annotator,
    audit: dict[str, Any],
    override: bool,
    overlap: int,
    change: SetAction | None = None,
) -> dict[str, Any]:
    """Write the batch: its record (status ``applying``), its answers chunk by chunk, then
    status ``applied``. ``label``: the label given, or (multi-label) ``change``'s words; each
    item then gets its set with ``change`` applied (:mod:`labeling.annotation.bulk_sets`). On
    any failure, what was written is removed again, record included. An undo started meanwhile
    (:func:`undo_batch`) wins: the writing stops at the next chunk, the undo removes what was
    written, and :class:`BadInput` says who undid it.

    Returns the batch id and counts (see :meth:`labeling.annotation.api.AnnotationAPI.
    bulk_label`).
    """
    assert annotator.id is not None
    batch = new_batch_id()
    with db.write_session(ctx.engine) as session:
        session.add(
            BulkBatch(
                id=batch,
                annotator_id=annotator.id,
                label=label,
                selection=json.dumps(selection.described),
                audit=json.dumps(audit),
                override=override,
                status="applying",
            )
        )
    try:
        totals = _write_chunks(
            ctx, selection, batch=batch, label=label, change=change,
            annotator_id=annotator.id, overlap=overlap,
        )  # fmt: skip
        with db.write_session(ctx.engine) as session:
            _still_applying(session, batch)
            session.execute(
                update(BulkBatch)
                .where(col(BulkBatch.id) == batch)
                .values(status="applied", count=totals["count"])
            )
            told = {"batch": batch, "label": label, "by": annotator.name, **totals}
            outbox.emit(session, ctx.config.webhooks, "bulk.applied", told,
                        workspace=ctx.config.name)  # fmt: skip
    except BatchUndone as undone:
        raise BadInput(
            f"bulk batch {batch!r} was undone by {undone.by} while it was being applied; "
            "none of it stands"
        ) from None
    except BaseException:
        _remove_unfinished(ctx, batch, overlap=overlap)
        raise
    return {"batch": batch, **totals}


def _write_chunks(
    ctx: Context,
    selection: Selection,
    *,
    batch: str,
    label: str,
    change: SetAction | None,
    annotator_id: int,
    overlap: int,
) -> dict[str, int]:
    """The batch's answers, a paced chunk per transaction, each first checking that the batch
    is still being applied (not undone meanwhile). Returns the counts of every chunk."""
    totals = {"count": 0, "skipped_labelled": 0, "skipped_not_pool": 0, "replaced_bulk": 0}
    if change is not None:
        totals["skipped_unchanged"] = 0
    with paced(ctx) as pacer:
        for part in pacer.chunks(selection.item_ids):
            with pacer.transaction() as session:
                _still_applying(session, batch)
                done = _apply_chunk(
                    session, ctx, part, batch=batch, label=label, change=change,
                    annotator_id=annotator_id, overlap=overlap,
                )  # fmt: skip
            for key, n in done.items():
                totals[key] += n
    return totals


def _remove_unfinished(ctx: Context, batch: str, *, overlap: int) -> None:
    """What a failed batch wrote, and its record."""
    remove_answers(ctx, batch, overlap=overlap)
    with db.write_session(ctx.engine) as session:
        # Unless an undo took it over meanwhile: its record then says so.
        session.execute(
            delete(BulkBatch).where(col(BulkBatch.id) == batch, col(BulkBatch.status) == "applying")
        )


def _apply_chunk(
    session: Session,
    ctx: Context,
    item_ids: list[int],
    *,
    batch: str,
    label: str,
    change: SetAction | None,
    annotator_id: int,
    overlap: int,
) -> dict[str, int]:
    """One chunk of a batch, in the caller's write transaction."""
    # Two batches (or a batch and an undo, or an answer) on the same items take turns.
    lock_items(session, item_ids)
    found = sort_items(session, item_ids, change)
    targets = found.targets
    run = session.connection().execute
    previous: dict[int, int] = {}
    newer: dict[int, int] = {}
    # The targets by the stored label they get: one label, or (set actions) each one's set.
    by_value: dict[str, list[int]] = {label: targets} if change is None else defaultdict(list)
    for item_id, value in found.values.items():
        by_value[value].append(item_id)
    if targets:
        previous = dict(
            session.exec(
                select(Annotation.item_id, Annotation.id).where(
                    among(session, col(Annotation.item_id), targets),
                    current(),
                    Annotation.origin == BULK,
                )
            ).all()  # type: ignore[arg-type]
        )
    for value, ids in by_value.items():
        if not ids:
            continue
        newer.update(insert_answers(session, ids, label=value, batch=batch, by=annotator_id))
        # The label is what labeling.store.answers.decide gives these items now, without
        # reading their answers again: they have no current label from people, an import or
        # a decision (sort_items, in this transaction), and the newest bulk answer is this
        # batch's.
        fresh = [item_id for item_id in ids if item_id not in previous]
        update_items(session, ids, label=value, counted=fresh, delta=1, overlap=overlap)
    if previous:
        run(_SUPERSEDE, [{"old": old, "new": newer[item]} for item, old in previous.items()])
    done = {
        "count": len(targets),
        "skipped_labelled": len(found.labelled),
        "skipped_not_pool": len(found.not_pool),
        "replaced_bulk": len(previous),
    }
    return done if change is None else {**done, "skipped_unchanged": len(found.unchanged)}


def remove_answers(ctx: Context, batch: str, *, overlap: int) -> int:
    """Delete a batch's answers chunk by chunk, bringing back the answers they superseded and
    the label counts, scores and labels as they were; returns how many were deleted."""
    removed = 0
    with paced(ctx) as pacer:
        while True:
            with pacer.transaction() as session:
                rows = session.exec(
                    select(Annotation.id, Annotation.item_id, Annotation.superseded_by)
                    .where(Annotation.batch == batch)
                    .order_by(col(Annotation.id))
                    .limit(pacer.size)
                ).all()
                if rows:
                    removed += _remove_chunk(session, ctx, batch, list(rows), overlap=overlap)
            if not rows:
                return removed


def _remove_chunk(
    session: Session, ctx: Context, batch: str, rows: list[Any], *, overlap: int
) -> int:
    """Delete these answers of a batch (``(id, item, superseded_by)`` rows) in the caller's
    write transaction; returns how many were deleted."""
    run = session.connection().execute
    if not db.is_sqlite(ctx.engine):
        # Lock the items, then read the batch's answers on them again: a second undo of the
        # same batch, a batch replacing these answers, or an answer on these items committed
        # meanwhile is seen, not overwritten with what this transaction read before.
        items = sorted({item_id for _id, item_id, _newer in rows})
        lock_items(session, items)
        rows = list(
            session.exec(
                select(Annotation.id, Annotation.item_id, Annotation.superseded_by).where(
                    Annotation.batch == batch, among(session, col(Annotation.item_id), items)
                )
            ).all()
        )
        if not rows:
            return 0
    newer_of = {answer_id: superseded_by for answer_id, _item, superseded_by in rows}
    items = sorted({item_id for _id, item_id, _newer in rows})
    # The answers these superseded (an earlier batch's, on the same items) now point at what
    # superseded these, or become current again.
    older = session.exec(
        select(Annotation.id, Annotation.superseded_by).where(
            among(session, col(Annotation.item_id), items),
            among(session, col(Annotation.superseded_by), list(newer_of)),
        )
    ).all()
    if older:
        run(
            _SUPERSEDE,
            [{"old": old, "new": newer_of[superseded_by]} for old, superseded_by in older],
        )
    restored = {int(old or 0) for old, superseded_by in older if newer_of[superseded_by] is None}
    restored_items = set(
        session.exec(
            select(Annotation.item_id).where(among(session, col(Annotation.id), sorted(restored)))
        ).all()
    ) if restored else set()  # fmt: skip
    # An item loses a label where its bulk answer was current and no earlier one comes back.
    losing = [
        item_id
        for answer_id, item_id, superseded_by in rows
        if superseded_by is None and item_id not in restored_items
    ]
    run(delete(_ANSWERS).where(among(session, _ANSWERS.c.id, list(newer_of))))
    # Each item's label from what is left (labeling.store.answers.final_labels, the one
    # definition), written one statement per label rather than one per item.
    found = final_labels(session, ctx.labels, item_ids=items)
    by_label: dict[str | None, list[int]] = defaultdict(list)
    for item_id in items:
        by_label[found.get(item_id)].append(item_id)
    losing_set = set(losing)
    for label, ids in by_label.items():
        counted = [item_id for item_id in ids if item_id in losing_set]
        update_items(session, ids, label=label, counted=counted, delta=-1, overlap=overlap)
    return len(rows)


def undo_batch(ctx: Context, batch: str, *, by: str, overlap: int) -> dict[str, Any]:
    """Undo a whole batch (see :func:`remove_answers`); its record stays, marked undone.

    The status turns ``undoing`` first, in one statement, so that a batch still being applied
    stops writing at its next chunk (see :func:`apply_batch`); a batch left ``applying`` or
    ``undoing`` by a process that died can be undone (again): that removes what it wrote.
    """
    with db.write_session(ctx.engine) as session:
        record = session.get(BulkBatch, batch)
        if record is None:
            raise BadInput(f"no bulk batch {batch!r}; `labelloop bulk-list` shows the batches")
        if record.status == "undone":
            raise BadInput(
                f"bulk batch {batch!r} was undone already ({record.undone_at:%Y-%m-%d %H:%M} "
                f"UTC by {record.undone_by})"
            )
        label = record.label
        session.execute(
            update(BulkBatch)
            .where(col(BulkBatch.id) == batch, col(BulkBatch.status) != "undone")
            .values(status="undoing", undone_by=by)
        )
    removed = remove_answers(ctx, batch, overlap=overlap)
    with db.write_session(ctx.engine) as session:
        session.execute(
            update(BulkBatch)
            .where(col(BulkBatch.id) == batch)
            .values(status="undone", undone_at=utcnow(), undone_by=by)
        )
    return {"batch": batch, "removed": removed, "label": label}
