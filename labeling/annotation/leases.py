"""The annotation queue's order and leases: which item an annotator gets next, held for them.

Every function takes the session first and must run inside :func:`labeling.store.db.write_session`,
so that a claim sees a stable view: ``BEGIN IMMEDIATE`` on SQLite, row locks with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL. An item is held by at most ``overlap`` annotators
(leases plus current labels) and is never served twice to the same annotator. Answers, skips
and undo are in :mod:`labeling.annotation.answers`.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, update
from sqlmodel import Session, col, select

from labeling.errors import UnknownAnnotator
from labeling.store.models import (
    Annotation,
    Annotator,
    ImportBatch,
    Item,
    Lease,
    Round,
    Score,
    utcnow,
)

_GOLD_DRAWS = random.Random()

# Claims and answers run while they hold the store's write lock (one writer at a time on
# SQLite), so their hot statements are built once and run as SQLAlchemy Core on the session's
# connection: building statements and the ORM's unit of work cost several times more than
# running them (measured: 10-15 ms of CPU per answer-and-claim before, 4 ms after).
_ITEMS = Item.__table__  # type: ignore[attr-defined]
_LEASES = Lease.__table__  # type: ignore[attr-defined]
_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_ITEM_SHOWN = select(_ITEMS.c.external_id, _ITEMS.c.text, _ITEMS.c.source).where(
    _ITEMS.c.id == bindparam("item")
)
_ANSWER_LABEL = select(_ANNOTATIONS.c.label).where(_ANNOTATIONS.c.id == bindparam("answer"))
# The one-item page's hold: leases of no browser tab (a tab's buffer is its own, see
# labeling.annotation.buffer).
_HELD = (
    select(_LEASES)
    .where(_LEASES.c.annotator_id == bindparam("me"), _LEASES.c.tab.is_(None))
    .order_by(_LEASES.c.id.desc())
)
EXTEND_LEASE = (
    update(_LEASES)
    .where(_LEASES.c.id == bindparam("lease"))
    .values(expires_at=bindparam("expires"))
)
_ADD_LEASE = insert(_LEASES)
DROP_LEASE = delete(_LEASES).where(_LEASES.c.id == bindparam("lease"))
# The person's lapsed holds of their other browser tabs (not the claiming tab's own, which it
# may still keep: see can_keep).
_DROP_LAPSED_TAB_HOLDS = delete(_LEASES).where(
    _LEASES.c.annotator_id == bindparam("annotator"),
    _LEASES.c.tab.is_not(None),
    _LEASES.c.tab.is_distinct_from(bindparam("tab")),
    _LEASES.c.expires_at <= bindparam("now"),
)


@dataclass(frozen=True)
class QueueItem:
    """An item leased to an annotator, as the UI and the API show it."""

    item_id: int
    external_id: str
    text: str
    fields: dict[str, Any] = field(repr=False)
    served_at: datetime
    expires_at: datetime
    round_id: int | None = None
    # Set when the item came back through undo: the label (or None for a skip) given before.
    previous_label: str | None = None
    is_undo: bool = False


def require_active(annotator: Annotator) -> None:
    """Refuse a deactivated annotator (they keep their history but may not claim or answer)."""
    if not annotator.active:
        raise UnknownAnnotator(f"annotator {annotator.name!r} has been deactivated")


def queue_item(
    session: Session,
    *,
    item_id: int,
    served_at: datetime,
    expires_at: datetime,
    round_id: int | None,
    undo_of: int | None,
) -> QueueItem:
    """The leased item as it is shown; ``undo_of`` (the answer undo brought back) adds its label."""
    run = session.connection().execute
    item = run(_ITEM_SHOWN, {"item": item_id}).one()  # the lease's foreign key guards it
    previous_label = None
    if undo_of is not None:
        previous_label = run(_ANSWER_LABEL, {"answer": undo_of}).scalar()
    return QueueItem(
        item_id=item_id,
        external_id=item.external_id,
        text=item.text,
        fields=json.loads(item.source),
        served_at=served_at,
        expires_at=expires_at,
        round_id=round_id,
        previous_label=previous_label,
        is_undo=undo_of is not None,
    )


def _active_leases_by_others(item_id: Any, annotator_id: Any, now: Any) -> Any:
    """How many unexpired leases of other annotators take a place on the item."""
    return (
        select(func.count())
        .select_from(Lease)
        .where(
            Lease.item_id == item_id,
            Lease.annotator_id != annotator_id,
            Lease.expires_at > now,
            col(Lease.holds).is_(True),
        )
        .scalar_subquery()
    )


def has_room(
    session: Session, *, item_id: int, annotator_id: int, overlap: int, now: datetime
) -> bool:
    """Whether the item can take one more annotator besides the labels and holds it has.

    Reads columns, not ORM objects, so the answer comes from the database now, never from a
    copy cached earlier in the transaction.
    """
    found = session.exec(select(Item.n_labels, Item.split).where(Item.id == item_id)).first()
    if found is None:
        return False
    n_labels, split = found
    if split == "gold":  # gold checks are answered by everyone; overlap does not apply
        return True
    others = session.exec(select(_active_leases_by_others(item_id, annotator_id, now))).one()
    return n_labels + others < overlap


def _candidates(annotator_id: Any, overlap: Any, now: Any, *, labels: Any = None) -> Any:
    """Pool items the annotator may get; with ``labels``, only those with that many labels."""
    seen_by_me = exists().where(
        col(Annotation.item_id) == col(Item.id), col(Annotation.annotator_id) == annotator_id
    )
    # A person may hold several items at once (a browser tab's buffer, two tabs): never the
    # same one twice.
    held_by_me = exists().where(
        col(Lease.item_id) == col(Item.id), col(Lease.annotator_id) == annotator_id
    )
    # Without a count, "+ 0" keeps the filter off the (split, n_labels, rank) index, so that the
    # planner walks the score order instead of sorting the pool's candidates on every claim.
    how_many = col(Item.n_labels) + 0 < overlap if labels is None else col(Item.n_labels) == labels
    return select(Item.id).where(
        Item.split == "pool",
        how_many,
        ~seen_by_me,
        ~held_by_me,
        Item.n_labels + _active_leases_by_others(Item.id, annotator_id, now) < overlap,
    )


@functools.cache
def claim_order(*, scored: bool, prioritised: bool) -> Any:
    """One of the claim's candidate queries, built once; its values come as parameters.

    ``me``, ``overlap`` and ``now`` always; ``promoted`` when ``scored``, ``labels`` (the label
    count of the items it walks) when not; ``priority`` (the prioritised import batches) when
    ``prioritised``. Building these statements costs more than running them, and a claim runs
    while it holds the store's write lock. The queue preview runs the same statements with a
    larger limit, so that it lists items in the order claims serve them.

    Without scores the order is the seeded rank, walked on the (split, n_labels, rank) index
    once per label count below overlap: walking the pool's rank order alone would step over
    every item already labelled ``overlap`` times, a cost that grows with each label given.
    """
    if scored:
        candidates = _candidates(bindparam("me"), bindparam("overlap"), bindparam("now"))
    else:
        candidates = _candidates(
            bindparam("me"), bindparam("overlap"), bindparam("now"), labels=bindparam("labels")
        )
        candidates = candidates.add_columns(col(Item.rank))
    if prioritised:
        candidates = candidates.where(col(Item.batch_id).in_(bindparam("priority", expanding=True)))
    if scored:
        return (
            candidates.join(
                Score,
                (col(Score.item_id) == col(Item.id))
                & (col(Score.round_id) == bindparam("promoted"))
                & col(Score.closed).is_(False),
            )
            .order_by(col(Score.score).desc())
            .limit(1)
        )
    return candidates.order_by(col(Item.rank)).limit(1)


_PRIORITY_BATCHES = select(ImportBatch.id).where(ImportBatch.priority_left > 0)


def _pick_item(
    session: Session, *, annotator_id: int, overlap: int, now: datetime, promoted: int | None
) -> int | None:
    """The best available item for the annotator, locked for this transaction.

    Order: the promoted round's scores, highest first; then (for items imported since that
    round, or before any round) the seeded random rank.

    SQLite: the transaction began with BEGIN IMMEDIATE, so nobody else writes meanwhile and the
    first candidate is the answer. PostgreSQL: the candidate row is locked with
    ``FOR UPDATE SKIP LOCKED``, but the query's snapshot predates the lock, so a lease that
    another transaction committed just before we got the lock is invisible to it (the lease is
    in another table, so PostgreSQL does not re-check the row). A second statement, with a fresh
    snapshot taken after the lock is ours, confirms the item is still available; if not, the
    next candidate is tried.
    """
    params: dict[str, Any] = {"me": annotator_id, "overlap": overlap, "now": now}
    # Imports flagged by the drift check go first while their priority lasts.
    priority = session.connection().execute(_PRIORITY_BATCHES).scalars().all()
    if priority:
        params["priority"] = list(priority)
    if promoted is not None:
        params["promoted"] = promoted
    for prioritised in (True, False) if priority else (False,):
        if promoted is not None:
            best = _first_free(session, claim_order(scored=True, prioritised=prioritised), params)
            if best is not None:
                return int(best[0])
        # The seeded order: the first item of each label count's walk, lowest rank wins.
        query = claim_order(scored=False, prioritised=prioritised)
        firsts = [
            _first_free(session, query, {**params, "labels": labels}) for labels in range(overlap)
        ]
        ranked = [found for found in firsts if found is not None]
        if ranked:
            return int(min(ranked, key=lambda found: found[1])[0])
    return None


@functools.cache
def _still_free() -> Any:
    """Whether the item ``item`` is still a candidate (PostgreSQL's re-check after the lock)."""
    return _candidates(bindparam("me"), bindparam("overlap"), bindparam("now")).where(
        col(Item.id) == bindparam("item")
    )


def _first_free(session: Session, query: Any, params: dict[str, Any]) -> Any:
    """The query's first row (the item's id first), its item locked on PostgreSQL."""
    run = session.connection().execute
    if session.get_bind().dialect.name == "sqlite":
        return run(query, params).first()
    skipped: list[int] = []
    while True:
        attempt = query.where(col(Item.id).not_in(skipped)) if skipped else query
        found = run(attempt.with_for_update(skip_locked=True, of=Item), params).first()
        if found is None:
            return None
        if run(_still_free(), {**params, "item": found[0]}).first() is not None:
            return found
        skipped.append(found[0])


def _gold_turn(gold_rate: float) -> bool:
    """Whether this claim serves a hidden gold check (a fresh draw, ``gold_rate`` on average).

    Only new claims draw: a reload gets the held item back before this is asked, so
    reloading cannot fish for or dodge a check. Gold items are never marked.
    """
    return gold_rate > 0 and _GOLD_DRAWS.random() < gold_rate


def _gold_item(session: Session, annotator_id: int) -> int | None:
    """A gold item this annotator has not seen, in the seeded random order."""
    seen_by_me = exists().where(
        col(Annotation.item_id) == col(Item.id), col(Annotation.annotator_id) == annotator_id
    )
    return session.exec(
        select(Item.id).where(Item.split == "gold", ~seen_by_me).order_by(col(Item.rank)).limit(1)
    ).first()


_PROMOTED = select(Round.id).where(col(Round.promoted).is_(True)).order_by(col(Round.id).desc())


def promoted_round(session: Session) -> int | None:
    """The round whose model orders the queue now (None before the first promotion)."""
    # Core on the session's connection: the ORM's per-statement cost is most of this one's.
    return session.connection().execute(_PROMOTED).scalar()


def claim_next_item(
    session: Session,
    *,
    annotator: Annotator,
    overlap: int,
    lease_seconds: int,
    gold_rate: float = 0.0,
) -> QueueItem | None:
    """Lease the next item to ``annotator``, or return the one they already hold.

    With ``gold_rate`` > 0, that share of claims (on average) serves a gold item the annotator
    has not answered yet, unmarked, as a hidden check of their accuracy.

    Returns None when no item is left for them: every pool item is labelled ``overlap`` times,
    held by others, or already seen (labelled or skipped) by this annotator.
    """
    require_active(annotator)
    assert annotator.id is not None
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    held = _held_again(
        session, annotator_id=annotator.id, overlap=overlap, now=now, expires=expires
    )
    if held is not None:
        return held
    return claim_one(
        session,
        annotator_id=annotator.id,
        overlap=overlap,
        expires=expires,
        promoted=promoted_round(session),
        gold_rate=gold_rate,
        tab=None,
    )


def claim_one(
    session: Session,
    *,
    annotator_id: int,
    overlap: int,
    expires: datetime,
    promoted: int | None,
    gold_rate: float,
    tab: str | None,
) -> QueueItem | None:
    """Lease the queue's next item for the annotator (for browser tab ``tab``, or none) until
    ``expires``: a gold check on its turn, else the best; None when nothing is left for them."""
    now = utcnow()
    # A tab closed without a word (a crash, a lost release) leaves its holds to lapse: they
    # free the items for others, and here for the same person, whom a hold of theirs would
    # otherwise keep from those items for good (a person never holds one item twice).
    session.connection().execute(
        _DROP_LAPSED_TAB_HOLDS, {"annotator": annotator_id, "tab": tab, "now": now}
    )
    item_id = next_item_id(
        session,
        annotator_id=annotator_id,
        overlap=overlap,
        now=now,
        promoted=promoted,
        gold_rate=gold_rate,
    )
    if item_id is None:
        return None
    return add_lease(
        session,
        annotator_id=annotator_id,
        item_id=item_id,
        now=now,
        expires=expires,
        promoted=promoted,
        tab=tab,
    )


def add_lease(
    session: Session,
    *,
    annotator_id: int,
    item_id: int,
    now: datetime,
    expires: datetime,
    promoted: int | None,
    tab: str | None,
) -> QueueItem:
    """Lease ``item_id`` to the annotator (for browser tab ``tab``, or none) and show it."""
    session.connection().execute(
        _ADD_LEASE,
        {
            "item_id": item_id,
            "annotator_id": annotator_id,
            "served_at": now,
            "expires_at": expires,
            "round_id": promoted,
            "undo_of": None,
            "holds": True,
            "tab": tab,
        },
    )
    return queue_item(
        session, item_id=item_id, served_at=now, expires_at=expires, round_id=promoted, undo_of=None
    )


def can_keep(
    session: Session, lease: Any, *, annotator_id: int, overlap: int, now: datetime
) -> bool:
    """Whether a hold can be honoured still: unexpired, made by undo, or expired with nobody
    having taken the item's place since. The one rule for a reload, a tab's buffer and the
    queue preview."""
    return (
        lease.expires_at > now
        or not lease.holds
        or has_room(
            session, item_id=lease.item_id, annotator_id=annotator_id, overlap=overlap, now=now
        )
    )


def _held_again(
    session: Session, *, annotator_id: int, overlap: int, now: datetime, expires: datetime
) -> QueueItem | None:
    """The item the annotator holds, its lease extended to ``expires``; None if they hold none.

    Leases that can no longer be honoured (expired, and the item's places taken meanwhile)
    are dropped on the way.
    """
    run = session.connection().execute
    for lease in run(_HELD, {"me": annotator_id}).all():
        # The annotator gets the same item back (a reload must not skip an item).
        if can_keep(session, lease, annotator_id=annotator_id, overlap=overlap, now=now):
            run(EXTEND_LEASE, {"lease": lease.id, "expires": expires})
            return queue_item(
                session,
                item_id=lease.item_id,
                served_at=lease.served_at,
                expires_at=expires,
                round_id=lease.round_id,
                undo_of=lease.undo_of,
            )
        run(DROP_LEASE, {"lease": lease.id})
    return None


def next_item_id(
    session: Session,
    *,
    annotator_id: int,
    overlap: int,
    now: datetime,
    promoted: int | None,
    gold_rate: float,
) -> int | None:
    """The item a new claim leases: a hidden gold check on its turn, else the queue's best.

    Once no pool item is left for this person, the gold checks they have not answered come
    next, whatever the draw: everyone answers every gold item in time, and "done" never turns
    into a check on a reload. With ``gold_rate`` 0 no gold item is ever served."""
    if _gold_turn(gold_rate):
        item_id = _gold_item(session, annotator_id)
        if item_id is not None:
            return item_id
    item_id = _pick_item(
        session, annotator_id=annotator_id, overlap=overlap, now=now, promoted=promoted
    )
    if item_id is None and gold_rate > 0:
        item_id = _gold_item(session, annotator_id)
    return item_id


def release(session: Session, *, annotator: Annotator) -> int:
    """Hand back every item the annotator holds (sign-out); returns how many."""
    result = session.execute(delete(Lease).where(col(Lease.annotator_id) == annotator.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
