"""Which labels people confuse, pair by pair: the Guidelines page's hint of where an exclude
note would help (``labelloop guidelines hints``).

Three sources, each counted apart:

- **gold**: people's current answers on gold items that differ from the gold label;
- **people**: overlapped pool items on which two people's current answers differ;
- **model**: labels that cleanlab flags in the latest round's out-of-sample check
  (``review.json``, :mod:`labeling.quality.label_errors`) whose prediction is another label.

A pair is unordered; gold and model also say which label was given where the other was
expected (people's disagreements have no right side). In a multi-label workspace an answer
confuses label ``x`` with ``y`` when it has ``x`` that the other side lacks and lacks ``y``
that the other side has: an extra label paired with a missing one. A label only added, or
only left out, is not a confusion between two labels and is not counted here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import select as core_select
from sqlmodel import Session

from labeling.store import labelsets
from labeling.store.answers import current
from labeling.store.models import HUMAN, Annotation, Item

Directed = Counter[tuple[str, str]]  # (label given, label expected) -> count


@dataclass(frozen=True)
class ConfusedPair:
    """Two labels people confuse, with the counts by source."""

    labels: tuple[str, str]  # in the workspace's label order
    gold: int  # answers on gold items giving one label where the gold label is the other
    people: int  # overlapped items on which one person gave one label and another the other
    model: int  # flagged labels whose out-of-sample prediction is the other label
    # label -> how often it was given where the other was expected (gold and model only)
    given_instead: dict[str, int]
    noted_in: tuple[str, ...]  # the labels whose exclude note names the other label

    @property
    def total(self) -> int:
        return self.gold + self.people + self.model

    @property
    def noted(self) -> bool:
        """Whether an exclude note of either label already names the other."""
        return bool(self.noted_in)

    @property
    def note_on(self) -> str:
        """The label whose exclude note would help most: the one more often given in place
        of the other (the first of the two when neither is)."""
        a, b = self.labels
        return b if self.given_instead.get(b, 0) > self.given_instead.get(a, 0) else a

    def as_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "total": self.total,
            "gold": self.gold,
            "people": self.people,
            "model": self.model,
            "given_instead": dict(self.given_instead),
            "note_on": self.note_on,
            "noted": self.noted,
            "noted_in": list(self.noted_in),
        }


def swaps(given: str, expected: str, *, multilabel: bool) -> set[tuple[str, str]]:
    """The (label given, label expected) pairs one answer confuses against what was expected:
    none when they agree; for sets, each extra label with each missing one."""
    if not multilabel:
        return set() if given == expected else {(given, expected)}
    have, want = labelsets.decode(given), labelsets.decode(expected)
    return {(extra, missing) for extra in have - want for missing in want - have}


def directed_counts(pairs: Iterable[tuple[str, str]], *, multilabel: bool) -> Directed:
    """(label given, label expected) counts over (given, expected) answers."""
    found: Directed = Counter()
    for given, expected in pairs:
        found.update(swaps(given, expected, multilabel=multilabel))
    return found


def disagreement_counts(
    units: Iterable[Iterable[str]], *, multilabel: bool
) -> Counter[frozenset[str]]:
    """Per unordered label pair, the items on which two people's answers confuse the two
    (each item counts once per pair, however many people answered it)."""
    found: Counter[frozenset[str]] = Counter()
    for unit in units:
        answers = list(unit)
        if len(set(answers)) < 2:  # everyone agrees, as on most items: nothing to pair
            continue
        pairs: set[frozenset[str]] = set()
        for a, b in combinations(answers, 2):
            pairs.update(frozenset(p) for p in swaps(a, b, multilabel=multilabel))
        found.update(pairs)
    return found


def mentions(text: str, name: str) -> bool:
    """Whether ``text`` names label ``name`` as a word (any case; ``_`` and ``-`` in the name
    may be written as spaces)."""
    spellings = {name, name.replace("_", " "), name.replace("-", " ")}
    return any(
        re.search(rf"(?<!\w){re.escape(s)}(?!\w)", text, re.IGNORECASE) for s in spellings if s
    )


def rank_pairs(
    labels: tuple[str, ...],
    *,
    gold: Directed,
    people: Counter[frozenset[str]],
    model: Directed,
    excludes: Mapping[str, str],
    limit: int | None = None,
) -> list[ConfusedPair]:
    """Every confused pair of the workspace's labels, most confused first (by the sum of the
    three counts; ties in label order), each with whether an exclude note names the other
    label. Pairs with a label the workspace no longer has are left out."""
    order = {label: i for i, label in enumerate(labels)}
    keys: set[tuple[str, str]] = set()
    for given, expected in (*gold, *model):
        keys.add(_ordered(given, expected, order))
    for pair in people:
        first, second = sorted(pair)
        keys.add(_ordered(first, second, order))
    found = []
    for a, b in keys:
        if a not in order or b not in order or a == b:
            continue
        noted = tuple(
            label for label, other in ((a, b), (b, a)) if mentions(excludes.get(label, ""), other)
        )
        found.append(
            ConfusedPair(
                labels=(a, b),
                gold=gold[(a, b)] + gold[(b, a)],
                people=people[frozenset((a, b))],
                model=model[(a, b)] + model[(b, a)],
                given_instead={a: gold[(a, b)] + model[(a, b)], b: gold[(b, a)] + model[(b, a)]},
                noted_in=noted,
            )
        )
    found.sort(key=lambda p: (-p.total, order[p.labels[0]], order[p.labels[1]]))
    return found if limit is None else found[:limit]


def _ordered(x: str, y: str, order: Mapping[str, int]) -> tuple[str, str]:
    missing = len(order)
    return (x, y) if (order.get(x, missing), x) <= (order.get(y, missing), y) else (y, x)


_ANSWERS = Annotation.__table__  # type: ignore[attr-defined]
_ITEMS = Item.__table__  # type: ignore[attr-defined]
_JOINED = _ANSWERS.join(_ITEMS, _ITEMS.c.id == _ANSWERS.c.item_id)
_PEOPLE_S = (current(_ANSWERS.c), _ANSWERS.c.origin == HUMAN, _ANSWERS.c.label.is_not(None))


def gold_answers(session: Session) -> list[tuple[str, str]]:
    """(answer, gold label) for people's current labelled answers on gold items."""
    rows = session.connection().execute(
        core_select(_ANSWERS.c.label, _ITEMS.c.gold_label)
        .select_from(_JOINED)
        .where(*_PEOPLE_S, _ITEMS.c.split == "gold", _ITEMS.c.gold_label.is_not(None))
    )
    return [(str(label), str(gold)) for label, gold in rows]


def overlapped_answers(session: Session) -> list[list[str]]:
    """People's current labelled answers on each pool item that has two or more.

    The items come from the (split, n_labels, rank) index alone (items answered once are
    never read, and no item row is: selecting a column of the item, as the gold query does,
    costs a row read per item, about twice the time), then their answers by item id, as Core
    rows (the ORM's rows cost about twice as much again). benchmarks/bench_confused_pairs.py
    measures the whole call.
    """
    rows = session.connection().execute(
        core_select(_ANSWERS.c.item_id, _ANSWERS.c.label)
        .select_from(_JOINED)
        .where(*_PEOPLE_S, _ITEMS.c.split == "pool", _ITEMS.c.n_labels >= 2)
    )
    by_item: dict[int, list[str]] = {}
    for item_id, label in rows:
        by_item.setdefault(item_id, []).append(str(label))
    return [answers for answers in by_item.values() if len(answers) >= 2]


def flagged_answers(checked: Iterable[list[Any]]) -> list[tuple[str, str]]:
    """(label given, out-of-sample prediction) for the labels cleanlab flagged, from the rows
    of a round's ``review.json`` (item id, given, predicted, confidence, p_given, flagged)."""
    return [(str(row[1]), str(row[2])) for row in checked if row[5] and row[1] != row[2]]


def confused_pairs(
    session: Session,
    labels: tuple[str, ...],
    *,
    multilabel: bool,
    excludes: Mapping[str, str],
    checked: Iterable[list[Any]] = (),
    limit: int | None = None,
) -> list[ConfusedPair]:
    """The workspace's confused label pairs, most confused first (see the module's doc).

    ``excludes``: each label's exclude note now; ``checked``: the latest round's
    ``review.json`` rows, when a round wrote one.
    """
    return rank_pairs(
        labels,
        gold=directed_counts(gold_answers(session), multilabel=multilabel),
        people=disagreement_counts(overlapped_answers(session), multilabel=multilabel),
        model=directed_counts(flagged_answers(checked), multilabel=multilabel),
        excludes=excludes,
        limit=limit,
    )
