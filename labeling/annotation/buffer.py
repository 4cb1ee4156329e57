"""The buffered Label page's store side: a browser tab's operations, applied once each, and the
items its buffer holds.

With ``prefetch = K`` the Label page keeps the item on screen and up to K more in the browser
(``labeling/ui/views/label_buffer.js``); a key press shows the next one at once and the answer
goes to the server in the background, in small batches (``labeling/ui/label_route.py``). Each
operation carries a client id made by the tab: :class:`~labeling.store.models.ClientOp` records
the ones applied, so a resend (after a lost reply, a reload, a server restart) is acknowledged
and never applied twice. Every function here takes the session first and runs inside
:func:`labeling.store.db.write_session`, like the claims and answers it builds on.

The items a tab holds are leases like any other (they count toward ``overlap`` and expire),
marked with the tab's id: the one-item page's reload and undo leave them alone, and a person's
two tabs never hold the same item (a claim never leases an item its person holds already).
A tab's holds are short (:data:`TAB_HOLD_SECONDS`) and renewed by each of its batches, the
page's heartbeat included, so that a tab closed or crashed without a word gives its items back
within minutes instead of ``lease_seconds``; a tab that closes properly sends a ``release``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert
from sqlalchemy import select as core_select
from sqlmodel import Session

from labeling.annotation import answers
from labeling.annotation.leases import (
    DROP_LEASE,
    EXTEND_LEASE,
    QueueItem,
    can_keep,
    claim_one,
    has_room,
    promoted_round,
    queue_item,
    require_active,
)
from labeling.annotation.suggestions import Suggestion
from labeling.errors import LabelloopError, NothingToUndo, NotLeased, UnknownItem
from labeling.quality import corrections
from labeling.store.models import (
    HUMAN,
    SPLITS,
    Annotation,
    Annotator,
    ClientOp,
    Item,
    Lease,
    utcnow,
)

KINDS = ("answer", "skip", "undo", "flag", "release")
# How long a browser tab's holds last unless renewed: its heartbeat comes every 60 s, up to two
# minutes apart in a hidden tab (Chrome runs its timers once a minute), plus a slow reply's
# margin. A tab gone without a word hands its items back this soon (docs/ui.md).
TAB_HOLD_SECONDS = 180
_OPS = ClientOp.__table__  # type: ignore[attr-defined]
_LEASES = Lease.__table__  # type: ignore[attr-defined]
_ITEMS = Item.__table__  # type: ignore[attr-defined]
_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]
_APPLIED = core_select(_OPS.c.annotator_id).where(_OPS.c.cid == bindparam("cid"))
_ANSWER_OF = core_select(_OPS.c.annotation_id).where(
    _OPS.c.cid == bindparam("cid"), _OPS.c.annotator_id == bindparam("me")
)
_RECORD = insert(_OPS)
_ITEM_BY_NAME = core_select(_ITEMS.c.id).where(_ITEMS.c.external_id == bindparam("name"))
_TAB_LEASES = (
    core_select(_LEASES, _ITEMS.c.external_id)
    .join(_ITEMS, _ITEMS.c.id == _LEASES.c.item_id)
    .where(_LEASES.c.annotator_id == bindparam("me"), _LEASES.c.tab == bindparam("tab"))
    .order_by(_LEASES.c.id)
)
_MY_LEASE_ON = core_select(_LEASES.c.id, _LEASES.c.tab).where(
    _LEASES.c.annotator_id == bindparam("me"), _LEASES.c.item_id == bindparam("item")
)


@dataclass(frozen=True)
class Op:
    """One operation of a tab: ``kind`` is one of :data:`KINDS` (``release``: hand back every
    item the tab holds, as it closes); ``item`` the external id it is about (answer, skip,
    flag); ``label`` a label, or a list of them in a multi-label workspace; ``of`` the client
    id of the answer an undo takes back (None: this tab knows no answer of its own to take
    back, so walk into the person's history)."""

    cid: str
    kind: str
    item: str | None = None
    label: str | list[str] | None = None
    ms: int | None = None
    suggestion: Suggestion | None = None
    of: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Ack:
    """What became of one operation: applied (``ok``), applied before (``dup``), or refused
    for good with ``error`` (``item``: the item it was about)."""

    cid: str
    ok: bool
    dup: bool = False
    error: str | None = None
    item: str | None = None


@dataclass
class Refill:
    """The tab's buffer after a batch: ``items`` newly given to it (in queue order),
    ``dropped`` items it no longer holds (external id, why), and ``done`` when the queue had no
    more for this person."""

    items: list[QueueItem] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    done: bool = False


@dataclass(frozen=True)
class Settings:
    """The workspace settings a batch obeys."""

    labels: tuple[str, ...]
    multilabel: bool
    overlap: int
    lease_seconds: int
    gold_rate: float

    @property
    def tab_hold(self) -> timedelta:
        """How long a tab's holds last from its last batch (never longer than a lease)."""
        return timedelta(seconds=min(self.lease_seconds, TAB_HOLD_SECONDS))


def apply_ops(
    session: Session, *, annotator: Annotator, tab: str, ops: Sequence[Op], settings: Settings
) -> tuple[list[Ack], dict[str, QueueItem]]:
    """Apply ``ops`` in order, each at most once ever; the acknowledgements, and the item
    each applied undo brought back (by the undo's client id).

    An operation that is refused raises before it writes anything (the lease, label and room
    checks come first), so the others of the batch go on in the same transaction."""
    require_active(annotator)
    assert annotator.id is not None
    acks: list[Ack] = []
    undone: dict[str, QueueItem] = {}
    run = session.connection().execute
    for op in ops:
        applied_by = run(_APPLIED, {"cid": op.cid}).scalar()
        if applied_by is not None:
            acks.append(_again(op, applied_by == annotator.id))
            continue
        try:
            brought = _apply(session, annotator=annotator, tab=tab, op=op, settings=settings)
        except LabelloopError as exc:
            if run(_APPLIED, {"cid": op.cid}).scalar() == annotator.id:
                # PostgreSQL: a resend raced the first send, which won the lease's row lock.
                acks.append(Ack(op.cid, ok=True, dup=True))
            else:
                acks.append(Ack(op.cid, ok=False, error=_said(exc), item=op.item))
            continue
        if brought is not None:
            undone[op.cid] = brought
        if op.kind == "release":  # what undo brought back before it went back too
            undone.clear()
        acks.append(Ack(op.cid, ok=True))
    return acks, undone


def _again(op: Op, mine: bool) -> Ack:
    if mine:
        return Ack(op.cid, ok=True, dup=True)
    return Ack(
        op.cid,
        ok=False,
        error=f"operation id {op.cid!r} was used already by someone else; nothing was saved",
        item=op.item,
    )


def _said(exc: LabelloopError) -> str:
    text = str(exc).rstrip(".")
    return f"Not saved: {text[:1].lower()}{text[1:]}." if isinstance(exc, NotLeased) else text


def _apply(
    session: Session, *, annotator: Annotator, tab: str, op: Op, settings: Settings
) -> QueueItem | None:
    assert annotator.id is not None
    answer_id: int | None = None
    brought: QueueItem | None = None
    if op.kind in ("answer", "skip"):
        item_id: int | None = _item_id(session, op.item)
        assert item_id is not None
        answer_id = _answer(session, annotator=annotator, item_id=item_id, op=op, s=settings)
    elif op.kind == "undo":
        brought, answer_id = _undo(
            session, annotator=annotator, tab=tab, of=op.of, settings=settings
        )
        item_id = brought.item_id
    elif op.kind == "release":
        release_tab(session, annotator=annotator, tab=tab)
        item_id = None
    else:
        raised = corrections.flag(
            session, person=annotator, external_id=op.item or "", note=op.note
        )
        item_id = raised.item_id
    session.connection().execute(
        _RECORD,
        {
            "cid": op.cid,
            "annotator_id": annotator.id,
            "tab": tab,
            "op": op.kind,
            "item_id": item_id,
            "annotation_id": answer_id,
            "created_at": utcnow(),
        },
    )
    return brought


def _item_id(session: Session, name: str | None) -> int:
    found = session.connection().execute(_ITEM_BY_NAME, {"name": name}).scalar()
    if found is None:
        raise UnknownItem(f"there is no item {name!r} in this workspace")
    return int(found)


def _answer(session: Session, *, annotator: Annotator, item_id: int, op: Op, s: Settings) -> int:
    """Record an answer or a skip on an item the person holds; the answer's row id."""
    if op.kind == "skip":
        recorded = answers.skip(
            session,
            annotator=annotator,
            item_id=item_id,
            labels=s.labels,
            overlap=s.overlap,
            duration_ms=op.ms,
            suggestion=op.suggestion,
        )
    else:
        if op.label is None:
            raise NotLeased(f"the answer to item {op.item!r} has no label")
        recorded = answers.annotate(
            session,
            annotator=annotator,
            item_id=item_id,
            label=answers.answer_value(op.label, s.labels, s.multilabel),
            labels=s.labels,
            overlap=s.overlap,
            duration_ms=op.ms,
            multilabel=s.multilabel,
            suggestion=op.suggestion,
        )
    assert recorded.id is not None
    return recorded.id


def _undo(
    session: Session, *, annotator: Annotator, tab: str, of: str | None, settings: Settings
) -> tuple[QueueItem, int]:
    """Bring back, for this tab, the answer the tab's operation ``of`` recorded; with ``of``
    None, the person's latest answer older than the oldest one this tab has brought back."""
    assert annotator.id is not None
    run = session.connection().execute
    now = utcnow()
    if of is None:
        anchors = [
            lease.undo_of
            for lease in run(_TAB_LEASES, {"me": annotator.id, "tab": tab}).all()
            if lease.undo_of is not None
        ]
        target = answers.undo_target(
            session,
            annotator_id=annotator.id,
            before=min(anchors) if anchors else None,
            overlap=settings.overlap,
            now=now,
        )
        if target is None:
            raise NothingToUndo("There is no earlier answer to go back to.")
    else:
        target = _target_of(session, annotator=annotator, of=of, settings=settings, now=now)
    assert target.id is not None
    lease = run(_MY_LEASE_ON, {"me": annotator.id, "item": target.item_id}).first()
    if lease is not None and lease.tab is not None:
        # Another tab of theirs brought it back already (or this one did): it stays there.
        item = session.get(Item, target.item_id)
        name = item.external_id if item is not None else f"#{target.item_id}"
        where = "this tab" if lease.tab == tab else "another tab of yours"
        raise NothingToUndo(f"Item {name} is open in {where} already: answer it there.")
    if lease is not None:  # the one-item page's own undo brought it back: this tab's now
        run(DROP_LEASE, {"lease": lease.id})
    expires = now + settings.tab_hold
    run(
        insert(_LEASES),
        {
            "item_id": target.item_id,
            "annotator_id": annotator.id,
            "served_at": now,
            "expires_at": expires,
            "round_id": target.round_id,
            "undo_of": target.id,
            "holds": target.skipped,
            "tab": tab,
        },
    )
    brought = queue_item(
        session,
        item_id=target.item_id,
        served_at=now,
        expires_at=expires,
        round_id=target.round_id,
        undo_of=target.id,
    )
    return brought, target.id


def _target_of(
    session: Session, *, annotator: Annotator, of: str, settings: Settings, now: datetime
) -> Annotation:
    """The answer operation ``of`` recorded, if it can be taken back now."""
    assert annotator.id is not None
    answer_id = session.connection().execute(_ANSWER_OF, {"cid": of, "me": annotator.id}).scalar()
    target = session.get(Annotation, answer_id) if answer_id is not None else None
    if target is None:
        raise NothingToUndo(
            "Nothing to undo: that answer is not on record (it was refused, as the message shown "
            "with it said, or it is over 30 days old)."
        )
    item = session.get(Item, target.item_id)
    name = item.external_id if item is not None else f"#{target.item_id}"
    if target.superseded_by is not None or target.origin != HUMAN:
        raise NothingToUndo(
            f"Nothing to undo: your answer to item {name!r} was changed since (by you, a lead or "
            "a correction); open the item's page to see it."
        )
    if item is None or item.split not in SPLITS:
        raise NothingToUndo(f"Nothing to undo: item {name!r} was removed since.")
    if target.skipped:
        if session.get_bind().dialect.name != "sqlite":  # lock as claims do (answers.undo_target)
            session.connection().execute(
                core_select(_ITEMS.c.id).where(_ITEMS.c.id == item.id).with_for_update()
            )
        assert item.id is not None
        if not has_room(
            session, item_id=item.id, annotator_id=annotator.id, overlap=settings.overlap, now=now
        ):
            raise NothingToUndo(
                f"Nothing to undo: you skipped item {name!r} and others have taken all its "
                "places since."
            )
    return target


def refill(
    session: Session,
    *,
    annotator: Annotator,
    tab: str,
    keep: Sequence[str],
    want: int,
    reorder: bool,
    settings: Settings,
    brought: Sequence[int] = (),
) -> Refill:
    """Bring the tab's buffer to ``want`` unanswered items, in this order:

    * renew the holds it keeps (for :data:`TAB_HOLD_SECONDS`); drop, and say so, those it can
      no longer keep;
    * on ``reorder`` (a newly promoted round), hand back ``keep[1:]``, undo's items too (their
      answers stay as they are): the tab's buffer is then ``keep[0]`` and the items returned;
    * return the items it holds but did not list (a reload that lost its buffer), undo's first;
    * lease new ones in queue order.

    ``brought``: the items this batch's undos brought back, which the tab shows already."""
    require_active(annotator)
    assert annotator.id is not None
    listed = {name: at for at, name in enumerate(keep)}
    result = Refill()
    held = _renew(
        session,
        annotator_id=annotator.id,
        tab=tab,
        listed=listed,
        reorder=reorder,
        brought=brought,
        settings=settings,
        result=result,
    )
    for name in listed:  # listed, but this tab holds no lease on it
        result.dropped.append((name, _gone(name)))
    result.done = _claim_more(
        session, annotator=annotator, tab=tab, n=want - held, result=result, settings=settings
    )
    return result


def _renew(
    session: Session,
    *,
    annotator_id: int,
    tab: str,
    listed: dict[str, int],
    reorder: bool,
    brought: Sequence[int],
    settings: Settings,
    result: Refill,
) -> int:
    """Renew, hand back or drop each hold of the tab (see :func:`refill`), taking the items
    it finds out of ``listed``; how many it holds now."""
    run = session.connection().execute
    now = utcnow()
    until = now + settings.tab_hold
    held = 0
    leases = list(run(_TAB_LEASES, {"me": annotator_id, "tab": tab}).all())
    # Unlisted holds come back in the order a reload should show them: undo's newest first.
    leases.sort(key=lambda lease: (lease.undo_of is None, -lease.id if lease.undo_of else lease.id))
    for lease in leases:
        name = str(lease.external_id)
        at = listed.pop(name, None)
        if lease.item_id in brought:
            held += 1
            continue
        if reorder and at is not None and at > 0:
            run(DROP_LEASE, {"lease": lease.id})
            continue
        if not can_keep(
            session, lease, annotator_id=annotator_id, overlap=settings.overlap, now=now
        ):
            run(DROP_LEASE, {"lease": lease.id})
            if at is not None:
                result.dropped.append((name, _expired(name)))
            continue
        run(EXTEND_LEASE, {"lease": lease.id, "expires": until})
        held += 1
        if at is None:
            result.items.append(
                queue_item(
                    session,
                    item_id=lease.item_id,
                    served_at=lease.served_at,
                    expires_at=until,
                    round_id=lease.round_id,
                    undo_of=lease.undo_of,
                )
            )
    return held


def release_tab(session: Session, *, annotator: Annotator, tab: str) -> int:
    """Hand back every item the tab holds (the tab closed, or the page went back to one item
    at a time); how many. Answered items hold no lease, so these are its unanswered ones."""
    result = session.connection().execute(
        _LEASES.delete().where(_LEASES.c.annotator_id == annotator.id, _LEASES.c.tab == tab)
    )
    return int(result.rowcount or 0)


def _expired(name: str) -> str:
    return (
        f"Item {name} left your queue: your hold on it ran out and it went to someone else. "
        "Nothing was saved for it."
    )


def _gone(name: str) -> str:
    return (
        f"Item {name} left your queue: it is no longer held for you (answered in another tab, "
        "handed back, or removed from the workspace). Nothing was saved for it here."
    )


def _claim_more(
    session: Session, *, annotator: Annotator, tab: str, n: int, result: Refill, settings: Settings
) -> bool:
    """Lease up to ``n`` new items to the tab, in queue order; whether the queue ran out."""
    assert annotator.id is not None
    expires = utcnow() + settings.tab_hold
    promoted = promoted_round(session)
    for _ in range(max(0, n)):
        claimed = claim_one(
            session,
            annotator_id=annotator.id,
            overlap=settings.overlap,
            expires=expires,
            promoted=promoted,
            gold_rate=settings.gold_rate,
            tab=tab,
        )
        if claimed is None:
            return True
        result.items.append(claimed)
    return False
