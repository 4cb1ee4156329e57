"""Figures per guidelines version: did an edit of the guidelines change how people label?

Each answer records the guidelines version that was newest when it was given (None before any
guidelines existed, shown as "none"). Per version, oldest first:

- ``answers``: people's answers given under it: every one, skips and changed or undone ones
  included (the work done, as "answers given" counts it per person);
- ``gold``: the gold checks (:func:`~labeling.quality.sources.gold_checks`) answered under it,
  with the 95% Wilson interval (:func:`~labeling.quality.anchoring.proportion`); right means
  equal to the gold label (a set: the same set);
- ``agreement``: the workspace's agreement figures (:func:`~labeling.quality.agreement.
  agreement`, or :func:`~labeling.quality.multilabel_agreement.set_agreement` for sets: MASI
  alpha) over the pool items answered by two or more people whose current answers were all
  given under that version.

An item whose current answers span versions (one person answered before an edit, another
after) is in no version's agreement: mixing them would credit one version with the other's
answers. ``spanning_items`` counts them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from labeling.quality.agreement import agreement
from labeling.quality.anchoring import proportion
from labeling.quality.multilabel_agreement import set_agreement
from labeling.quality.sources import gold_checks, people_answers
from labeling.store.labelsets import decode
from labeling.store.models import HUMAN, Annotation, GuidelineVersion, Item


def by_guidelines(
    session: Session, labels: tuple[str, ...], *, multilabel: bool = False
) -> dict[str, Any]:
    """The figures of each guidelines version that has answers (see the module)."""
    given = _answers_given(session)
    gold = _gold_by_version(session, labels, multilabel)
    shared, spanning = _shared_by_version(session)
    since = _recorded_at(session)
    versions = sorted(set(given) | set(gold) | set(shared), key=lambda v: -1 if v is None else v)
    found = []
    for version in versions:
        n, correct = gold.get(version, (0, 0))
        answers = shared.get(version, {})
        agree = (
            set_agreement(session, labels, answers=answers)
            if multilabel
            else agreement(session, labels, answers=answers)
        )
        found.append(
            {
                "version": version,
                "since": since[version].isoformat() if version in since else None,
                "answers": given.get(version, 0),
                "gold": proportion(n, correct),
                "agreement": {
                    "items": agree["alpha_items"],
                    "alpha": agree["alpha"],
                    "pairs": agree["pairs"],
                },
            }
        )
    return {"versions": found, "spanning_items": spanning}


def _answers_given(session: Session) -> dict[int | None, int]:
    """Per version, every answer people gave under it."""
    rows = session.exec(
        select(Annotation.guidelines_version, func.count())
        .where(Annotation.origin == HUMAN)
        .group_by(col(Annotation.guidelines_version))
    ).all()
    return {version: int(n) for version, n in rows}


def _gold_by_version(
    session: Session, labels: tuple[str, ...], multilabel: bool
) -> dict[int | None, tuple[int, int]]:
    """Per version, the gold checks answered under it and how many were right."""
    rows = session.exec(
        select(Annotation.guidelines_version, Annotation.label, Item.gold_label)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(*gold_checks(labels, multilabel=multilabel))
    ).all()
    tally: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for version, label, gold in rows:
        if label is None or gold is None:
            continue
        right = decode(label) == decode(gold) if multilabel else label == gold
        tally[version][0] += 1
        tally[version][1] += int(right)
    return {version: (n, k) for version, (n, k) in tally.items()}


def _shared_by_version(
    session: Session,
) -> tuple[dict[int | None, dict[int, dict[int, str]]], int]:
    """Per version, the pool items answered by two or more people all under that version, as
    item -> {annotator id: label} (the shape agreement reads); and how many such items span
    versions."""
    by_item: dict[int, dict[int, tuple[str, int | None]]] = defaultdict(dict)
    for item_id, annotator_id, label, version in session.exec(
        select(
            Annotation.item_id,
            Annotation.annotator_id,
            Annotation.label,
            Annotation.guidelines_version,
        )
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(*people_answers("pool"))
    ).all():
        if label is not None:
            by_item[item_id][annotator_id] = (label, version)
    shared: dict[int | None, dict[int, dict[int, str]]] = defaultdict(dict)
    spanning = 0
    for item_id, by_person in by_item.items():
        if len(by_person) < 2:
            continue
        versions = {version for _label, version in by_person.values()}
        if len(versions) > 1:
            spanning += 1
            continue
        shared[versions.pop()][item_id] = {who: label for who, (label, _v) in by_person.items()}
    return dict(shared), spanning


def _recorded_at(session: Session) -> dict[int | None, datetime]:
    """When each guidelines version was recorded."""
    return dict(
        session.exec(select(GuidelineVersion.version, GuidelineVersion.created_at)).all()  # type: ignore[arg-type]
    )
