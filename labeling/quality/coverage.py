"""Coverage of the pool: by people, by at least one LF, by a confident weak label, and combined
(people or confident weak label), overall and per class.

The one reading of the store behind every coverage figure (``status``, the Metrics page, the
report, the LF page, ``lf analyze`` and each round's metrics); the definitions are those of
:func:`weak_supervision.coverage_totals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from labeling.quality.sources import rounded
from labeling.store.answers import human_labels
from labeling.store.labelsets import decode
from labeling.store.models import Item, LabelingFunction, LFVote, WeakLabel
from weak_supervision import coverage_totals


def coverage(
    session: Session,
    labels: tuple[str, ...],
    weak_threshold: float,
    *,
    human: dict[int, str] | None = None,
    multilabel: bool = False,
) -> dict[str, Any]:
    """How much of the pool has a label: people, LFs, confident weak labels, combined.

    LF votes count when they come from an active LF at its current version (an edited LF's
    old votes do not). ``human``: the pool's labels from people
    (:func:`labeling.store.answers.human_labels`) when already read.
    """
    if human is None:
        human = human_labels(session, labels)
    pool = session.exec(select(func.count()).where(Item.split == "pool")).one()
    votes = _lf_votes(session)
    weak_rows = _weak_labels(session)
    L, people, weak, confidence = _coverage_arrays(labels, human, votes, weak_rows, multilabel)
    totals = coverage_totals(
        L,
        labels,
        human=people,
        weak=weak,
        weak_confidence=confidence,
        weak_threshold=weak_threshold,
        rows=pool,
    )
    for key in ("human", "lf", "weak", "weak_any", "combined"):
        totals[key] = rounded(totals[key])
    if multilabel:
        totals["per_class"] = _per_label(labels, human, votes, weak_rows, weak_threshold, pool)
    totals["per_class"] = {
        label: {key: rounded(share) for key, share in shares.items()}
        for label, shares in totals["per_class"].items()
    }
    return totals


def _per_label(
    labels: tuple[str, ...],
    human: dict[int, str],
    votes: Sequence[tuple[int, str]],
    weak_rows: Sequence[tuple[int, str, float]],
    weak_threshold: float,
    pool: int,
) -> dict[str, dict[str, float]]:
    """Per-label coverage of a multi-label pool, read as per class: the share of pool items
    whose people's set holds the label (``human``), that an LF voted the label on (``lf``),
    whose confident weak set holds it (``weak``), and whose set holds it, people's set first
    and else the confident weak set (``combined``)."""
    counts = {label: dict.fromkeys(("human", "lf", "weak", "combined"), 0) for label in labels}
    voted: dict[str, set[int]] = {label: set() for label in labels}
    for item_id, label in votes:
        if label in voted:
            voted[label].add(item_id)
    weak = {
        item_id: decode(value)
        for item_id, value, confidence in weak_rows
        if confidence >= weak_threshold and value.startswith("[")
    }
    people = {item_id: decode(value) for item_id, value in human.items()}
    for label in labels:
        counts[label]["lf"] = len(voted[label])
        counts[label]["human"] = sum(label in names for names in people.values())
        counts[label]["weak"] = sum(label in names for names in weak.values())
        counts[label]["combined"] = counts[label]["human"] + sum(
            label in names for item_id, names in weak.items() if item_id not in people
        )
    return {
        label: {key: n / pool if pool else 0.0 for key, n in by.items()}
        for label, by in counts.items()
    }


def _lf_votes(session: Session) -> Sequence[tuple[int, str]]:
    """(item id, label) of pool items some active LF at its current version voted."""
    return session.exec(
        select(LFVote.item_id, LFVote.label)
        .join(LabelingFunction, col(LabelingFunction.id) == col(LFVote.lf_id))
        .join(Item, col(Item.id) == col(LFVote.item_id))
        .where(
            col(LabelingFunction.active).is_(True),
            col(LFVote.lf_version) == col(LabelingFunction.version),
            Item.split == "pool",
        )
        .distinct()
    ).all()


def _weak_labels(session: Session) -> Sequence[tuple[int, str, float]]:
    """(item id, label, confidence) of the pool's weak labels, of any confidence."""
    return session.exec(
        select(WeakLabel.item_id, WeakLabel.label, WeakLabel.confidence)
        .join(Item, col(Item.id) == col(WeakLabel.item_id))
        .where(Item.split == "pool")
    ).all()


def _coverage_arrays(
    labels: tuple[str, ...],
    human: dict[int, str],
    votes: Sequence[tuple[int, str]],
    weak_rows: Sequence[tuple[int, str, float]],
    multilabel: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The arrays :func:`weak_supervision.coverage_totals` takes: LF votes per class, people's
    labels, weak labels and their confidence, one row per pool item something covers.

    The rest of the pool counts through ``rows`` (a million-item pool is not read to learn
    that most of it is empty). Multi-label: any set of people (or weak set) covers its row,
    as class 0 (the per-class figures of sets are :func:`_per_label`'s).
    """
    index = {label: k for k, label in enumerate(labels)}
    row: dict[int, int] = {}
    for item_id in [*human, *(v[0] for v in votes), *(w[0] for w in weak_rows)]:
        row.setdefault(item_id, len(row))
    n = len(row)
    # One column per class: the class where at least one LF voted it (the pure function only
    # needs "some LF voted k on this row", not which LF).
    L = np.full((n, len(labels)), -1, dtype=np.int64)
    for item_id, label in votes:
        if label in index:
            L[row[item_id], index[label]] = index[label]
        elif multilabel:  # an absent vote (labeling.weak.multilabel) covers its row too
            L[row[item_id], 0] = 0
    people = np.full(n, -1, dtype=np.int64)
    for item_id, label in human.items():
        if multilabel:
            people[row[item_id]] = 0
        elif label in index:
            people[row[item_id]] = index[label]
    weak = np.full(n, -1, dtype=np.int64)
    confidence = np.zeros(n)
    for item_id, label, conf in weak_rows:
        if multilabel or label in index:
            weak[row[item_id]] = 0 if multilabel else index[label]
            confidence[row[item_id]] = conf
    return L, people, weak, confidence
