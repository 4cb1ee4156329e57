"""Removing items from a workspace, and putting them back (soft delete).

A removed item keeps its row, its text, every answer given on it, its LF votes and its weak
label; only its split changes, to ``removed``, with the split it came from, the time and who
removed it alongside. Every query of the queue, the rounds, the metrics and the export asks
for ``pool`` or ``gold`` items, so a removed item is gone from all of them at once, and
restoring it puts it back exactly as it was. Leases on a removed item are dropped, so nobody
keeps labelling it; an answer in flight is refused with a message that says why.

Items are chosen by external id (the ids people see) or by import batch (``labelloop items
batches`` lists them). A list holding an unknown id, or an id in the wrong state, is refused
whole: nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from labeling.errors import BadInput
from labeling.store import label_feed
from labeling.store.models import REMOVED, SPLITS, ImportBatch, Item, Lease, utcnow

# Ids per IN (...) list: under every backend's parameter limit.
_ID_CHUNK = 5_000


@dataclass(frozen=True)
class RemovalReport:
    """What a remove or restore did: items changed, and those already in the wanted state."""

    changed: int
    unchanged: int
    leases_dropped: int = 0


@dataclass(frozen=True)
class BatchInfo:
    """One import batch as ``labelloop items batches`` and the Data page list it."""

    batch_id: int
    source_name: str
    split: str
    imported: int
    removed: int
    created_at: datetime


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[k : k + _ID_CHUNK] for k in range(0, len(values), _ID_CHUNK)]


def _select_ids(
    session: Session, *, external_ids: Sequence[str] | None, batch_id: int | None
) -> list[tuple[int, str]]:
    """(row id, split) of the chosen items; refuses unknown ids and batches by their names."""
    if (external_ids is None) == (batch_id is None):
        raise BadInput("choose the items by external id or by import batch (one of the two)")
    if batch_id is not None:
        if session.get(ImportBatch, batch_id) is None:
            known = session.exec(select(ImportBatch.id).order_by(col(ImportBatch.id))).all()
            raise BadInput(
                f"option '--batch': no import batch {batch_id}; the batches are "
                f"{', '.join(str(k) for k in known) or 'none (nothing imported yet)'} "
                "(labelloop items batches lists them)"
            )
        rows: list[Any] = list(
            session.execute(
                select(Item.id, Item.split).where(Item.batch_id == batch_id)  # type: ignore[call-overload]
            ).all()
        )
        return [(int(i), str(s)) for i, s in rows]
    assert external_ids is not None
    wanted = list(dict.fromkeys(str(e) for e in external_ids))
    if not wanted:
        raise BadInput("no item ids given")
    found: dict[str, tuple[int, str]] = {}
    for part in _chunks(wanted):
        rows = list(
            session.execute(
                select(Item.id, Item.external_id, Item.split).where(  # type: ignore[call-overload]
                    col(Item.external_id).in_(part)
                )
            ).all()
        )
        for item_id, external_id, split in rows:
            found[str(external_id)] = (int(item_id), str(split))
    missing = [e for e in wanted if e not in found]
    if missing:
        shown = ", ".join(repr(e) for e in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise BadInput(f"no item with id {shown}{more}; nothing was changed")
    return [found[e] for e in wanted]


def remove_items(
    session: Session,
    *,
    external_ids: Sequence[str] | None = None,
    batch_id: int | None = None,
    by: str | None = None,
) -> RemovalReport:
    """Remove the chosen items (already removed ones are counted, not touched)."""
    chosen = _select_ids(session, external_ids=external_ids, batch_id=batch_id)
    live = [item_id for item_id, split in chosen if split in SPLITS]
    now = utcnow()
    dropped = 0
    for k in range(0, len(live), _ID_CHUNK):
        part = live[k : k + _ID_CHUNK]
        _mark_labelled(session, part)
        session.execute(
            update(Item)
            .where(col(Item.id).in_(part), col(Item.split).in_(SPLITS))
            .values(removed_from=Item.split, split=REMOVED, removed_at=now, removed_by=by)
        )
        held = select(func.count()).where(col(Lease.item_id).in_(part))
        dropped += int(session.exec(held).one())
        session.execute(delete(Lease).where(col(Lease.item_id).in_(part)))
    return RemovalReport(
        changed=len(live), unchanged=len(chosen) - len(live), leases_dropped=dropped
    )


def restore_items(
    session: Session, *, external_ids: Sequence[str] | None = None, batch_id: int | None = None
) -> RemovalReport:
    """Put removed items back in the split they came from (others are counted, not touched)."""
    chosen = _select_ids(session, external_ids=external_ids, batch_id=batch_id)
    gone = [item_id for item_id, split in chosen if split == REMOVED]
    for k in range(0, len(gone), _ID_CHUNK):
        part = gone[k : k + _ID_CHUNK]
        _mark_labelled(session, part)
        session.execute(
            update(Item)
            .where(col(Item.id).in_(part), col(Item.split) == REMOVED)
            .values(split=Item.removed_from, removed_from=None, removed_at=None, removed_by=None)
        )
    return RemovalReport(changed=len(gone), unchanged=len(chosen) - len(gone))


def _mark_labelled(session: Session, item_ids: list[int]) -> None:
    """A labelled item leaves (or comes back to) the feed of labels when it is removed (or
    restored): the feed says so (labeling.store.label_feed)."""
    in_pool = (col(Item.split) == "pool") | (col(Item.removed_from) == "pool")
    labelled = select(Item.id).where(
        col(Item.id).in_(item_ids), col(Item.label).is_not(None), in_pool
    )
    label_feed.mark_moved(session, session.exec(labelled).all())  # type: ignore[arg-type]


def removed_count(session: Session) -> int:
    return int(session.exec(select(func.count()).where(Item.split == REMOVED)).one())


def list_batches(session: Session) -> list[BatchInfo]:
    """Every import batch, oldest first, with how many of its items are removed now."""
    removed = dict(
        session.exec(
            select(Item.batch_id, func.count())  # type: ignore[call-overload]
            .where(Item.split == REMOVED)
            .group_by(col(Item.batch_id))
        ).all()
    )
    return [
        BatchInfo(
            batch_id=int(b.id),
            source_name=b.source_name,
            split=b.split,
            imported=b.imported,
            removed=int(removed.get(b.id, 0)),
            created_at=b.created_at,
        )
        for b in session.exec(select(ImportBatch).order_by(col(ImportBatch.id))).all()
        if b.id is not None
    ]
