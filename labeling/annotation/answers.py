"""Answers to the queue: labels, skips, and undo back through an annotator's own answers.

Like the claims in :mod:`labeling.annotation.leases`, every function takes the session first and
must run inside :func:`labeling.store.db.write_session`; an answer needs the annotator's lease
on the item and gives it back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from labeling.annotation.leases import DROP_LEASE, QueueItem, has_room, queue_item, require_active
from labeling.annotation.suggestions import Suggestion, suggestion_columns
from labeling.errors import BadInput, NothingToUndo, NotLeased, UnknownLabel
from labeling.store import labelsets
from labeling.store.answers import current, refresh_labels
from labeling.store.models import (
    HUMAN,
    REMOVED,
    SPLITS,
    Annotation,
    Annotator,
    GuidelineVersion,
    ImportBatch,
    Item,
    Lease,
    Round,
    Score,
    utcnow,
)

# Rounds give items closed when they ran this score (or lower) and mark them closed.
CLOSED_MARK = -1.0e29

# An answer runs while it holds the store's write lock, so its statements are built once and
# run as SQLAlchemy Core on the session's connection (see labeling.annotation.leases).
_ITEMS = Item.__table__  # type: ignore[attr-defined]
_LEASES = Lease.__table__  # type: ignore[attr-defined]
_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_MY_LEASE = (
    core_select(
        _LEASES.c.id,
        _LEASES.c.holds,
        _LEASES.c.expires_at,
        _LEASES.c.served_at,
        _LEASES.c.round_id,
    )
    .where(_LEASES.c.item_id == bindparam("item"), _LEASES.c.annotator_id == bindparam("me"))
    .with_for_update()
)
_MY_CURRENT_ANSWER = select(_ANNOTATIONS.c.id, _ANNOTATIONS.c.label).where(
    _ANNOTATIONS.c.item_id == bindparam("item"),
    _ANNOTATIONS.c.annotator_id == bindparam("me"),
    _ANNOTATIONS.c.superseded_by.is_(None),
    _ANNOTATIONS.c.origin == HUMAN,  # not the person's own correction or adjudication
)
_GUIDELINES = GuidelineVersion.__table__  # type: ignore[attr-defined]
# Each answer records the guidelines version that was newest when it was given (None: none).
_ADD_ANSWER = (
    insert(_ANNOTATIONS)
    .values(guidelines_version=core_select(func.max(_GUIDELINES.c.version)).scalar_subquery())
    .returning(_ANNOTATIONS.c.id, _ANNOTATIONS.c.guidelines_version)
)
_SUPERSEDE = (
    update(_ANNOTATIONS)
    .where(_ANNOTATIONS.c.id == bindparam("previous"))
    .values(superseded_by=bindparam("newer"))
)
_COUNT_LABEL = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"))
    .values(n_labels=_ITEMS.c.n_labels + bindparam("delta"))
    .returning(_ITEMS.c.n_labels)
)
_BATCHES = ImportBatch.__table__  # type: ignore[attr-defined]
_COUNT_PRIORITY_DOWN = (
    update(_BATCHES)
    .where(
        _BATCHES.c.id
        == select(_ITEMS.c.batch_id).where(_ITEMS.c.id == bindparam("item")).scalar_subquery(),
        _BATCHES.c.priority_left > 0,
    )
    .values(priority_left=_BATCHES.c.priority_left - 1)
)


def _external_id(session: Session, item_id: int) -> str:
    """The id a person knows an item by (messages never show the store's row id)."""
    found = session.connection().execute(
        core_select(_ITEMS.c.external_id).where(_ITEMS.c.id == item_id)
    )
    return str(found.scalar() or f"#{item_id} (no such item)")


def _record(
    session: Session,
    *,
    annotator: Annotator,
    item_id: int,
    label: str | None,
    duration_ms: int | None,
    overlap: int,
    labels: tuple[str, ...],
    suggestion: Suggestion | None = None,
) -> Annotation:
    """Record an answer (``label``, or None for a skip) on an item the annotator holds, with
    the suggestion the page showed (labeling.annotation.suggestions)."""
    require_active(annotator)
    assert annotator.id is not None
    # Core statements on the session's connection: the same transaction as the ORM work
    # around them, without the ORM's per-statement cost.
    run = session.connection().execute
    who = {"item": item_id, "me": annotator.id}
    lease = _my_lease(session, annotator=annotator, item_id=item_id)
    now = utcnow()
    if lease.holds and lease.expires_at <= now:
        _refuse_if_taken(session, annotator=annotator, item_id=item_id, overlap=overlap, now=now)
    previous = run(_MY_CURRENT_ANSWER, who).first()
    if duration_ms is None:
        duration_ms = max(0, int((now - lease.served_at).total_seconds() * 1000))
    values = {
        "item_id": item_id,
        "annotator_id": annotator.id,
        "label": label,
        "skipped": label is None,
        "duration_ms": duration_ms,
        "round_id": lease.round_id,
        "origin": HUMAN,
        "created_at": now,
        **suggestion_columns(suggestion),
    }
    added = run(_ADD_ANSWER, values).one()
    annotation = Annotation(id=added.id, guidelines_version=added.guidelines_version, **values)
    _count_answer(session, annotation=annotation, previous=previous, overlap=overlap)
    refresh_labels(session, labels, [item_id])
    run(DROP_LEASE, {"lease": lease.id})
    return annotation


def _my_lease(session: Session, *, annotator: Annotator, item_id: int) -> Any:
    """The annotator's lease on the item (its row, locked), or :class:`NotLeased` saying why not.

    Locked so that two submissions of one answer serialise: the second finds no lease.
    """
    run = session.connection().execute
    lease = run(_MY_LEASE, {"item": item_id, "me": annotator.id}).first()
    if lease is not None:
        return lease
    split = run(core_select(_ITEMS.c.split).where(_ITEMS.c.id == item_id)).scalar()
    if split == REMOVED:
        raise NotLeased(
            f"item {_external_id(session, item_id)!r} was removed from the workspace "
            "while you had it; this answer was not recorded. Ask for the next item"
        )
    raise NotLeased(
        f"item {_external_id(session, item_id)!r} is not assigned to annotator "
        f"{annotator.name!r}; ask for the next item first"
    )


def _refuse_if_taken(
    session: Session, *, annotator: Annotator, item_id: int, overlap: int, now: datetime
) -> None:
    """Refuse the answer of an expired hold whose place others have taken meanwhile."""
    assert annotator.id is not None
    if not has_room(session, item_id=item_id, annotator_id=annotator.id, overlap=overlap, now=now):
        raise NotLeased(
            f"the hold of annotator {annotator.name!r} on item "
            f"{_external_id(session, item_id)!r} expired and the item was given to others "
            "meanwhile; this answer was not recorded"
        )


def _count_answer(session: Session, *, annotation: Annotation, previous: Any, overlap: int) -> None:
    """Supersede the annotator's previous answer and keep the item's label count (and the
    scores and import priority that follow from it) in step."""
    run = session.connection().execute
    item_id = annotation.item_id
    delta = int(annotation.label is not None)
    if previous is not None:
        run(_SUPERSEDE, {"previous": previous.id, "newer": annotation.id})
        delta -= int(previous.label is not None)
    if delta:
        n_labels = run(_COUNT_LABEL, {"item": item_id, "delta": delta}).scalar_one()
        _shift_scores(session, item_id=item_id, n_labels=n_labels, delta=delta, overlap=overlap)
    if delta > 0:  # a new label on an item of a prioritised import counts its priority down
        run(_COUNT_PRIORITY_DOWN, {"item": item_id})


_SCORES = Score.__table__  # type: ignore[attr-defined]
_MARK_SCORES = (
    update(_SCORES)
    .where(
        _SCORES.c.round_id.in_(select(Round.id).scalar_subquery()),
        _SCORES.c.item_id == bindparam("item"),
        # A round's own mark for items closed when it ran stays as it is.
        _SCORES.c.score > CLOSED_MARK,
    )
    .values(closed=bindparam("closed"))
)


def _shift_scores(
    session: Session, *, item_id: int, n_labels: int, delta: int, overlap: int
) -> None:
    """Mark the item's scores closed when it gets its last needed label, open when it loses it.

    Closed scores are off the claim's index walk (see ``Score.closed``); their values are
    kept, so an item opened again (an answer replaced by a skip) takes its old place.
    """
    closing = delta > 0 and n_labels - delta < overlap <= n_labels
    opening = delta < 0 and n_labels < overlap <= n_labels - delta
    if closing or opening:
        session.connection().execute(_MARK_SCORES, {"item": item_id, "closed": closing})


def annotate(
    session: Session,
    *,
    annotator: Annotator,
    item_id: int,
    label: str,
    labels: tuple[str, ...],
    overlap: int,
    duration_ms: int | None = None,
    multilabel: bool = False,
    suggestion: Suggestion | None = None,
) -> Annotation:
    """Record ``label`` for an item the annotator holds; a revisit supersedes the old answer.
    With ``multilabel``, ``label`` is a stored set (:func:`answer_value` makes one)."""
    label = checked_value(label, labels, multilabel)
    if suggestion is not None and suggestion.value is not None:
        suggestion = replace(suggestion, value=checked_value(suggestion.value, labels, multilabel))
    return _record(
        session,
        annotator=annotator,
        item_id=item_id,
        label=label,
        duration_ms=duration_ms,
        overlap=overlap,
        labels=labels,
        suggestion=suggestion,
    )


def checked_value(label: str, labels: tuple[str, ...], multilabel: bool) -> str:
    """``label`` if it is what an answer of this workspace stores (one of ``labels``, or with
    ``multilabel`` a stored set of them, respelt in label order); else UnknownLabel."""
    if not multilabel:
        if label not in labels:
            raise UnknownLabel(f"label {label!r} is not one of: {', '.join(labels)}")
        return label
    try:
        return labelsets.encode(labelsets.decode(label), labels)
    except (ValueError, TypeError, BadInput) as exc:
        raise UnknownLabel(f"not a set of labels from {', '.join(labels)}: {label!r}") from exc


def answer_value(label: str | Collection[str], labels: tuple[str, ...], multilabel: bool) -> str:
    """What an answer stores: a label, or (multi-label) a set of labels as
    :mod:`labeling.store.labelsets` stores it; an unknown name is refused, named."""
    if not multilabel:
        if not isinstance(label, str):
            raise UnknownLabel(
                f"this workspace is single-label: expected one label from {', '.join(labels)}, "
                f"found {label!r}"
            )
        return label
    if isinstance(label, str):
        raise UnknownLabel(
            "this workspace is multi-label: expected a set of labels, e.g. "
            f"[{labels[0]!r}] (an empty set for none of them), found {label!r}"
        )
    unknown = [name for name in label if name not in labels]
    if unknown:
        raise UnknownLabel(f"label {unknown[0]!r} is not one of: {', '.join(labels)}")
    return labelsets.encode(label, labels)


def skip(
    session: Session,
    *,
    annotator: Annotator,
    item_id: int,
    labels: tuple[str, ...],
    overlap: int,
    duration_ms: int | None = None,
    suggestion: Suggestion | None = None,
) -> Annotation:
    """Pass on an item: recorded, never served to this annotator again (except by undo)."""
    return _record(
        session,
        annotator=annotator,
        item_id=item_id,
        label=None,
        duration_ms=duration_ms,
        overlap=overlap,
        labels=labels,
        suggestion=suggestion,
    )


def undo(session: Session, *, annotator: Annotator, overlap: int, lease_seconds: int) -> QueueItem:
    """Give the annotator back the item they answered before the one in front of them.

    Their earlier answer stays current until they answer again, which supersedes it. Undo
    repeated walks further back through their own history. A skipped item whose places have
    been taken by others since is passed over: answering it now would exceed ``overlap``.
    """
    require_active(annotator)
    assert annotator.id is not None
    # The one-item page's leases only: a browser tab's buffer keeps its items (its own undo
    # is labeling.annotation.buffer's).
    mine = (col(Lease.annotator_id) == annotator.id) & col(Lease.tab).is_(None)
    held = session.exec(select(Lease).where(mine).order_by(col(Lease.id).desc())).all()
    anchor = next((lease.undo_of for lease in held if lease.undo_of is not None), None)
    now = utcnow()
    target = undo_target(
        session, annotator_id=annotator.id, before=anchor, overlap=overlap, now=now
    )
    if target is None:
        raise NothingToUndo(f"annotator {annotator.name!r} has no earlier answer to go back to")
    session.execute(delete(Lease).where(mine))
    lease = Lease(
        item_id=target.item_id,
        annotator_id=annotator.id,
        served_at=now,
        expires_at=now + timedelta(seconds=lease_seconds),
        round_id=target.round_id,
        undo_of=target.id,
        holds=target.skipped,
    )
    session.add(lease)
    session.flush()
    return queue_item(
        session,
        item_id=lease.item_id,
        served_at=lease.served_at,
        expires_at=lease.expires_at,
        round_id=lease.round_id,
        undo_of=lease.undo_of,
    )


def undo_target(
    session: Session, *, annotator_id: int, before: int | None, overlap: int, now: datetime
) -> Annotation | None:
    """The annotator's latest current answer (older than answer ``before``) undo can bring back."""
    query = select(Annotation).where(
        Annotation.annotator_id == annotator_id,
        current(),
        Annotation.origin == HUMAN,
        # an item removed since (labeling.data.removal) is not brought back
        exists().where(col(Item.id) == col(Annotation.item_id), col(Item.split).in_(SPLITS)),
        # an item a browser tab of theirs holds already (its own undo brought it back)
        ~exists().where(
            col(Lease.item_id) == col(Annotation.item_id),
            col(Lease.annotator_id) == annotator_id,
            col(Lease.tab).is_not(None),
        ),
    )
    if before is not None:
        query = query.where(col(Annotation.id) < before)
    postgres = session.get_bind().dialect.name != "sqlite"
    for candidate in session.exec(query.order_by(col(Annotation.id).desc())).all():
        if candidate.skipped and postgres:
            # Lock the item as claims do, then look for room with a fresh snapshot: without
            # the lock, a claim committing between our check and our lease would also take
            # the last place, and the item would end with overlap + 1 labels. (SQLite's
            # BEGIN IMMEDIATE already serialises writers.)
            session.exec(select(Item.id).where(Item.id == candidate.item_id).with_for_update())
        if not candidate.skipped or has_room(
            session,
            item_id=candidate.item_id,
            annotator_id=annotator_id,
            overlap=overlap,
            now=now,
        ):
            return candidate
    return None
