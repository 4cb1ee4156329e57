"""What the annotation log says now: the one definition of a current answer, of the majority
label, of an item's human label, and of the labels and skips a person has now.

An answer is *current* until the same person answers the same item again (undo, or a new
answer), which sets its ``superseded_by``; a skip is a current answer without a label. A lead's
decision is an annotation of origin ``adjudication``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from labeling.store.models import ADJUDICATION, Annotation, Item


def current(answer: Any = Annotation) -> Any:
    """The WHERE clause of current answers (skips and decisions included); ``answer``: the
    annotation table or an alias of it."""
    return col(answer.superseded_by).is_(None)


def majority(counts: Mapping[str, int], labels: tuple[str, ...]) -> str:
    """The most frequent label; ties go to the label earlier in the toml's order (a label the
    toml does not list ranks after those it does)."""
    order = {label: position for position, label in enumerate(labels)}
    return min(counts, key=lambda label: (-counts[label], order.get(label, len(order))))


def human_labels(
    session: Session, labels: tuple[str, ...], *, item_ids: list[int] | None = None
) -> dict[int, str]:
    """Each pool item's label from people: the majority of its current answers (gold excluded).

    A lead's adjudication (an annotation of origin ``adjudication``) overrides the majority.
    Rounds train on these, and LF analysis and the rule builder measure LFs against them.
    With ``item_ids``, only for those items.
    """
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    decided: dict[int, str] = {}
    query = (
        select(Annotation.item_id, Annotation.label, Annotation.origin, func.count())
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(
            current(),
            col(Annotation.label).is_not(None),
            Item.split == "pool",
        )
        .group_by(col(Annotation.item_id), col(Annotation.label), col(Annotation.origin))
    )
    if item_ids is not None:
        query = query.where(col(Annotation.item_id).in_(item_ids))
    for item_id, label, origin, n in session.exec(query).all():
        if label is None:
            continue
        if origin == ADJUDICATION:
            decided[item_id] = label
        else:
            votes[item_id][label] += n
    found = {item_id: majority(counts, labels) for item_id, counts in votes.items() if counts}
    found.update(decided)
    return found


def current_answer_counts(
    session: Session, *, annotator_id: int | None = None
) -> dict[int, tuple[int, int]]:
    """Annotator id -> (current labels, current skips): answers not superseded since.

    The one definition of "labels" a person has now (My stats, the Metrics and report
    tables' "current labels"); an answer changed by undo or relabelling counts once.
    """
    query = (
        select(Annotation.annotator_id, col(Annotation.label).is_(None), func.count())
        .where(current(), Annotation.origin == "human")
        .group_by(col(Annotation.annotator_id), col(Annotation.label).is_(None))
    )
    if annotator_id is not None:
        query = query.where(Annotation.annotator_id == annotator_id)
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for who, is_skip, n in session.exec(query).all():
        found[who][1 if is_skip else 0] += n
    return {who: (labels, skips) for who, (labels, skips) in found.items()}
