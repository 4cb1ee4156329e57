"""The feed of label changes: every item whose label changed, in the order of the changes.

A service that trains on the labels follows the feed with a cursor (``GET /labels?since=``):
each page gives the items whose label changed after the cursor, in order, and a new cursor.
An item is in the feed once, at its latest change, with its label now (None: it has none, or
it was removed); an item whose label changes again moves to the end.

Every writer of ``Item.label`` (an answer, an undo, a decision, a correction, a bulk chunk, an
import, a removal or a return) marks the items whose label it changed with :func:`mark` (or a
whole import batch with :func:`mark_batch`); when the transaction commits, the marked items get
the next numbers of the ``label`` counter (``Item.label_seq``) and the time
(``Item.label_changed_at``). The numbers are taken as the last step before the commit, so the
counter row's lock on PostgreSQL is held only for that step: two transactions that change labels
take their numbers in the order they commit, and a reader never sees a number before a smaller
one that is still to come. A cursor is therefore never passed by a change made before it. On
SQLite one writer runs at a time, which gives the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from labeling.store.models import Counter, Item, utcnow

_ITEMS = Item.__table__  # type: ignore[attr-defined]
_COUNTERS = Counter.__table__  # type: ignore[attr-defined]
FEED = "label"
# Keys of a session's ``info``: the items and import batches whose labels it changed.
_MARKED = "labelloop.label_feed.items"
_BATCHES = "labelloop.label_feed.batches"

_MOVED = "labelloop.label_feed.moved"

_STAMP = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"))
    .values(label_seq=bindparam("seq"), label_changed_at=bindparam("at"))
)
# The feed follows pool items: a label written on a removed item (a bulk undo reaches it too)
# or on a gold item changes nothing a follower sees.
_STAMP_IN_POOL = _STAMP.where(_ITEMS.c.split == "pool")


def mark(session: Session, item_ids: Iterable[int]) -> None:
    """Put these items in the feed when ``session`` commits (their label changed), those of
    them still in the pool then."""
    ids = session.info.setdefault(_MARKED, set())
    ids.update(item_ids)


def mark_moved(session: Session, item_ids: Iterable[int]) -> None:
    """Put these labelled pool items in the feed when ``session`` commits: they were removed
    from the pool, or came back to it."""
    ids = session.info.setdefault(_MOVED, set())
    ids.update(item_ids)


def mark_batch(session: Session, batch_id: int) -> None:
    """Put every labelled item of this import batch in the feed when ``session`` commits."""
    session.info.setdefault(_BATCHES, set()).add(batch_id)


def _take(connection: Any, n: int) -> int:
    """Advance the feed's counter by ``n``; returns the first of the ``n`` numbers taken."""
    top = connection.execute(
        update(_COUNTERS)
        .where(_COUNTERS.c.name == FEED)
        .values(value=_COUNTERS.c.value + n)
        .returning(_COUNTERS.c.value)
    ).scalar()
    if top is None:  # a store without the row (made by hand): go on after the numbers used
        used = select(func.coalesce(func.max(_ITEMS.c.label_seq), 0))
        top = int(connection.execute(used).scalar_one()) + n
        connection.execute(insert(_COUNTERS).values(name=FEED, value=top))
    return int(top) - n + 1


def _stamp_batch(connection: Any, batch_id: int, now: datetime) -> None:
    """One statement for a whole import: each labelled item's number is the first number
    taken plus its offset from the batch's lowest id (numbers may skip; they never repeat)."""
    labelled = (_ITEMS.c.batch_id == batch_id) & _ITEMS.c.label.is_not(None)
    low, high = connection.execute(
        select(func.min(_ITEMS.c.id), func.max(_ITEMS.c.id)).where(labelled)
    ).one()
    if low is None:
        return
    first = _take(connection, int(high) - int(low) + 1)
    connection.execute(
        update(_ITEMS)
        .where(labelled)
        .values(label_seq=_ITEMS.c.id + (first - int(low)), label_changed_at=now)
    )


@event.listens_for(OrmSession, "before_commit")
def _stamp(session: OrmSession) -> None:
    ids = session.info.pop(_MARKED, None) or set()
    moved = session.info.pop(_MOVED, None) or set()
    batches = session.info.pop(_BATCHES, None)
    if not ids and not moved and not batches:
        return
    connection = session.connection()
    now = utcnow()
    for batch_id in sorted(batches or ()):
        _stamp_batch(connection, batch_id, now)
    for statement, chosen in ((_STAMP_IN_POOL, ids - moved), (_STAMP, moved)):
        if chosen:
            wanted = sorted(chosen)
            numbered = enumerate(wanted, start=_take(connection, len(wanted)))
            params = [{"item": i, "seq": seq, "at": now} for seq, i in numbered]
            connection.execute(statement, params)


@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    for key in (_MARKED, _MOVED, _BATCHES):
        session.info.pop(key, None)


@dataclass(frozen=True)
class Change:
    """One item in the feed: its row id, the id people know it by, its label now (as stored:
    a name, or a multi-label set's encoding; None when it has none or was removed), its split,
    its number in the feed and when the change was made."""

    item_id: int
    external_id: str
    label: str | None
    split: str
    seq: int
    changed_at: datetime


def changes_since(session: Session, since: int, limit: int) -> list[Change]:
    """The first ``limit`` items whose label changed after number ``since``, in feed order."""
    t = _ITEMS.c
    rows = (
        session.connection()
        .execute(
            select(t.id, t.external_id, t.label, t.split, t.label_seq, t.label_changed_at)
            .where(t.label_seq > since)
            .order_by(t.label_seq)
            .limit(limit)
        )
        .all()
    )
    return [
        Change(
            item_id=int(item_id),
            external_id=external_id,
            label=label,
            split=split,
            seq=int(seq),
            changed_at=at,
        )
        for item_id, external_id, label, split, seq, at in rows
    ]


def last_number(session: Session) -> int:
    """The feed's last number now: a cursor from which only later changes are read."""
    found = session.connection().execute(select(_COUNTERS.c.value).where(_COUNTERS.c.name == FEED))
    return int(found.scalar() or 0)
