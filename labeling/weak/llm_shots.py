"""Few-shot examples for the LLM labelling function: items a lead decided, balanced by label.

``[llm] few_shot = N`` puts up to N examples in the prompt. They come from pool items whose
label a lead decided (a current adjudication from Review, or a correction from the item page:
the decisions of labeling.store.answers), never from gold items, which measure the LF. They
are taken in turns across the labels in the toml's order (for sets: an item counts for each
label it holds, and sets without a label take their turn last), the oldest decision first
within a label, so the choice is the same on every run and changes only when a decision that
would be chosen is made or changed. Guidelines' pinned examples are not used: a pinned item
says that its label applies, not what the whole answer is (for sets), and may be a gold item.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from labeling.store import labelsets
from labeling.store.answers import current
from labeling.store.models import DECISIONS, Annotation, Item
from labeling.weak.llm_prompt import Shot


def decided_shots(
    session: Session, labels: Sequence[str], *, multilabel: bool, limit: int
) -> tuple[Shot, ...]:
    """Up to ``limit`` examples (text and decided label or set), balanced across the labels,
    in the order the prompt shows them; each text at most once."""
    if limit <= 0:
        return ()
    rows = session.exec(
        select(Annotation.item_id, Annotation.label, Item.text)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(
            col(Annotation.origin).in_(DECISIONS),
            current(),
            col(Annotation.label).is_not(None),
            Item.split == "pool",
        )
        .order_by(col(Annotation.id))
    ).all()
    # One decision per item (the newest is current; keep the last seen), oldest first.
    decided: dict[int, tuple[str, str]] = {}
    for item_id, label, text in rows:
        decided.pop(item_id, None)
        decided[item_id] = (str(label), text)
    buckets: list[list[Shot]] = [[] for _ in range(len(labels) + 1)]
    position = {name: k for k, name in enumerate(labels)}
    for label, text in decided.values():
        if multilabel:
            names = labelsets.decode(label)
            homes = [position[n] for n in names if n in position] if names else [len(labels)]
        else:
            homes = [position[label]] if label in position else []
        for home in homes:
            buckets[home].append(Shot(text, label))
    return _in_turns(buckets, limit)


def _in_turns(buckets: list[list[Shot]], limit: int) -> tuple[Shot, ...]:
    """One example from each bucket in turn until ``limit`` (a text chosen once only)."""
    chosen: list[Shot] = []
    texts: set[str] = set()
    cursors = [0] * len(buckets)
    while len(chosen) < limit:
        progressed = False
        for k, bucket in enumerate(buckets):
            while cursors[k] < len(bucket) and bucket[cursors[k]].text in texts:
                cursors[k] += 1
            if cursors[k] < len(bucket) and len(chosen) < limit:
                shot = bucket[cursors[k]]
                chosen.append(shot)
                texts.add(shot.text)
                cursors[k] += 1
                progressed = True
        if not progressed:
            break
    return tuple(chosen)
