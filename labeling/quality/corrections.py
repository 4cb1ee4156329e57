"""Corrections and flags: fixing any item's label after the fact, and raising a doubt about it.

A correction is an annotation of origin ``correction`` by the engineer or lead who made it,
the sibling of a lead's adjudication (:func:`labeling.quality.review.adjudicate`): it decides
the item's label outright (see :func:`labeling.store.answers.decide`). It supersedes the
item's current decisions (an adjudication, an earlier correction); people's own answers and
bulk labels stay current (agreement and annotator accuracy still see what people said, and
undoing a bulk batch stays exact), and the decision outranks them. Nothing is deleted: the
superseded rows stay in the history with ``superseded_by``.

The annotation table has no room for a note, so a correction's note (when one is given) is
kept as a flag on the item that is resolved at once by the person correcting: the item's
history shows why its label changed, and the Review page's open flags stay free of it.

A flag is a note that something is wrong with an item (a bad text, a label to look at again),
raised by anyone signed in and listed on the Review page until a lead resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from labeling.annotation.answers import checked_value
from labeling.errors import BadInput, UnknownItem
from labeling.store.answers import current, refresh_labels
from labeling.store.models import (
    CORRECTION,
    DECISIONS,
    REMOVED,
    Annotation,
    Annotator,
    Flag,
    Item,
    utcnow,
)

# Longest flag note kept (characters): a note is a sentence or two, not a document.
NOTE_LIMIT = 2_000


class FlagRecord(TypedDict):
    """One flag as ``labelloop flags --json``, the Review page and the item page show it."""

    flag: int  # its number, for resolving it
    item: str  # the item's external id
    text: str
    note: str
    who: str
    when: str  # ISO 8601, UTC
    resolved: bool
    resolved_at: str | None
    resolved_by: str | None


@dataclass(frozen=True)
class Correction:
    """What :func:`correct` wrote: the new decision, what it superseded, the label before."""

    annotation: Annotation
    external_id: str
    previous_label: str | None
    superseded: list[int]


def iso(moment: datetime | None) -> str | None:
    """A stored timestamp as ISO 8601 text (every timestamp in the store is UTC)."""
    return None if moment is None else moment.isoformat()


def find_item(session: Session, external_id: str, *, lock: bool = False) -> Item:
    """The item people know by ``external_id`` (locked for the transaction with ``lock``:
    FOR NO KEY UPDATE on PostgreSQL, the lock an update of the row takes, which other
    transactions' foreign-key checks on the item do not wait for)."""
    query = select(Item).where(Item.external_id == str(external_id))
    item = session.exec(query.with_for_update(key_share=True) if lock else query).first()
    if item is None:
        raise UnknownItem(f"no item with id {external_id!r}")
    return item


def correct(
    session: Session,
    *,
    person: Annotator,
    external_id: str,
    label: str,
    labels: tuple[str, ...],
    multilabel: bool = False,
    note: str = "",
) -> Correction:
    """Make ``label`` the item's label: a correction by ``person`` (see the module's docstring).

    Refuses gold items (their gold label is final) and removed items. The item's row is
    locked first, so two corrections of one item at once leave one current decision.
    """
    label = checked_value(label, labels, multilabel)
    item = _correctable(find_item(session, external_id, lock=True))
    assert item.id is not None and person.id is not None
    note = clean_note(note, required=False)
    previous = session.exec(
        select(Annotation).where(
            Annotation.item_id == item.id,
            current(),
            col(Annotation.origin).in_(DECISIONS),
        )
    ).all()
    now = utcnow()
    decision = Annotation(
        item_id=item.id,
        annotator_id=person.id,
        label=label,
        skipped=False,
        origin=CORRECTION,
        created_at=now,
    )
    session.add(decision)
    session.flush()
    for old in previous:
        old.superseded_by = decision.id
        session.add(old)
    if note:
        # No column holds a note: a flag resolved at once keeps it in the item's history.
        session.add(
            Flag(
                item_id=item.id,
                annotator_id=person.id,
                note=f"corrected to {label}: {note}",
                created_at=now,
                resolved_at=now,
                resolved_by=person.name,
            )
        )
    session.flush()
    before = item.label
    refresh_labels(session, labels, [item.id])
    return Correction(decision, item.external_id, before, [int(old.id or 0) for old in previous])


def _correctable(item: Item) -> Item:
    """The item, unless it is removed or gold (its gold label is final)."""
    if item.split == REMOVED:
        raise BadInput(
            f"item {item.external_id!r} was removed from the workspace; restore it "
            "(`labelloop items restore`) before correcting its label"
        )
    if item.split == "gold":
        raise BadInput(
            f"item {item.external_id!r} is a gold item; its gold label "
            f"{item.gold_label!r} is final and cannot be corrected"
        )
    return item


def clean_note(note: str, *, required: bool) -> str:
    """A note stripped of surrounding blanks and checked: not empty (when ``required``), not
    longer than :data:`NOTE_LIMIT`."""
    note = (note or "").strip()
    if required and not note:
        raise BadInput("a flag needs a note: say what is wrong with the item")
    if len(note) > NOTE_LIMIT:
        raise BadInput(f"note: expected at most {NOTE_LIMIT:,} characters, found {len(note):,}")
    return note


def flag(session: Session, *, person: Annotator, external_id: str, note: str) -> Flag:
    """Raise a flag on an item with ``note``; it stays open on the Review page until resolved.

    Gold items may be flagged (a gold label can be wrong too); removed items may not.
    """
    note = clean_note(note, required=True)
    item = find_item(session, external_id)
    if item.split == REMOVED:
        raise BadInput(f"item {item.external_id!r} was removed from the workspace; nothing to flag")
    assert item.id is not None and person.id is not None
    raised = Flag(item_id=item.id, annotator_id=person.id, note=note, created_at=utcnow())
    session.add(raised)
    session.flush()
    return raised


def resolve_flag(session: Session, *, flag_id: int, by: Annotator) -> Flag:
    """Mark a flag resolved by ``by``; a flag resolved already is refused, naming who did it."""
    found = session.exec(select(Flag).where(Flag.id == flag_id).with_for_update()).first()
    if found is None:
        raise BadInput(f"no flag number {flag_id}")
    if found.resolved_at is not None:
        external_id = session.exec(select(Item.external_id).where(Item.id == found.item_id)).one()
        raise BadInput(
            f"flag {flag_id} on item {external_id!r} was resolved already, by "
            f"{found.resolved_by} at {found.resolved_at:%Y-%m-%d %H:%M} UTC"
        )
    found.resolved_at = utcnow()
    found.resolved_by = by.name
    session.add(found)
    session.flush()
    return found


def list_flags(
    session: Session, *, open_only: bool = True, item_id: int | None = None
) -> list[FlagRecord]:
    """Flags, newest first: the open ones (or, without ``open_only``, every one), of every
    item or of one item (``item_id``, its row id)."""
    query: Any = (
        select(Flag, Item.external_id, Item.text, Annotator.name)
        .join(Item, col(Item.id) == col(Flag.item_id))
        .join(Annotator, col(Annotator.id) == col(Flag.annotator_id))
        .order_by(col(Flag.id).desc())
    )
    if open_only:
        query = query.where(col(Flag.resolved_at).is_(None))
    if item_id is not None:
        query = query.where(Flag.item_id == item_id)
    return [
        {
            "flag": int(raised.id or 0),
            "item": external_id,
            "text": text,
            "note": raised.note,
            "who": name,
            "when": iso(raised.created_at) or "",
            "resolved": raised.resolved_at is not None,
            "resolved_at": iso(raised.resolved_at),
            "resolved_by": raised.resolved_by,
        }
        for raised, external_id, text, name in session.exec(query).all()
    ]
