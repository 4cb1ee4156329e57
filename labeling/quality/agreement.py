"""How far people's labels can be trusted: gold checks and agreement between people.

- **Gold checks**: current answers on gold items (served unmarked at ``gold_rate``) against the
  gold label, per annotator and per day.
- **Agreement** where items have answers from two or more people: Cohen's kappa per annotator
  pair (scikit-learn), Krippendorff's alpha over everyone (nominal, the ``krippendorff``
  package), each with the number of items it rests on, and the label-by-label confusion of
  pairs of answers on the same item.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from labeling.quality.sources import answers_by_item, gold_checks, people_names, rounded
from labeling.store.models import Annotation, Item


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two raters on the same items; 1.0 when both always give one label."""
    from sklearn.metrics import cohen_kappa_score  # scikit-learn: ~1 s; the figures only

    if not a:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0
    value = float(cohen_kappa_score(a, b))
    return None if np.isnan(value) else value


def krippendorff_alpha(units: list[list[str]], labels: tuple[str, ...]) -> float | None:
    """Krippendorff's alpha (nominal) over units, each the labels its raters gave.

    Units with fewer than two labels carry no information about agreement and are ignored by
    the formula. None when no unit has two labels or only one label value occurs at all.
    """
    import krippendorff  # ~0.1 s; only the agreement figure needs it

    paired = [unit for unit in units if len(unit) >= 2]
    if not paired or len({label for unit in paired for label in unit}) < 2:
        return None
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(paired), len(labels)), dtype=float)
    for row, unit in enumerate(paired):
        for label in unit:
            counts[row, index[label]] += 1
    value = float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
    return None if np.isnan(value) else value


def pair_confusion(units: list[list[str]], labels: tuple[str, ...]) -> list[list[int]]:
    """Label-by-label counts over every pair of answers on the same item, both directions.

    Symmetric; the diagonal counts agreeing pairs twice, like every off-diagonal pair.
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for unit in units:
        for x, y in combinations(unit, 2):
            matrix[index[x], index[y]] += 1
            matrix[index[y], index[x]] += 1
    return matrix.tolist()


def gold_accuracy(session: Session, labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy of each annotator's current answers on gold items, overall and per day."""
    people = people_names(session)
    rows = session.exec(
        select(Annotation.annotator_id, Annotation.label, Annotation.created_at, Item.gold_label)
        .join(Item, col(Item.id) == col(Annotation.item_id))
        .where(*gold_checks(labels, multilabel=False))
    ).all()
    per: dict[str, dict[str, Any]] = {}
    days: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    total = [0, 0]
    for annotator_id, label, created, gold in rows:
        name = people.get(annotator_id)
        if name is None:
            continue
        right = int(label == gold)
        entry = per.setdefault(name, {"n": 0, "correct": 0})
        entry["n"] += 1
        entry["correct"] += right
        day = days[name][created.date().isoformat()]
        day[0] += 1
        day[1] += right
        total[0] += 1
        total[1] += right
    for name, entry in per.items():
        entry["accuracy"] = rounded(entry["correct"] / entry["n"])
        entry["by_day"] = [
            {"day": day, "n": n, "correct": c, "accuracy": rounded(c / n)}
            for day, (n, c) in sorted(days[name].items())
        ]
    return {
        "n": total[0],
        "correct": total[1],
        "accuracy": rounded(total[1] / total[0]) if total[0] else None,
        "annotators": dict(sorted(per.items())),
    }


def agreement(
    session: Session,
    labels: tuple[str, ...],
    *,
    answers: dict[int, dict[int, str]] | None = None,
) -> dict[str, Any]:
    """Pairwise Cohen's kappa, Krippendorff's alpha and the pair confusion on pool items.

    ``answers``: the pool's current answers (:func:`answers_by_item`) when already read.
    """
    people = people_names(session)
    if answers is None:
        answers = answers_by_item(session, "pool")
    shared: dict[tuple[int, int], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    units: list[list[str]] = []
    for by_person in answers.values():
        if len(by_person) < 2:
            continue
        units.append(list(by_person.values()))
        for a, b in combinations(sorted(by_person), 2):
            first, second = shared[(a, b)]
            first.append(by_person[a])
            second.append(by_person[b])
    pairs = []
    for (a, b), (first, second) in sorted(shared.items()):
        if a not in people or b not in people:
            continue
        agree = sum(x == y for x, y in zip(first, second, strict=True))
        pairs.append(
            {
                "a": people[a],
                "b": people[b],
                "n": len(first),
                "kappa": rounded(cohen_kappa(first, second)),
                "observed": rounded(agree / len(first)),
            }
        )
    confusion = pair_confusion(units, labels)
    per_class: dict[str, float | None] = {}
    for i, label in enumerate(labels):
        row = sum(confusion[i])
        per_class[label] = rounded(confusion[i][i] / row) if row else None
    return {
        "items": len(units),
        "alpha": rounded(krippendorff_alpha(units, labels)),
        "alpha_items": len(units),
        "pairs": pairs,
        "confusion": {"labels": list(labels), "matrix": confusion},
        # Of the pairs of answers involving a class, the share where both gave it.
        "per_class": per_class,
    }
