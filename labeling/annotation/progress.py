"""One person's numbers beside the item: progress, why the queue is empty, their own stats.

Pool-wide counts are shared by everyone on the Label page and cached for a few seconds per
store (:class:`PoolCounts`); a person's own counts are read fresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func
from sqlmodel import Session, col, select

from labeling.store import db
from labeling.store.answers import current
from labeling.store.models import Annotation, Annotator, Item, Lease, utcnow

# Pool-wide counts on the Label page are shared by everyone and refreshed this often.
POOL_COUNTS_TTL = 5.0


@dataclass(frozen=True)
class Progress:
    """The numbers an annotator sees beside the item."""

    today: int  # my labels since local midnight
    mine: int  # my current labels in total
    labelled: int  # pool items with at least one label (anyone's)
    pool: int  # pool items
    queue_left: int  # pool items that still need a label


def progress_text(progress: Progress) -> str:
    """The Label page's progress line (both pages, one definition)."""
    share = progress.labelled / progress.pool if progress.pool else 0.0
    return (
        f"{progress.labelled:,} of {progress.pool:,} labelled ({share:.0%})  ·  "
        f"you today: {progress.today:,}  ·  queue left: {progress.queue_left:,}"
    )


@dataclass(frozen=True)
class EmptyQueue:
    """Why there is nothing to label: ``reason`` is a stable key, ``message`` is for people."""

    reason: str  # empty_pool | all_labelled | leased_to_others | seen_all
    message: str
    open_items: int
    leased_to_others: int


class PoolCounts:
    """Pool size, labelled and open counts, cached for a few seconds per store."""

    _lock = threading.Lock()
    _cache: dict[tuple[str, int], tuple[float, tuple[int, int, int]]] = {}

    @classmethod
    def get(cls, engine: Engine, db_url: str, overlap: int) -> tuple[int, int, int]:
        key = (db_url, overlap)
        now = time.monotonic()
        with cls._lock:
            hit = cls._cache.get(key)
        if hit is not None and now - hit[0] < POOL_COUNTS_TTL:
            return hit[1]
        with db.read_session(engine) as session:
            row = session.exec(
                select(
                    func.count(),
                    func.sum(case((col(Item.n_labels) > 0, 1), else_=0)),
                    func.sum(case((col(Item.n_labels) < overlap, 1), else_=0)),
                ).where(Item.split == "pool")
            ).one()
        counts = (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))
        with cls._lock:
            cls._cache[key] = (now, counts)
        return counts

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._cache.clear()


def _local_midnight_utc() -> datetime:
    local = datetime.now().astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def my_label_counts(session: Session, me: Annotator) -> tuple[int, int]:
    """The person's current human labels: in total, and since local midnight."""
    row = session.exec(
        select(
            func.count(),
            func.sum(case((col(Annotation.created_at) >= _local_midnight_utc(), 1), else_=0)),
        )
        .select_from(Annotation)
        .where(
            Annotation.annotator_id == me.id,
            current(),
            col(Annotation.label).is_not(None),
            Annotation.origin == "human",
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def progress_line(
    session: Session, me: Annotator, *, engine: Engine, db_url: str, overlap: int
) -> Progress:
    """The numbers beside the item, on both Label pages: the person's labels today and in
    total (counted now), the pool's labelled and open items (cached a few seconds)."""
    pool, labelled, open_items = PoolCounts.get(engine, db_url, overlap)
    mine, today = my_label_counts(session, me)
    return Progress(today=today, mine=mine, labelled=labelled, pool=pool, queue_left=open_items)


def why_empty(session: Session, me: Annotator, *, overlap: int) -> EmptyQueue:
    """Explain an empty queue: nothing imported, all done, or the rest held by others."""
    now = utcnow()
    pool = session.exec(select(func.count()).where(Item.split == "pool")).one()
    open_items = session.exec(
        select(func.count()).where(Item.split == "pool", Item.n_labels < overlap)
    ).one()
    seen = session.exec(
        select(func.count(func.distinct(Annotation.item_id)))
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(Annotation.annotator_id == me.id, Item.split == "pool", Item.n_labels < overlap)
    ).one()
    held = session.exec(
        select(func.count(func.distinct(Lease.item_id))).where(
            Lease.annotator_id != me.id, Lease.expires_at > now
        )
    ).one()
    if pool == 0:
        return EmptyQueue("empty_pool", "Nothing has been imported to label yet.", open_items, held)
    if open_items == 0:
        return EmptyQueue(
            "all_labelled",
            f"All {pool:,} items are labelled"
            + (f" {overlap} times each." if overlap > 1 else "."),
            open_items,
            held,
        )
    if open_items <= seen:
        return EmptyQueue(
            "seen_all",
            f"You have answered every item still open ({open_items:,}); they wait for "
            "other annotators.",
            open_items,
            held,
        )
    return EmptyQueue(
        "leased_to_others",
        f"The {open_items - seen:,} items still open are being labelled by others right now. "
        "Items left unanswered come back when their hold expires; try again in a minute.",
        open_items,
        held,
    )


def answers_per_day(session: Session, me: Annotator, *, days: int) -> dict[str, Any]:
    """The person's current human answers: labels given, and labels per local day."""
    since = utcnow() - timedelta(days=days)
    rows = session.exec(
        select(Annotation.label, Annotation.created_at).where(
            Annotation.annotator_id == me.id, current(), Annotation.origin == "human"
        )
    ).all()
    labels = [r[0] for r in rows if r[0] is not None]
    per_day: dict[str, int] = {}
    for label, created in rows:
        if label is None or created is None:
            continue
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        if created >= since:
            day = created.astimezone().date().isoformat()
            per_day[day] = per_day.get(day, 0) + 1
    return {"labels": labels, "per_day": dict(sorted(per_day.items()))}
