"""Audited bulk labelling: one label for many items at once, in one batch that can be undone.

A batch labels the pool items of a selection (a search, or a list of items such as a
similar-items result) that have no label from a person, an import or a decision: people's
answers beat a bulk label, so those items are left as they are and counted as skipped. Gold and
removed items are never bulk-labelled. An item whose label came from an earlier batch gets the
new one: the new bulk answer supersedes the old, and undoing the new batch brings the old one
back.

Each bulk answer is an annotation of origin ``bulk`` by the person who applied the batch, with
the batch id; it counts one label in ``Item.n_labels`` (so the item leaves the queue once it
has ``overlap`` labels) and sets ``Item.label`` through :func:`labeling.store.answers.
refresh_labels`. A batch is written in chunks of short transactions, so annotators' claims go
on meanwhile; if it fails half-way, what it wrote is removed again. :func:`undo_batch` deletes
the batch's answers (they are the bulk action's, not people's history) and keeps the record.

Before applying, the person checks a random audit sample of the set; :func:`precision_interval`
turns their answers into a 95% interval for the set's precision, and :func:`check_audit`
refuses a batch whose lower bound is below the threshold unless the person overrides.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from labeling.annotation.answers import CLOSED_MARK
from labeling.context import Context
from labeling.errors import BadInput
from labeling.store import db
from labeling.store.answers import current, refresh_labels
from labeling.store.bulk import bulk_insert_tuples
from labeling.store.models import (
    BULK,
    Annotation,
    Annotator,
    BulkBatch,
    Item,
    Round,
    Score,
    utcnow,
)

# Items per write transaction. SQLite has one writer: a chunk of 500 holds the write lock for
# ~10-20 ms, so claims waiting behind it stay within their 20 ms target. PostgreSQL writes do
# not block claims (they skip locked rows), so its chunks are larger.
SQLITE_BULK_CHUNK = 500
POSTGRES_BULK_CHUNK = 10_000
# The audit: sample size, and the lowest acceptable lower bound of the precision interval.
AUDIT_SAMPLE = 20
MIN_PRECISION = 0.8
# Two-sided 95% normal quantile (Wilson score interval).
_Z95 = 1.959963984540054
STATUSES = ("applying", "applied", "undone")
# What the command line records as the audit of a batch applied without one.
UNAUDITED_CLI = "unaudited (command line)"
# Who undid a batch from the command line without ``--as``.
CLI_PERSON = "(command line)"

_ITEMS = Item.__table__  # type: ignore[attr-defined]
_ANSWERS = Annotation.__table__  # type: ignore[attr-defined]
_SCORES = Score.__table__  # type: ignore[attr-defined]
_ADD_LABEL = (
    update(_ITEMS)
    .where(_ITEMS.c.id.in_(bindparam("items", expanding=True)))
    .values(n_labels=_ITEMS.c.n_labels + bindparam("delta"))
    .returning(_ITEMS.c.id, _ITEMS.c.n_labels)
)
_MARK_SCORES = (
    update(_SCORES)
    .where(
        # "IN (rounds)" lets the planner probe the (round, item) key once per round.
        _SCORES.c.round_id.in_(core_select(Round.id).scalar_subquery()),
        _SCORES.c.item_id.in_(bindparam("items", expanding=True)),
        # A round's own mark for items closed when it ran stays as it is.
        _SCORES.c.score > CLOSED_MARK,
    )
    .values(closed=bindparam("closed"))
)
_SUPERSEDE = (
    update(_ANSWERS).where(_ANSWERS.c.id == bindparam("old")).values(superseded_by=bindparam("new"))
)


@dataclass(frozen=True)
class Selection:
    """The items a bulk action is about, as store ids, and how they were chosen (JSON)."""

    item_ids: list[int]
    described: dict[str, Any]


@dataclass(frozen=True)
class Sorted:
    """A selection's items split by what a bulk label would do to them."""

    targets: list[int]  # pool items without a label from people: they get the bulk label
    labelled: list[int]  # labelled by a person, an import or a decision: left as they are
    not_pool: list[int]  # gold or removed: never bulk-labelled


@dataclass(frozen=True)
class BatchSummary:
    """One bulk batch as the batch list shows it."""

    batch: str
    by: str
    label: str
    count: int
    audit: str  # in words: "18 of 20 correct (precision 0.70-0.97)", or why there was none
    override: bool
    status: str
    created_at: Any
    undone_at: Any
    undone_by: str | None
    selection: dict[str, Any]


def precision_interval(correct: int, checked: int) -> tuple[float, float]:
    """The Wilson score 95% interval for a set's precision, from an audit sample.

    ``correct`` of ``checked`` sampled items had the right label. Wilson's interval stays
    inside [0, 1] and is honest at small samples and at 0 or ``checked`` correct, where the
    normal approximation collapses to a point. The API, the command line and the page use this
    one function.
    """
    if checked < 1 or not 0 <= correct <= checked:
        raise BadInput(
            f"audit: expected 0 <= correct <= checked and checked >= 1, found {correct} "
            f"correct of {checked} checked"
        )
    share = correct / checked
    z2 = _Z95 * _Z95
    centre = (share + z2 / (2 * checked)) / (1 + z2 / checked)
    half = (_Z95 / (1 + z2 / checked)) * math.sqrt(
        share * (1 - share) / checked + z2 / (4 * checked * checked)
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def check_audit(
    audit: dict[str, Any] | None, *, n_items: int, min_precision: float, override: bool
) -> dict[str, Any]:
    """What the batch records about its audit; raise :class:`BadInput` when the audit (or its
    absence) does not allow the batch and the person did not override."""
    if not 0.0 <= min_precision <= 1.0:
        raise BadInput(f"min_precision: expected a number from 0 to 1, found {min_precision}")
    record: dict[str, Any] = dict(audit or {})
    if "checked" not in record:
        if not override:
            raise BadInput(
                f"bulk labelling {n_items:,} items needs an audit: check a random sample "
                "of them first (bulk_audit_sample) and pass audit={'checked': n, 'correct': k}, "
                "or confirm without one with override=True"
            )
        record.setdefault("note", "no audit (override)")
        return record
    try:
        checked, correct = int(record["checked"]), int(record.get("correct", -1))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"audit: expected whole numbers checked and correct, found {audit}") from exc
    low, high = precision_interval(correct, checked)
    record.update(
        checked=checked,
        correct=correct,
        precision_low=round(low, 4),
        precision_high=round(high, 4),
        min_precision=min_precision,
    )
    if low < min_precision and not override:
        raise BadInput(
            f"the audit found {correct} of {checked} correct: the set's precision is "
            f"{low:.2f}-{high:.2f} (95% interval), whose lower bound is below the threshold "
            f"{min_precision:.2f}; nothing was labelled. Narrow the search, check a larger "
            "sample (it narrows the interval), or confirm anyway with override"
        )
    return record


def audit_words(audit: dict[str, Any], override: bool) -> str:
    """A batch's audit in a few words, for the batch list."""
    if "checked" in audit:
        words = (
            f"{audit['correct']} of {audit['checked']} correct (precision "
            f"{audit['precision_low']:.2f}-{audit['precision_high']:.2f})"
        )
        return words + (", below the threshold: overridden" if override and
                        audit["precision_low"] < audit["min_precision"] else "")  # fmt: skip
    return str(audit.get("note") or "no audit")


def chunk_size(ctx: Context) -> int:
    return SQLITE_BULK_CHUNK if db.is_sqlite(ctx.engine) else POSTGRES_BULK_CHUNK


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def sort_items(session: Session, item_ids: list[int]) -> Sorted:
    """Split ``item_ids`` (at most a few thousand) by what a bulk label would do to them, as
    the store is now."""
    in_pool = set(
        session.exec(select(Item.id).where(col(Item.id).in_(item_ids), Item.split == "pool")).all()
    )
    labelled = set(
        session.exec(
            select(Annotation.item_id)
            .where(
                col(Annotation.item_id).in_(sorted(in_pool)),
                current(),
                col(Annotation.label).is_not(None),
                Annotation.origin != BULK,
            )
            .distinct()
        ).all()
    )
    return Sorted(
        targets=[i for i in item_ids if i in in_pool and i not in labelled],
        labelled=[i for i in item_ids if i in labelled],
        not_pool=[i for i in item_ids if i not in in_pool],
    )


def count_targets(ctx: Context, selection: Selection) -> Sorted:
    """What a batch over ``selection`` would label now (a dry run: nothing is written)."""
    parts = [Sorted([], [], [])]
    with db.read_session(ctx.engine) as session:
        for part in _chunks(selection.item_ids, 5_000):
            parts.append(sort_items(session, part))
    return Sorted(
        targets=[i for p in parts for i in p.targets],
        labelled=[i for p in parts for i in p.labelled],
        not_pool=[i for p in parts for i in p.not_pool],
    )


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
) -> dict[str, Any]:
    """Write the batch: its record (status ``applying``), its answers chunk by chunk, then
    status ``applied``. On any failure, what was written is removed again, record included.

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
    totals = {"count": 0, "skipped_labelled": 0, "skipped_not_pool": 0, "replaced_bulk": 0}
    try:
        for part in _chunks(selection.item_ids, chunk_size(ctx)):
            with db.write_session(ctx.engine) as session:
                done = _apply_chunk(
                    session, ctx, part, batch=batch, label=label,
                    annotator_id=annotator.id, overlap=overlap,
                )  # fmt: skip
            for key, n in done.items():
                totals[key] += n
            _let_others_write(ctx)
        with db.write_session(ctx.engine) as session:
            session.execute(
                update(BulkBatch)
                .where(col(BulkBatch.id) == batch)
                .values(status="applied", count=totals["count"])
            )
    except BaseException:
        remove_answers(ctx, batch, overlap=overlap)
        with db.write_session(ctx.engine) as session:
            session.execute(delete(BulkBatch).where(col(BulkBatch.id) == batch))
        raise
    return {"batch": batch, **totals}


def _let_others_write(ctx: Context) -> None:
    """Between two chunks on SQLite, give waiting writers (annotators' claims) their turn: the
    per-process writer lock is not fair, and this thread would otherwise take it back at once."""
    if db.is_sqlite(ctx.engine):
        time.sleep(0.002)


def _apply_chunk(
    session: Session,
    ctx: Context,
    item_ids: list[int],
    *,
    batch: str,
    label: str,
    annotator_id: int,
    overlap: int,
) -> dict[str, int]:
    """One chunk of a batch, in the caller's write transaction."""
    if not db.is_sqlite(ctx.engine):
        # Lock the chunk's items, so that two batches (or a batch and an undo) on the same
        # items take turns (SQLite's BEGIN IMMEDIATE already serialises writers).
        session.exec(select(Item.id).where(col(Item.id).in_(item_ids)).with_for_update())
    found = sort_items(session, item_ids)
    targets = found.targets
    run = session.connection().execute
    previous: dict[int, int] = {}
    if targets:
        previous = dict(
            session.exec(
                select(Annotation.item_id, Annotation.id).where(
                    col(Annotation.item_id).in_(targets), current(), Annotation.origin == BULK
                )
            ).all()  # type: ignore[arg-type]
        )
        now = utcnow()
        bulk_insert_tuples(
            session,
            _ANSWERS,
            ["item_id", "annotator_id", "label", "skipped", "origin", "batch", "created_at"],
            [(item_id, annotator_id, label, False, BULK, batch, now) for item_id in targets],
        )
    if previous:
        newer = dict(
            session.exec(
                select(Annotation.item_id, Annotation.id).where(
                    col(Annotation.item_id).in_(sorted(previous)), Annotation.batch == batch
                )
            ).all()  # type: ignore[arg-type]
        )
        run(_SUPERSEDE, [{"old": old, "new": newer[item]} for item, old in previous.items()])
    fresh = [item_id for item_id in targets if item_id not in previous]
    count_labels(session, fresh, delta=1, overlap=overlap)
    refresh_labels(session, ctx.labels, targets)
    return {
        "count": len(targets),
        "skipped_labelled": len(found.labelled),
        "skipped_not_pool": len(found.not_pool),
        "replaced_bulk": len(previous),
    }


def count_labels(session: Session, item_ids: list[int], *, delta: int, overlap: int) -> None:
    """Add ``delta`` (+1 or -1) to these items' label counts and mark their scores closed (or
    open) where that makes them reach (or fall below) ``overlap``: the set-wise form of what
    :mod:`labeling.annotation.answers` does for one answer."""
    if not item_ids:
        return
    run = session.connection().execute
    counts = run(_ADD_LABEL, {"items": item_ids, "delta": delta}).all()
    # Closing: the count went from overlap - 1 to overlap; opening: from overlap to below.
    edge = overlap if delta > 0 else overlap - 1
    crossed = [item_id for item_id, n in counts if n == edge]
    if crossed:
        run(_MARK_SCORES, {"items": crossed, "closed": delta > 0})


def remove_answers(ctx: Context, batch: str, *, overlap: int) -> int:
    """Delete a batch's answers chunk by chunk, bringing back the answers they superseded and
    the label counts, scores and labels as they were; returns how many were deleted."""
    removed = 0
    size = chunk_size(ctx)
    while True:
        with db.write_session(ctx.engine) as session:
            rows = session.exec(
                select(Annotation.id, Annotation.item_id, Annotation.superseded_by)
                .where(Annotation.batch == batch)
                .order_by(col(Annotation.id))
                .limit(size)
            ).all()
            if not rows:
                return removed
            _remove_chunk(session, ctx, list(rows), overlap=overlap)
        removed += len(rows)
        _let_others_write(ctx)


def _remove_chunk(session: Session, ctx: Context, rows: list[Any], *, overlap: int) -> None:
    """Delete these answers of a batch (``(id, item, superseded_by)`` rows) in the caller's
    write transaction."""
    run = session.connection().execute
    newer_of = {answer_id: superseded_by for answer_id, _item, superseded_by in rows}
    items = sorted({item_id for _id, item_id, _newer in rows})
    # The answers these superseded (an earlier batch's, on the same items) now point at what
    # superseded these, or become current again.
    older = session.exec(
        select(Annotation.id, Annotation.superseded_by).where(
            col(Annotation.item_id).in_(items), col(Annotation.superseded_by).in_(list(newer_of))
        )
    ).all()
    if older:
        run(
            _SUPERSEDE,
            [{"old": old, "new": newer_of[superseded_by]} for old, superseded_by in older],
        )
    restored = {old for old, superseded_by in older if newer_of[superseded_by] is None}
    restored_items = set(
        session.exec(select(Annotation.item_id).where(col(Annotation.id).in_(restored))).all()
    ) if restored else set()  # fmt: skip
    # An item loses a label where its bulk answer was current and no earlier one comes back.
    losing = [
        item_id
        for answer_id, item_id, superseded_by in rows
        if superseded_by is None and item_id not in restored_items
    ]
    count_labels(session, losing, delta=-1, overlap=overlap)
    run(delete(_ANSWERS).where(_ANSWERS.c.id.in_(list(newer_of))))
    refresh_labels(session, ctx.labels, items)


def undo_batch(ctx: Context, batch: str, *, by: str, overlap: int) -> dict[str, Any]:
    """Undo a whole batch (see :func:`remove_answers`); its record stays, marked undone.

    A batch left ``applying`` by a process that died can be undone too: that removes what it
    wrote.
    """
    with db.read_session(ctx.engine) as session:
        record = session.get(BulkBatch, batch)
    if record is None:
        raise BadInput(f"no bulk batch {batch!r}; `labelloop bulk-list` shows the batches")
    if record.status == "undone":
        raise BadInput(
            f"bulk batch {batch!r} was undone already ({record.undone_at:%Y-%m-%d %H:%M} UTC "
            f"by {record.undone_by})"
        )
    removed = remove_answers(ctx, batch, overlap=overlap)
    with db.write_session(ctx.engine) as session:
        session.execute(
            update(BulkBatch)
            .where(col(BulkBatch.id) == batch)
            .values(status="undone", undone_at=utcnow(), undone_by=by)
        )
    return {"batch": batch, "removed": removed, "label": record.label}


def list_batches(ctx: Context) -> list[BatchSummary]:
    """Every bulk batch, newest first."""
    with db.read_session(ctx.engine) as session:
        rows = session.exec(
            select(BulkBatch, Annotator.name)
            .join(Annotator, col(Annotator.id) == col(BulkBatch.annotator_id))
            .order_by(col(BulkBatch.created_at).desc(), col(BulkBatch.id).desc())
        ).all()
    found = []
    for record, name in rows:
        audit = json.loads(record.audit or "{}")
        found.append(
            BatchSummary(
                batch=record.id,
                by=name,
                label=record.label,
                count=record.count,
                audit=audit_words(audit, record.override),
                override=record.override,
                status=record.status,
                created_at=record.created_at,
                undone_at=record.undone_at,
                undone_by=record.undone_by,
                selection=json.loads(record.selection or "{}"),
            )
        )
    return found
