"""What the annotation log says now: the one definition of a current answer, of the majority
label, of an item's label, and of the labels and skips a person has now.

An answer is *current* until the same person answers the same item again (undo, or a new
answer), which sets its ``superseded_by``; a skip is a current answer without a label. A lead's
decision is an annotation of origin ``adjudication``, a correction from the item page one of
origin ``correction``, a bulk label one of origin ``bulk`` (see :func:`decide`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Engine, and_, any_, bindparam, func, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from labeling.store import label_feed, labelsets
from labeling.store.db import write_session
from labeling.store.models import (
    BULK,
    DECISIONS,
    HUMAN,
    IMPORT_ORIGIN,
    Annotation,
    Item,
    SchemaInfo,
)


def current(answer: Any = Annotation) -> Any:
    """The WHERE clause of current answers (skips and decisions included); ``answer``: the
    annotation table or an alias of it."""
    return col(answer.superseded_by).is_(None)


def majority(counts: Mapping[str, int], labels: tuple[str, ...]) -> str:
    """The most frequent label; ties go to the label earlier in the toml's order (a label the
    toml does not list ranks after those it does)."""
    order = {label: position for position, label in enumerate(labels)}
    return min(counts, key=lambda label: (-counts[label], order.get(label, len(order)), label))


def is_label_set(value: str, labels: tuple[str, ...]) -> bool:
    """Whether a stored answer is a multi-label set (labeling.store.labelsets), not a label."""
    return value.startswith("[") and value not in labels


def set_majority(counts: Mapping[str, int], labels: tuple[str, ...]) -> tuple[str, bool]:
    """The set that answered sets agree on, label by label: a label is in it when at least
    half of the answers include it. Also whether some label was included by exactly half (a
    tie, decided towards inclusion)."""
    total = sum(counts.values())
    including: Counter[str] = Counter()
    for value, n in counts.items():
        for name in labelsets.decode(value):
            including[name] += n
    chosen = [name for name in labels if 2 * including[name] >= total]
    tie = any(2 * including[name] == total for name in labels)
    return labelsets.encode(chosen, labels), tie


def decide(rows: list[tuple[str, str, int, int]], labels: tuple[str, ...]) -> str | None:
    """One item's label from its current labelled answers, as ``(label, origin, count,
    newest annotation id)`` rows: the one definition of an item's label.

    The newest decision (a lead's adjudication or a correction from the item page) wins; else
    the majority of people's answers and imported labels (for sets, label by label:
    :func:`set_majority`); else the newest bulk label. None when there is no such answer.
    """
    decisions = [(newest, label) for label, origin, _n, newest in rows if origin in DECISIONS]
    if decisions:
        return max(decisions)[1]
    counts: Counter[str] = Counter()
    for label, origin, n, _newest in rows:
        if origin != BULK:
            counts[label] += n
    if counts:
        if any(is_label_set(value, labels) for value in counts):
            return set_majority(counts, labels)[0]
        return majority(counts, labels)
    bulk = [(newest, label) for label, origin, _n, newest in rows if origin == BULK]
    return max(bulk)[1] if bulk else None


# How an item's label was decided: which rule of :func:`decide` gave it (``decided_by`` in an
# export and on the item page; None when the item has no label).
DECIDED_BY = ("adjudication", "correction", "tie-break", "import", "majority", "bulk")


def decided_by(
    rows: list[tuple[str, str, int, int]],
    labels: tuple[str, ...],
    *,
    relabelled: Iterable[str] = (),
) -> tuple[str | None, str | None, str | None]:
    """One item's label (:func:`decide`), how it was decided (one of :data:`DECIDED_BY`) and
    the origin of what decided it, from the same rows; ``(None, None, None)`` when unlabelled.

    ``adjudication`` / ``correction`` (origin ``adjudication`` / ``correction``): the newest
    decision. Else, by the answers of people and imports: ``tie-break``, several labels share
    the most and the toml's order chose; ``correction`` (origin ``human``), the label's answers
    include one that replaced the same person's earlier, different answer (``relabelled``: the
    labels that did so, :func:`relabelled_between`); ``import``, every answer came with a file;
    ``majority``, the label has the most (a single answer included). Else ``bulk``: the newest
    bulk label. The one definition the export and the item page use.
    """
    label = decide(rows, labels)
    if label is None:
        return None, None, None
    decisions = [(newest, origin) for _label, origin, _n, newest in rows if origin in DECISIONS]
    if decisions:
        origin = max(decisions)[1]
        return label, origin, origin
    counts: Counter[str] = Counter()
    origins = set()
    for answer_label, origin, n, _newest in rows:
        if origin != BULK:
            counts[answer_label] += n
            origins.add(origin)
    if not counts:
        return label, BULK, BULK
    if any(is_label_set(value, labels) for value in counts):
        tie = set_majority(counts, labels)[1]
    else:
        top = max(counts.values())
        tie = sum(1 for n in counts.values() if n == top) > 1
    if tie:
        return label, "tie-break", HUMAN
    if label in set(relabelled):
        return label, "correction", HUMAN
    if origins == {IMPORT_ORIGIN}:
        return label, "import", IMPORT_ORIGIN
    return label, "majority", HUMAN


def decision_rows(session: Session, among: Any) -> dict[int, list[tuple[str, str, int, int]]]:
    """Of the items ``among`` picks (a condition on ``Annotation.item_id``): their current
    labelled answers, as the ``(label, origin, count, newest annotation id)`` rows
    :func:`decide` and :func:`decided_by` read."""
    rows: dict[int, list[tuple[str, str, int, int]]] = defaultdict(list)
    query = (
        select(  # type: ignore[call-overload]
            Annotation.item_id,
            Annotation.label,
            Annotation.origin,
            func.count(),
            func.max(Annotation.id),
        )
        .where(among, current(), col(Annotation.label).is_not(None))
        .group_by(col(Annotation.item_id), col(Annotation.label), col(Annotation.origin))
    )
    for item_id, label, origin, n, newest in session.exec(query).all():
        if label is not None:
            rows[item_id].append((label, origin, n, newest))
    return rows


def relabelled_between(session: Session, low: int, high: int) -> dict[int, set[str]]:
    """Of items ``low``..``high``: the labels their current answers replaced (see
    :func:`_relabelled`), by item."""
    return _relabelled(session, lambda item: col(item).between(low, high))


def relabelled_of(session: Session, item_ids: Collection[int]) -> dict[int, set[str]]:
    """Of the items ``item_ids``: the labels their current answers replaced, by item."""
    return _relabelled(session, lambda item: col(item).in_(list(item_ids)))


def _relabelled(session: Session, among: Callable[[Any], Any]) -> dict[int, set[str]]:
    """The current answers, on the items ``among`` picks (a condition on an item id column),
    that replaced the same person's earlier answer with a different label (after an undo, or
    on review): their labels, by item, the ``relabelled`` :func:`decided_by` reads."""
    old = aliased(Annotation)
    new = aliased(Annotation)
    rows = session.exec(
        select(new.item_id, new.label)
        .join(old, and_(col(old.item_id) == new.item_id, col(old.superseded_by) == new.id))
        .where(
            among(new.item_id),
            current(new),
            col(new.skipped).is_(False),
            col(new.origin).not_in((*DECISIONS, BULK)),
            col(old.label).is_not(None),
            old.label != new.label,
        )
    ).all()
    found: dict[int, set[str]] = defaultdict(set)
    for item_id, label in rows:
        if label is not None:
            found[item_id].add(label)
    return found


def final_labels(
    session: Session,
    labels: tuple[str, ...],
    *,
    item_ids: Iterable[int] | None = None,
    splits: tuple[str, ...] | None = None,
    bulk: bool = True,
) -> dict[int, str]:
    """Each item's label (see :func:`decide`), from scratch; items without one are left out.

    With ``item_ids``, only for those items; with ``splits``, only items of those splits;
    with ``bulk=False``, as if no bulk label had been given (what people, imports and
    decisions say).
    """
    query = select(  # type: ignore[call-overload]  # sqlmodel types at most 4 columns
        col(Annotation.item_id),
        col(Annotation.label),
        col(Annotation.origin),
        func.count(),
        func.max(Annotation.id),
    ).where(current(), col(Annotation.label).is_not(None))
    if not bulk:
        query = query.where(col(Annotation.origin) != BULK)
    if splits is not None:
        query = query.join(Item, col(Item.id) == col(Annotation.item_id)).where(
            col(Item.split).in_(splits)
        )
    query = query.group_by(col(Annotation.item_id), col(Annotation.label), col(Annotation.origin))
    wanted = None if item_ids is None else sorted(set(item_ids))
    rows: dict[int, list[tuple[str, str, int, int]]] = defaultdict(list)
    postgres = session.get_bind().dialect.name == "postgresql"
    for part in [None] if wanted is None else _chunks(wanted):
        # The ids as one parameter: 5,000 bound values cost more than the query (a bulk undo).
        ids = col(Annotation.item_id)
        among = ids == any_(bindparam(None, part, type_=ARRAY(BigInteger))) if postgres else (
            ids.in_(bindparam(None, part, expanding=True)))  # fmt: skip
        chunk = query if part is None else query.where(among)
        for item_id, label, origin, n, newest in session.exec(chunk).all():
            if label is not None:
                rows[item_id].append((label, origin, n, newest))
    found = {item_id: decide(answers, labels) for item_id, answers in rows.items()}
    return {item_id: label for item_id, label in found.items() if label is not None}


def _chunks(ids: list[int], size: int = 5_000) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def human_labels(
    session: Session,
    labels: tuple[str, ...],
    *,
    item_ids: list[int] | None = None,
    bulk: bool = True,
) -> dict[int, str]:
    """Each pool item's label (see :func:`decide`; gold excluded): what rounds train on. With
    ``item_ids``, only for those items. ``bulk=False`` leaves bulk labels out: what LF
    analysis, the label model's class balance and the rule builder measure LFs against (a bulk
    batch often comes from the same search an LF was written from: measuring the one against
    the other would be circular)."""
    return final_labels(session, labels, item_ids=item_ids, splits=("pool",), bulk=bulk)


_ITEMS = Item.__table__  # type: ignore[attr-defined]
_SET_LABEL = update(_ITEMS).where(_ITEMS.c.id == bindparam("item")).values(label=bindparam("label"))


def lock_items(session: Session, item_ids: Iterable[int]) -> None:
    """Lock these item rows for the caller's transaction, in id order, on PostgreSQL: what
    every writer of an item's answers (an answer, a decision, a bulk chunk, an undo) takes
    before reading them, so that such writers on one item take turns. FOR NO KEY UPDATE, the
    lock an UPDATE of the row takes: FOR UPDATE would also hold up other transactions'
    foreign-key checks on the item (a lease, an answer) and deadlock with them. SQLite runs one
    writer at a time: nothing to do there."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return
    ids = bindparam(None, sorted(set(item_ids)), type_=ARRAY(BigInteger))
    connection.execute(
        select(_ITEMS.c.id)
        .where(_ITEMS.c.id == any_(ids))
        .order_by(_ITEMS.c.id)
        .with_for_update(key_share=True)
    )


def refresh_labels(session: Session, labels: tuple[str, ...], item_ids: Iterable[int]) -> None:
    """Bring ``Item.label`` of these items in step with their answers, after any write to them.

    Recomputes each item's label with :func:`final_labels` (one query per 5,000 items), so the
    stored column never drifts from the definition; the property test in tests/test_search.py
    checks it against a recomputation of the whole store.
    """
    wanted = sorted(set(item_ids))
    if not wanted:
        return
    # Two people answering one item at once: each transaction would read the answers without
    # the other's and the later write would win with a stale label. Locking the item rows
    # first makes the second wait, and its read (a new statement under READ COMMITTED) then
    # sees the first's answer.
    lock_items(session, wanted)
    connection = session.connection()
    found = final_labels(session, labels, item_ids=wanted)
    before: dict[int, str | None] = {}
    for part in _chunks(wanted):
        found_now = select(_ITEMS.c.id, _ITEMS.c.label).where(_ITEMS.c.id.in_(part))
        before.update(connection.execute(found_now).all())  # type: ignore[arg-type]
    changed = [item_id for item_id in wanted if before.get(item_id) != found.get(item_id)]
    if not changed:
        return
    params = [{"item": item_id, "label": found.get(item_id)} for item_id in changed]
    connection.execute(_SET_LABEL, params)
    label_feed.mark(session, changed)


def current_answer_counts(
    session: Session, *, annotator_id: int | None = None
) -> dict[int, tuple[int, int]]:
    """Annotator id -> (current labels, current skips): answers not superseded since.

    The one definition of "labels" a person has now (My stats, the Metrics and report
    tables' "current labels"); an answer changed by undo or relabelling counts once.
    """
    query = (
        select(Annotation.annotator_id, col(Annotation.label).is_(None), func.count())
        .where(current(), Annotation.origin == HUMAN)
        .group_by(col(Annotation.annotator_id), col(Annotation.label).is_(None))
    )
    if annotator_id is not None:
        query = query.where(Annotation.annotator_id == annotator_id)
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for who, is_skip, n in session.exec(query).all():
        found[who][1 if is_skip else 0] += n
    return {who: (labels, skips) for who, (labels, skips) in found.items()}


# SchemaInfo key: the label order ``Item.label`` was last computed with ("," joined).
LABELS_KEY = "item_labels"


def sync_item_labels(engine: Engine, labels: tuple[str, ...]) -> bool:
    """Recompute every ``Item.label`` unless it was computed with this label order already.

    Run when a workspace opens: after the upgrade that added the column (the migration cannot
    know labelloop.toml's order, which breaks ties), or after the toml's labels changed.
    Returns whether it recomputed.
    """
    order = ",".join(labels)
    with Session(engine) as session:
        stored = session.get(SchemaInfo, LABELS_KEY)
        if stored is not None and stored.value == order:
            return False
    with write_session(engine) as session:
        found = final_labels(session, labels)
        stored_labels: dict[int, str | None] = {
            int(item_id or 0): label
            for item_id, label in session.exec(
                select(Item.id, Item.label).where(col(Item.label).is_not(None))
            ).all()
        }
        changed = [
            {"item": item_id, "label": found.get(item_id)}
            for item_id in set(found) | set(stored_labels)
            if found.get(item_id) != stored_labels.get(item_id)
        ]
        for start in range(0, len(changed), 5_000):
            session.connection().execute(_SET_LABEL, changed[start : start + 5_000])
        session.merge(SchemaInfo(key=LABELS_KEY, value=order))
    return True
